//! The administrative commands: users, clients, secrets, audit.

use std::io::BufRead;

use chrono::{DateTime, NaiveDate, Utc};
use latchkey_core::accounts::{self, NewUser, User};
use latchkey_core::audit::{self, Actor};
use latchkey_core::clients::{self, Client, NewClient};
use latchkey_core::{Core, CoreError};
use serde::Serialize;

use super::ensure_migrated;
use crate::cli::{
    ApikeyCommand, AuditCommand, ClientCommand, Command, GroupCommand, KeysCommand, PolicyCommand, SecretsCommand,
    UserCommand, WebhookCommand,
};

pub async fn run(core: &Core, command: Command) -> Result<(), String> {
    if let Command::Migrate { json } = command {
        let applied = ensure_migrated(core, true).await?;
        return print(json, &serde_json::json!({ "applied": applied }), || {
            if applied.is_empty() {
                "The database is up to date.".to_owned()
            } else {
                format!("Applied {} migration(s): {}", applied.len(), applied.join(", "))
            }
        });
    }
    // SQLite is one node's own file: bring it up to date. PostgreSQL is
    // shared, so its migrations are an operator's explicit step.
    ensure_migrated(core, core.db.backend() == latchkey_db::Backend::Sqlite).await?;
    let actor = Actor::Cli;
    match command {
        Command::User(cmd) => user(core, cmd, &actor).await,
        Command::Client(cmd) => client(core, cmd, &actor).await,
        Command::Secrets(SecretsCommand::Rewrap { json }) => {
            let report = latchkey_core::rewrap::rewrap_all(core).await.map_err(err)?;
            if !report.failed.is_empty() {
                return Err(format!(
                    "{} secret(s) could not be opened with any configured key: {}",
                    report.failed.len(),
                    report.failed.join("; ")
                ));
            }
            print(json, &report, || {
                format!(
                    "Re-encrypted {} secret(s) with key {}; {} already used it.",
                    report.rewrapped, report.primary_key_id, report.already_current
                )
            })
        }
        Command::Audit(AuditCommand::List { user, since, limit, json }) => {
            let since = since.as_deref().map(parse_time).transpose()?;
            if !(1..=100_000).contains(&limit) {
                return Err("--limit: must be between 1 and 100000".into());
            }
            let events = audit::list(core, user.as_deref(), since, limit).await.map_err(err)?;
            print(json, &events, || {
                events
                    .iter()
                    .map(|e| {
                        format!(
                            "{}  {:<24} {:<8} {:<10} {}",
                            e.at.format("%Y-%m-%d %H:%M:%S"),
                            e.kind,
                            e.outcome,
                            e.actor,
                            e.user_email.as_deref().unwrap_or("-")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Keys(KeysCommand::List { json }) => {
            let keys = core.list_keys().await.map_err(err)?;
            print(json, &keys, || {
                if keys.is_empty() {
                    return "No signing keys yet: `latchkey serve` creates the first.".to_owned();
                }
                let mut out =
                    format!("{:<43}  {:<6}  {:<9}  {:<20}  {}", "KID", "ALG", "STATE", "SIGNS FROM", "PUBLISHED UNTIL");
                for k in &keys {
                    out.push_str(&format!(
                        "\n{:<43}  {:<6}  {:<9}  {:<20}  {}",
                        k.kid,
                        k.alg,
                        format!("{:?}", k.state).to_lowercase(),
                        k.active_from.format("%Y-%m-%d %H:%M:%S"),
                        k.published_until
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_else(|| "-".into())
                    ));
                }
                out
            })
        }
        Command::Keys(KeysCommand::Rotate { now, json }) => {
            let keys = core.rotate_keys(now, &actor).await.map_err(err)?;
            print(json, &keys, || {
                keys.iter()
                    .map(|key| {
                        if now {
                            format!("New {} key {} signs now; every other {} key is withdrawn.", key.alg, key.kid, key.alg)
                        } else {
                            format!(
                                "New {} key {} is published and signs from {}; the current one stays published for a day after that.",
                                key.alg,
                                key.kid,
                                key.active_from.format("%Y-%m-%d %H:%M:%S UTC")
                            )
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        Command::Policy(PolicyCommand::Set { mfa, json }) => {
            let Some(policy) = latchkey_core::mfa::MfaPolicy::parse(&mfa) else {
                return Err(format!("--mfa: expected optional or required, not {mfa:?}"));
            };
            core.set_mfa_policy(policy, &actor).await.map_err(err)?;
            print(json, &serde_json::json!({ "mfa": policy.as_str() }), || match policy {
                latchkey_core::mfa::MfaPolicy::Required => {
                    "MFA is required: users without a second factor set one up at their next sign-in.".to_owned()
                }
                latchkey_core::mfa::MfaPolicy::Optional => "MFA is optional: each user chooses.".to_owned(),
            })
        }
        Command::Apikey(cmd) => apikey(core, cmd, &actor).await,
        Command::Webhook(cmd) => webhook(core, cmd, &actor).await,
        Command::Group(cmd) => group(core, cmd, &actor).await,
        Command::Serve | Command::Migrate { .. } => Err("internal: command routed to the wrong place".into()),
    }
}

async fn user(core: &Core, cmd: UserCommand, actor: &Actor) -> Result<(), String> {
    match cmd {
        UserCommand::Create { email, name, password_stdin, verified, admin, json } => {
            let password = if password_stdin { Some(read_password()?) } else { None };
            let u =
                accounts::create_user(core, NewUser { email, name, password, email_verified: verified, admin }, actor)
                    .await
                    .map_err(err)?;
            print(json, &u, || {
                format!("Created user {} (id {}){}", u.email, u.id, if u.admin { ", admin" } else { "" })
            })
        }
        UserCommand::List { json } => {
            let users = accounts::list_users(core).await.map_err(err)?;
            print(json, &users, || user_table(&users))
        }
        UserCommand::Disable { email, json } => {
            let u = accounts::set_disabled(core, &email, true, actor).await.map_err(err)?;
            print(json, &u, || format!("Disabled {}", u.email))
        }
        UserCommand::Enable { email, json } => {
            let u = accounts::set_disabled(core, &email, false, actor).await.map_err(err)?;
            print(json, &u, || format!("Enabled {}", u.email))
        }
        UserCommand::Delete { email, json } => {
            let u = accounts::delete_user(core, &email, actor).await.map_err(err)?;
            print(json, &serde_json::json!({ "id": u.id, "email": u.email, "deleted": true }), || {
                format!("Deleted {}", u.email)
            })
        }
    }
}

async fn client(core: &Core, cmd: ClientCommand, actor: &Actor) -> Result<(), String> {
    match cmd {
        ClientCommand::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            public,
            first_party,
            grants,
            signing_alg,
            require_mfa,
            admin,
            json,
        } => {
            let created = clients::create_client(
                core,
                NewClient {
                    name,
                    redirect_uris,
                    post_logout_redirect_uris,
                    backchannel_logout_uri,
                    public,
                    first_party,
                    grants,
                    signing_alg,
                    require_mfa,
                    admin,
                },
                actor,
            )
            .await
            .map_err(err)?;
            print(json, &created, || {
                let mut s =
                    format!("Created client {:?}\nclient_id: {}", created.client.name, created.client.client_id);
                if let Some(secret) = &created.client_secret {
                    s.push_str(&format!("\nclient_secret: {secret}\n(shown once: store it now)"));
                }
                s
            })
        }
        ClientCommand::List { json } => {
            let list = clients::list_clients(core).await.map_err(err)?;
            print(json, &list, || client_table(&list))
        }
        ClientCommand::Delete { id, json } => {
            clients::delete_client(core, &id, actor).await.map_err(err)?;
            print(json, &serde_json::json!({ "client_id": id, "deleted": true }), || format!("Deleted client {id}"))
        }
        ClientCommand::RotateSecret { id, json } => {
            let secret = clients::rotate_secret(core, &id, actor).await.map_err(err)?;
            print(json, &serde_json::json!({ "client_id": id, "client_secret": secret }), || {
                format!(
                    "client_id: {id}\nclient_secret: {secret}\n(shown once: store it now; the old secret no longer works)"
                )
            })
        }
    }
}

/// One line from stdin; the line ending is not part of the password.
fn read_password() -> Result<String, String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    if let Some(rest) = line.strip_suffix('\n') {
        line = rest.strip_suffix('\r').unwrap_or(rest).to_owned();
    }
    if line.is_empty() {
        return Err("--password-stdin: no password on standard input".into());
    }
    Ok(line)
}

async fn apikey(core: &Core, cmd: ApikeyCommand, actor: &Actor) -> Result<(), String> {
    match cmd {
        ApikeyCommand::Create { name, scopes, expires, json } => {
            let expires = expires.as_deref().map(|t| parse_time(t).map_err(|e| e.replace("--since", "--expires")));
            let created = core.create_api_key(&name, &scopes, expires.transpose()?, None, actor).await.map_err(err)?;
            print(json, &created, || {
                format!(
                    "Created API key {:?} ({}) with {}\nkey: {}\n(shown once: store it now)",
                    created.api_key.name,
                    created.api_key.prefix,
                    created.api_key.scopes.join(" "),
                    created.key
                )
            })
        }
        ApikeyCommand::List { json } => {
            let keys = core.list_api_keys().await.map_err(err)?;
            print(json, &keys, || {
                if keys.is_empty() {
                    return "No API keys.".to_owned();
                }
                let mut out =
                    format!("{:<15}  {:<24}  {:<8}  {:<20}  {}", "PREFIX", "NAME", "STATE", "LAST USED", "SCOPES");
                let now = core.clock.now();
                for k in &keys {
                    let state = if k.revoked_at.is_some() {
                        "revoked"
                    } else if k.expires_at.is_some_and(|t| t <= now) {
                        "expired"
                    } else {
                        "active"
                    };
                    let used = k.last_used_at.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or("never".into());
                    out.push_str(&format!(
                        "\n{:<15}  {:<24}  {:<8}  {:<20}  {}",
                        k.prefix,
                        k.name,
                        state,
                        used,
                        k.scopes.join(" ")
                    ));
                }
                out
            })
        }
        ApikeyCommand::Revoke { key, json } => {
            let revoked = core.revoke_api_key(&key, actor).await.map_err(err)?;
            print(json, &revoked, || format!("Revoked API key {} ({:?})", revoked.prefix, revoked.name))
        }
    }
}

async fn webhook(core: &Core, cmd: WebhookCommand, actor: &Actor) -> Result<(), String> {
    let toggle = |enabled| latchkey_core::webhooks::WebhookChange { enabled: Some(enabled), ..Default::default() };
    match cmd {
        WebhookCommand::Create { url, events, description, json } => {
            let created = core.create_webhook(&url, &description, &events, actor).await.map_err(err)?;
            print(json, &created, || {
                format!(
                    "Created webhook {} for {}\nevents: {}\nsecret: {}\n(shown once: store it now)",
                    created.webhook.id,
                    created.webhook.url,
                    created.webhook.events.join(" "),
                    created.secret
                )
            })
        }
        WebhookCommand::List { json } => {
            let hooks = core.list_webhooks().await.map_err(err)?;
            print(json, &hooks, || {
                if hooks.is_empty() {
                    return "No webhooks.".to_owned();
                }
                let mut out = format!("{:<22}  {:<8}  {:<40}  {}", "ID", "STATE", "URL", "EVENTS");
                for h in &hooks {
                    let state = if h.enabled { "enabled" } else { "disabled" };
                    out.push_str(&format!("\n{:<22}  {:<8}  {:<40}  {}", h.id, state, h.url, h.events.join(" ")));
                }
                out
            })
        }
        WebhookCommand::Deliveries { id, json } => {
            if core.find_webhook(&id).await.map_err(err)?.is_none() {
                return Err("no such webhook".to_owned());
            }
            let attempts = core.webhook_attempts(&id).await.map_err(err)?;
            print(json, &attempts, || {
                if attempts.is_empty() {
                    return "No deliveries yet.".to_owned();
                }
                let mut out = format!(
                    "{:<20}  {:<18}  {:<36}  {:>7}  {:<9}  {}",
                    "AT", "TYPE", "EVENT", "ATTEMPT", "OUTCOME", "STATUS"
                );
                for a in &attempts {
                    let status = match (a.status, &a.error) {
                        (Some(s), _) => s.to_string(),
                        (None, Some(e)) => e.clone(),
                        (None, None) => String::new(),
                    };
                    out.push_str(&format!(
                        "\n{:<20}  {:<18}  {:<36}  {:>7}  {:<9}  {}",
                        a.at.format("%Y-%m-%d %H:%M:%S"),
                        a.event_type,
                        a.event_id,
                        a.attempt,
                        a.outcome,
                        status
                    ));
                }
                out
            })
        }
        WebhookCommand::Disable { id } => {
            let h = core.update_webhook(&id, toggle(false), actor).await.map_err(err)?;
            print(false, &h, || format!("Disabled webhook {} ({})", h.id, h.url))
        }
        WebhookCommand::Enable { id } => {
            let h = core.update_webhook(&id, toggle(true), actor).await.map_err(err)?;
            print(false, &h, || format!("Enabled webhook {} ({})", h.id, h.url))
        }
        WebhookCommand::RotateSecret { id, json } => {
            let secret = core.rotate_webhook_secret(&id, actor).await.map_err(err)?;
            print(json, &serde_json::json!({ "id": id, "secret": secret }), || {
                format!("New secret for webhook {id}: {secret}\n(shown once: store it now)")
            })
        }
        WebhookCommand::Delete { id } => {
            core.delete_webhook(&id, actor).await.map_err(err)?;
            print(false, &(), || format!("Deleted webhook {id}"))
        }
    }
}

async fn find_group(core: &Core, key: &str) -> Result<latchkey_core::groups::Group, String> {
    core.find_group_by_id_or_name(key).await.map_err(err)?.ok_or_else(|| format!("no such group: {key}"))
}

async fn find_user(core: &Core, email: &str) -> Result<User, String> {
    accounts::find_by_email(core, email).await.map_err(err)?.ok_or_else(|| "no such user".to_owned())
}

async fn group(core: &Core, cmd: GroupCommand, actor: &Actor) -> Result<(), String> {
    match cmd {
        GroupCommand::Create { name, require_mfa, json } => {
            let g = core.create_group(&name, require_mfa, actor).await.map_err(err)?;
            print(json, &g, || format!("Created group {:?} ({})", g.name, g.id))
        }
        GroupCommand::List { json } => {
            let (groups, _) = core.list_groups(0, i64::MAX).await.map_err(err)?;
            print(json, &groups, || {
                if groups.is_empty() {
                    return "No groups.".to_owned();
                }
                let mut out = format!("{:<36}  {:<32}  {}", "ID", "NAME", "MFA");
                for g in &groups {
                    out.push_str(&format!(
                        "\n{:<36}  {:<32}  {}",
                        g.id,
                        g.name,
                        if g.require_mfa { "required" } else { "optional" }
                    ));
                }
                out
            })
        }
        GroupCommand::Update { group, name, require_mfa, json } => {
            if name.is_none() && require_mfa.is_none() {
                return Err("nothing to change: give --name or --require-mfa".into());
            }
            let g = find_group(core, &group).await?;
            let g = core.update_group(&g.id, name.as_deref(), require_mfa, actor).await.map_err(err)?;
            print(json, &g, || {
                format!("Group {:?}: MFA {}", g.name, if g.require_mfa { "required" } else { "optional" })
            })
        }
        GroupCommand::Delete { group, json } => {
            let g = find_group(core, &group).await?;
            core.delete_group(&g.id, actor).await.map_err(err)?;
            print(json, &serde_json::json!({ "id": g.id, "deleted": true }), || format!("Deleted group {:?}", g.name))
        }
        GroupCommand::AddMember { group, email, json } => member(core, &group, &email, true, json, actor).await,
        GroupCommand::RemoveMember { group, email, json } => member(core, &group, &email, false, json, actor).await,
        GroupCommand::Members { group, json } => {
            let g = find_group(core, &group).await?;
            let members = core.group_members(&g.id).await.map_err(err)?;
            print(json, &members, || user_table(&members))
        }
    }
}

async fn member(core: &Core, group: &str, email: &str, add: bool, json: bool, actor: &Actor) -> Result<(), String> {
    let g = find_group(core, group).await?;
    let u = find_user(core, email).await?;
    let changed = core.set_group_member(&g.id, &u.id, add, actor).await.map_err(err)?;
    print(
        json,
        &serde_json::json!({ "group_id": g.id, "user_id": u.id, "member": add, "changed": changed }),
        || match (add, changed) {
            (true, true) => format!("Added {} to {:?}", u.email, g.name),
            (true, false) => format!("{} is already in {:?}", u.email, g.name),
            (false, true) => format!("Removed {} from {:?}", u.email, g.name),
            (false, false) => format!("{} is not in {:?}", u.email, g.name),
        },
    )
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("--since: {s:?} is not an RFC 3339 time or a YYYY-MM-DD date"))
}

fn err(e: CoreError) -> String {
    match e {
        CoreError::NotFound(what) => format!("no such {what}"),
        // The operator sees the detail that a web user never would.
        CoreError::Internal(detail) => format!("internal error: {detail}"),
        other => other.to_string(),
    }
}

fn print<T: Serialize + ?Sized>(json: bool, value: &T, text: impl FnOnce() -> String) -> Result<(), String> {
    use std::io::Write;
    let s =
        if json { serde_json::to_string_pretty(value).map_err(|e| format!("cannot write JSON: {e}"))? } else { text() };
    if s.is_empty() {
        return Ok(());
    }
    match writeln!(std::io::stdout().lock(), "{s}") {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("cannot write to stdout: {e}")),
        _ => Ok(()),
    }
}

fn user_table(users: &[User]) -> String {
    if users.is_empty() {
        return "No users.".to_owned();
    }
    let mut out = format!("{:<36}  {:<32}  {:<8}  {:<8}  {}", "ID", "EMAIL", "VERIFIED", "STATE", "ROLE");
    for u in users {
        out.push_str(&format!(
            "\n{:<36}  {:<32}  {:<8}  {:<8}  {}",
            u.id,
            u.email,
            if u.email_verified { "yes" } else { "no" },
            if u.disabled { "disabled" } else { "active" },
            if u.admin { "admin" } else { "user" }
        ));
    }
    out
}

fn client_table(list: &[Client]) -> String {
    if list.is_empty() {
        return "No clients.".to_owned();
    }
    let mut out = format!("{:<32}  {:<24}  {:<12}  {}", "CLIENT_ID", "NAME", "TYPE", "REDIRECT URIS");
    for c in list {
        out.push_str(&format!(
            "\n{:<32}  {:<24}  {:<12}  {}",
            c.client_id,
            c.name,
            if c.public { "public" } else { "confidential" },
            c.redirect_uris.join(" ")
        ));
    }
    out
}
