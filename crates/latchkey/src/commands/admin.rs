//! The administrative commands: users, clients, secrets, audit.

use std::io::BufRead;

use chrono::{DateTime, NaiveDate, Utc};
use latchkey_core::accounts::{self, NewUser, User};
use latchkey_core::audit::{self, Actor};
use latchkey_core::clients::{self, Client, NewClient};
use latchkey_core::{Core, CoreError};
use serde::Serialize;

use super::ensure_migrated;
use crate::cli::{AuditCommand, ClientCommand, Command, KeysCommand, PolicyCommand, SecretsCommand, UserCommand};

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
            core.set_mfa_policy(policy).await.map_err(err)?;
            print(json, &serde_json::json!({ "mfa": policy.as_str() }), || match policy {
                latchkey_core::mfa::MfaPolicy::Required => {
                    "MFA is required: users without a second factor set one up at their next sign-in.".to_owned()
                }
                latchkey_core::mfa::MfaPolicy::Optional => "MFA is optional: each user chooses.".to_owned(),
            })
        }
        Command::Serve | Command::Migrate { .. } | Command::Apikey(_) => {
            Err("internal: command routed to the wrong place".into())
        }
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
