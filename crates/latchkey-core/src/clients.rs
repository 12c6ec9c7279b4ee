//! Relying-party clients: registration with exact redirect URIs (SPEC §5),
//! secrets shown once and stored only as SHA-256, listing, deletion and
//! secret rotation.

use chrono::{DateTime, Utc};
use latchkey_db::clients::{self as q, ClientRow};
use serde::Serialize;
use url::{Host, Url};

use crate::Core;
use crate::accounts::not_found;
use crate::audit::{self, Actor, Event};
use crate::error::CoreError;
use crate::tokens::{hash_secret, random_token};

pub const GRANT_AUTHORIZATION_CODE: &str = "authorization_code";
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
pub const MAX_URIS: usize = 32;
pub const MAX_URI_LEN: usize = 2000;

/// A client as the CLI and admin API show it; never the secret or its hash.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub public: bool,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Vec<String>,
    pub signing_alg: String,
    pub require_mfa: bool,
    /// May ask for the `latchkey:admin` scope (the admin API).
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ClientRow> for Client {
    fn from(r: ClientRow) -> Self {
        Client {
            client_id: r.id,
            name: r.name,
            public: r.public,
            first_party: r.first_party,
            redirect_uris: serde_json::from_str(&r.redirect_uris).unwrap_or_default(),
            post_logout_redirect_uris: serde_json::from_str(&r.post_logout_redirect_uris).unwrap_or_default(),
            backchannel_logout_uri: r.backchannel_logout_uri,
            grant_types: serde_json::from_str(&r.grant_types).unwrap_or_default(),
            signing_alg: r.signing_alg,
            require_mfa: r.require_mfa,
            admin: r.admin,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

/// What registering a client needs.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub public: bool,
    pub first_party: bool,
    /// Empty: the defaults, authorization_code and refresh_token.
    pub grants: Vec<String>,
    pub signing_alg: Option<String>,
    pub require_mfa: bool,
    /// May ask for `latchkey:admin`; only a confidential client with the
    /// authorization_code grant can be one.
    pub admin: bool,
}

/// A new client and, for a confidential one, its secret (shown once).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: Client,
    pub client_secret: Option<String>,
}

/// A redirect URI as SPEC §5 allows it: absolute, https (http only for
/// localhost and loopback addresses, where native apps listen, RFC 8252 §7.3),
/// no fragment, no wildcard, no credentials.
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI_LEN {
        return Err(format!("is longer than {MAX_URI_LEN} characters"));
    }
    if uri.contains('*') {
        return Err("must not contain wildcards".into());
    }
    let url = Url::parse(uri).map_err(|_| "is not an absolute URI".to_owned())?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err("must not contain a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    match url.scheme() {
        "https" => {
            if url.host().is_none() {
                return Err("has no host".into());
            }
        }
        "http" => {
            let loopback = match url.host() {
                Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(Host::Ipv4(ip)) => ip.is_loopback(),
                Some(Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback {
                return Err("must use https (http is allowed only for localhost and loopback addresses)".into());
            }
        }
        scheme => return Err(format!("must use https, not {scheme}:")),
    }
    Ok(())
}

fn check_uris(field: &'static str, uris: &[String]) -> Result<Vec<String>, CoreError> {
    if uris.len() > MAX_URIS {
        return Err(CoreError::invalid(field, format!("at most {MAX_URIS} URIs")));
    }
    let mut out: Vec<String> = Vec::with_capacity(uris.len());
    for u in uris {
        validate_redirect_uri(u).map_err(|m| CoreError::invalid(field, format!("{u:?} {m}")))?;
        if !out.contains(u) {
            out.push(u.clone());
        }
    }
    Ok(out)
}

/// A client's settings, checked.
struct Checked {
    name: String,
    grants: Vec<String>,
    redirect_uris: Vec<String>,
    post_logout: Vec<String>,
    backchannel: Option<String>,
    signing_alg: String,
}

/// Checks every setting of a new or edited client. Field names are the
/// command line's; the admin API maps them to its own.
fn check(new: &NewClient) -> Result<Checked, CoreError> {
    let name = new.name.trim().to_owned();
    if name.is_empty() {
        return Err(CoreError::invalid("--name", "the client needs a name"));
    }
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid("--name", "at most 200 characters, no control characters"));
    }
    let mut grants: Vec<String> = Vec::new();
    for g in if new.grants.is_empty() {
        vec![GRANT_AUTHORIZATION_CODE.to_owned(), GRANT_REFRESH_TOKEN.to_owned()]
    } else {
        new.grants.clone()
    } {
        if ![GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_CLIENT_CREDENTIALS].contains(&g.as_str()) {
            return Err(CoreError::invalid(
                "--grant",
                format!("{g:?} is not one of authorization_code, refresh_token, client_credentials"),
            ));
        }
        if !grants.contains(&g) {
            grants.push(g);
        }
    }
    let redirect_uris = check_uris("--redirect-uri", &new.redirect_uris)?;
    if grants.iter().any(|g| g == GRANT_AUTHORIZATION_CODE) && redirect_uris.is_empty() {
        return Err(CoreError::invalid("--redirect-uri", "required with the authorization_code grant"));
    }
    if new.public && grants.iter().any(|g| g == GRANT_CLIENT_CREDENTIALS) {
        return Err(CoreError::invalid("--grant", "a public client cannot use client_credentials (it has no secret)"));
    }
    if grants == [GRANT_REFRESH_TOKEN] {
        return Err(CoreError::invalid("--grant", "refresh_token needs a grant that issues tokens"));
    }
    let post_logout = check_uris("--post-logout-redirect-uri", &new.post_logout_redirect_uris)?;
    let backchannel = match &new.backchannel_logout_uri {
        Some(u) => Some(check_uris("--backchannel-logout-uri", std::slice::from_ref(u))?.remove(0)),
        None => None,
    };
    if new.admin && (new.public || !grants.iter().any(|g| g == GRANT_AUTHORIZATION_CODE)) {
        return Err(CoreError::invalid("--admin", "an admin client must be confidential and use authorization_code"));
    }
    let signing_alg = new.signing_alg.clone().unwrap_or_else(|| "RS256".to_owned());
    if !["RS256", "ES256", "EdDSA"].contains(&signing_alg.as_str()) {
        return Err(CoreError::invalid("--signing-alg", format!("{signing_alg:?} is not one of RS256, ES256, EdDSA")));
    }
    Ok(Checked { name, grants, redirect_uris, post_logout, backchannel, signing_alg })
}

pub async fn create_client(core: &Core, new: NewClient, actor: &Actor) -> Result<CreatedClient, CoreError> {
    let Checked { name, grants, redirect_uris, post_logout, backchannel, signing_alg } = check(&new)?;
    let secret = if new.public { None } else { Some(random_token()?) };
    let now = core.clock.now_naive();
    let row = ClientRow {
        // Hex: never begins with '-', so it is safe as a command-line argument.
        id: crate::tokens::hex(&crate::tokens::random_bytes::<16>()?),
        name,
        secret_hash: secret.as_deref().map(hash_secret),
        redirect_uris: json_list(&redirect_uris),
        post_logout_redirect_uris: json_list(&post_logout),
        backchannel_logout_uri: backchannel,
        public: new.public,
        first_party: new.first_party,
        grant_types: json_list(&grants),
        signing_alg,
        require_mfa: new.require_mfa,
        created_at: now,
        updated_at: now,
        admin: new.admin,
    };
    let actor = actor.clone();
    let saved = row.clone();
    core.db
        .run(move |conn| {
            latchkey_db::transaction(conn, |conn| {
                q::insert(conn, &row)?;
                audit::record(
                    conn,
                    now,
                    &Event::new("client.created", &actor)
                        .detail(serde_json::json!({ "client_id": row.id, "name": row.name, "public": row.public })),
                )
            })
        })
        .await?;
    // Its algorithm gets a key now, before any token needs one.
    if let Some(alg) = crate::signing::Alg::parse(&saved.signing_alg) {
        core.ensure_key_for(alg).await?;
    }
    Ok(CreatedClient { client: saved.into(), client_secret: secret })
}

fn json_list(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

/// What an admin may change on a registered client (not whether it is
/// public, nor its id or secret); `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `Some(None)` removes it.
    pub backchannel_logout_uri: Option<Option<String>>,
    pub first_party: Option<bool>,
    pub grants: Option<Vec<String>>,
    pub signing_alg: Option<String>,
    pub require_mfa: Option<bool>,
    pub admin: Option<bool>,
}

/// Edits a client, checked as strictly as a new one.
pub async fn update_client(core: &Core, id: &str, c: ClientChanges, actor: &Actor) -> Result<Client, CoreError> {
    let current = find_client(core, id).await?.ok_or(CoreError::NotFound("client"))?;
    let merged = NewClient {
        name: c.name.unwrap_or(current.name),
        redirect_uris: c.redirect_uris.unwrap_or(current.redirect_uris),
        post_logout_redirect_uris: c.post_logout_redirect_uris.unwrap_or(current.post_logout_redirect_uris),
        backchannel_logout_uri: c.backchannel_logout_uri.unwrap_or(current.backchannel_logout_uri),
        public: current.public,
        first_party: c.first_party.unwrap_or(current.first_party),
        grants: c.grants.unwrap_or(current.grant_types),
        signing_alg: Some(c.signing_alg.unwrap_or(current.signing_alg)),
        require_mfa: c.require_mfa.unwrap_or(current.require_mfa),
        admin: c.admin.unwrap_or(current.admin),
    };
    let Checked { name, grants, redirect_uris, post_logout, backchannel, signing_alg } = check(&merged)?;
    let now = core.clock.now_naive();
    let id = id.to_owned();
    let actor = actor.clone();
    let alg = crate::signing::Alg::parse(&signing_alg);
    let row = core
        .db
        .run(move |conn| {
            latchkey_db::transaction(conn, |conn| {
                let Some(mut row) = q::find(conn, &id)? else { return Err(latchkey_db::DbError::NotFound) };
                row.name = name;
                row.redirect_uris = json_list(&redirect_uris);
                row.post_logout_redirect_uris = json_list(&post_logout);
                row.backchannel_logout_uri = backchannel;
                row.first_party = merged.first_party;
                row.grant_types = json_list(&grants);
                row.signing_alg = signing_alg;
                row.require_mfa = merged.require_mfa;
                row.admin = merged.admin;
                row.updated_at = now;
                q::update(conn, &row)?;
                audit::record(
                    conn,
                    now,
                    &Event::new("client.updated", &actor)
                        .detail(serde_json::json!({ "client_id": row.id, "name": row.name })),
                )?;
                Ok(row)
            })
        })
        .await
        .map_err(not_found("client"))?;
    core.forget_registry().await;
    if let Some(alg) = alg {
        core.ensure_key_for(alg).await?;
    }
    Ok(row.into())
}

pub async fn list_clients(core: &Core) -> Result<Vec<Client>, CoreError> {
    Ok(core.db.run(q::list).await?.into_iter().map(Client::from).collect())
}

pub async fn find_client(core: &Core, id: &str) -> Result<Option<Client>, CoreError> {
    let id = id.to_owned();
    Ok(core.db.run(move |conn| q::find(conn, &id)).await?.map(Client::from))
}

pub async fn delete_client(core: &Core, id: &str, actor: &Actor) -> Result<(), CoreError> {
    let id = id.to_owned();
    let now = core.clock.now_naive();
    let actor = actor.clone();
    core.db
        .run(move |conn| {
            latchkey_db::transaction(conn, |conn| {
                if !q::delete(conn, &id)? {
                    return Err(latchkey_db::DbError::NotFound);
                }
                audit::record(
                    conn,
                    now,
                    &Event::new("client.deleted", &actor).detail(serde_json::json!({ "client_id": id })),
                )
            })
        })
        .await
        .map_err(not_found("client"))?;
    core.forget_registry().await;
    Ok(())
}

/// A fresh secret for a confidential client; the old one stops working.
pub async fn rotate_secret(core: &Core, id: &str, actor: &Actor) -> Result<String, CoreError> {
    let id = id.to_owned();
    let secret = random_token()?;
    let hash = hash_secret(&secret);
    let now = core.clock.now_naive();
    let actor = actor.clone();
    core.db
        .run(move |conn| {
            latchkey_db::transaction(conn, |conn| {
                let Some(row) = q::find(conn, &id)? else {
                    return Err(latchkey_db::DbError::NotFound);
                };
                if row.public {
                    return Err(latchkey_db::DbError::Conflict("public".into()));
                }
                q::set_secret_hash(conn, &id, &hash, now)?;
                audit::record(
                    conn,
                    now,
                    &Event::new("client.secret_rotated", &actor).detail(serde_json::json!({ "client_id": id })),
                )
            })
        })
        .await
        .map_err(|e| match e {
            latchkey_db::DbError::Conflict(_) => CoreError::Conflict("A public client has no secret to rotate.".into()),
            other => not_found("client")(other),
        })?;
    Ok(secret)
}

/// Checks a presented secret against the stored hash in constant time.
pub async fn verify_secret(core: &Core, id: &str, presented: &str) -> Result<bool, CoreError> {
    let id = id.to_owned();
    let row = core.db.run(move |conn| q::find(conn, &id)).await?;
    Ok(match row.and_then(|r| r.secret_hash) {
        Some(h) => crate::tokens::verify_secret(presented, &h),
        None => false,
    })
}

/// How long an instance trusts its list of redirect-URI origins.
const ORIGINS_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// What every instance keeps of the client registry, refreshed every few
/// seconds: the registered client ids (a deleted client's tokens stop
/// working) and the origins of their redirect URIs, the only origins that
/// may call the token, userinfo and revocation endpoints from a browser
/// (CORS, SPEC §5).
#[derive(Default)]
pub struct OriginCache {
    current: tokio::sync::RwLock<Option<(std::time::Instant, std::sync::Arc<Registry>)>>,
}

#[derive(Default)]
struct Registry {
    /// Each client with its secret's hash (the token endpoint's hot path).
    clients: std::collections::HashMap<String, (Client, Option<String>)>,
    origins: std::collections::HashSet<String>,
}

impl std::fmt::Debug for OriginCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OriginCache")
    }
}

/// `scheme://host[:port]` of a URI, as browsers send it in `Origin`.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

impl Core {
    async fn registry(&self) -> Result<std::sync::Arc<Registry>, CoreError> {
        if let Some((at, reg)) = self.client_origins.current.read().await.as_ref()
            && at.elapsed() < ORIGINS_FRESH
        {
            return Ok(std::sync::Arc::clone(reg));
        }
        let rows = self.db.run(q::list).await?;
        let clients: Vec<(Client, Option<String>)> =
            rows.into_iter().map(|r| (r.secret_hash.clone(), Client::from(r))).map(|(h, c)| (c, h)).collect();
        let reg = std::sync::Arc::new(Registry {
            origins: clients.iter().flat_map(|(c, _)| c.redirect_uris.iter().filter_map(|u| origin_of(u))).collect(),
            clients: clients.into_iter().map(|(c, h)| (c.client_id.clone(), (c, h))).collect(),
        });
        *self.client_origins.current.write().await = Some((std::time::Instant::now(), std::sync::Arc::clone(&reg)));
        Ok(reg)
    }

    /// A client and its secret's hash: from this instance's registry (a
    /// change elsewhere shows within its refresh), else from the database
    /// (a client registered since the last refresh).
    pub(crate) async fn client_with_secret(&self, id: &str) -> Result<Option<(Client, Option<String>)>, CoreError> {
        if let Some(entry) = self.registry().await?.clients.get(id) {
            return Ok(Some(entry.clone()));
        }
        let id = id.to_owned();
        Ok(self
            .db
            .run(move |conn| q::find(conn, &id))
            .await?
            .map(|r| (r.secret_hash.clone(), Client::from(r)))
            .map(|(h, c)| (c, h)))
    }

    /// Whether a browser on `origin` may read token and userinfo responses.
    pub async fn cors_origin_allowed(&self, origin: &str) -> Result<bool, CoreError> {
        Ok(self.registry().await?.origins.contains(origin))
    }

    /// Drops this instance's copy of the registry after a change made here.
    pub async fn forget_registry(&self) {
        *self.client_origins.current.write().await = None;
    }

    /// Whether the client is (still) registered, as this instance last read.
    pub async fn client_registered(&self, client_id: &str) -> Result<bool, CoreError> {
        Ok(self.registry().await?.clients.contains_key(client_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_the_rules() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?x=1",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
        ] {
            assert_eq!(validate_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://*.example.com/cb",
            "https://user:pw@app.example.com/cb",
            "/relative/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "myapp:/cb",
            "com.example.app:/oauth2redirect",
            "http://10.0.0.1/cb",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
        assert!(validate_redirect_uri(&format!("https://a.example/{}", "x".repeat(MAX_URI_LEN))).is_err());
    }
}
