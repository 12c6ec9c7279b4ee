//! WebAuthn through webauthn-rs: security keys as a second factor and
//! passkeys as a first factor that counts as multi-factor (user
//! verification required). The relying party id is the host of
//! `server.public_url` and the origin exactly it (SPEC §5).
//!
//! Each ceremony's state waits in the store for 5 minutes under the SHA-256
//! of an id the page holds, bound to the session, the waiting sign-in or
//! (for passkey sign-in) the browser's CSRF cookie, and is taken once.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    Credential, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, SecurityKey, SecurityKeyAuthentication, SecurityKeyRegistration, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::Core;
use crate::accounts::User;
use crate::audit::{Actor, Event};
use crate::auth::{SignedIn, event_ctx};
use crate::error::CoreError;
use crate::mfa::{AMR_HWK, AMR_MFA, AMR_SWK, Factors};
use crate::sessions::{RequestContext, Session};
use crate::store::hashed_key;
use crate::tokens::{random_id, random_token};
use latchkey_db::mfa as q;
use latchkey_db::users as uq;

pub const KIND_PASSKEY: &str = "passkey";
pub const KIND_SECURITY_KEY: &str = "security_key";
/// SPEC §5: a WebAuthn ceremony lasts 5 minutes.
pub const CEREMONY_TTL: Duration = Duration::from_secs(300);
const CEREMONY: &str = "webauthn";
const MAX_NAME: usize = 64;
/// Larger responses are no WebAuthn response.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// The relying party for `public_url`, or why there can be none (an IP
/// address is no WebAuthn relying party id).
pub fn relying_party(public_url: &str) -> Result<Webauthn, String> {
    let origin = Url::parse(public_url).map_err(|e| e.to_string())?;
    let rp_id = origin.domain().ok_or("server.public_url must name a host, not an IP address, for WebAuthn")?;
    WebauthnBuilder::new(rp_id, &origin)
        // A security key is a second factor: presence is what it proves (the
        // password came first). Asking it for verification as well, through
        // credProtect, is a request Chromium refuses outright.
        .and_then(|b| {
            b.rp_name("Latchkey").timeout(CEREMONY_TTL).danger_set_user_presence_only_security_keys(true).build()
        })
        .map_err(|e| e.to_string())
}

/// Which kind of credential a ceremony registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Passkey,
    SecurityKey,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Passkey => KIND_PASSKEY,
            Kind::SecurityKey => KIND_SECURITY_KEY,
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Kind::Passkey => "a passkey",
            Kind::SecurityKey => "a security key",
        }
    }
}

#[derive(Serialize, Deserialize)]
enum State {
    RegisterPasskey(PasskeyRegistration),
    RegisterSecurityKey(SecurityKeyRegistration),
    SecondFactor(SecurityKeyAuthentication),
    /// A second factor from a user who has passkeys: those were registered
    /// with user verification required, so the check asks for it too.
    SecondFactorVerified(PasskeyAuthentication),
    SignIn(DiscoverableAuthentication),
}

#[derive(Serialize, Deserialize)]
struct Ceremony {
    binding: String,
    user_id: Option<String>,
    state: State,
}

/// A started ceremony: the id the page sends back, and the options for
/// `navigator.credentials.create()` / `.get()` (`{"publicKey": …}`).
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub ceremony: String,
    pub options: serde_json::Value,
}

/// One of a user's keys, as the account page lists it.
#[derive(Debug, Clone)]
pub struct KeyView {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub synced: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn cred_id_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn refused() -> CoreError {
    CoreError::invalid("Security key", "That did not work. The check may have expired or been used already; try again.")
}

fn user_handle(user_id: &str) -> Result<Uuid, CoreError> {
    Uuid::parse_str(user_id).map_err(|e| CoreError::Internal(format!("user id is no uuid: {e}")))
}

fn clean_name(name: &str, fallback: &str) -> Result<String, CoreError> {
    let name = name.trim();
    if name.chars().any(char::is_control) || name.chars().count() > MAX_NAME {
        return Err(CoreError::invalid("Name", format!("Use up to {MAX_NAME} characters, on one line.")));
    }
    Ok(if name.is_empty() { fallback.to_owned() } else { name.to_owned() })
}

impl Core {
    fn relying_party(&self) -> Result<&Webauthn, CoreError> {
        self.webauthn.as_deref().ok_or_else(|| {
            CoreError::NotBuilt("security keys and passkeys need server.public_url to name a host".to_owned())
        })
    }

    async fn put_ceremony(&self, c: &Ceremony) -> Result<String, CoreError> {
        let id = random_token()?;
        let json = serde_json::to_vec(c).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.store.put(&hashed_key(CEREMONY, &id), &json, CEREMONY_TTL).await?;
        Ok(id)
    }

    /// Takes a ceremony once; refused when unknown, used, or bound elsewhere.
    async fn take_ceremony(&self, id: &str, binding: &str) -> Result<Ceremony, CoreError> {
        if id.len() != 43 {
            return Err(refused());
        }
        let raw = self.store.take(&hashed_key(CEREMONY, id)).await?.ok_or_else(refused)?;
        let c: Ceremony = serde_json::from_slice(&raw).map_err(|_| refused())?;
        if !crate::tokens::constant_time_eq(c.binding.as_bytes(), binding.as_bytes()) {
            return Err(refused());
        }
        Ok(c)
    }

    async fn credential_rows(&self, user_id: &str) -> Result<Vec<q::CredentialRow>, CoreError> {
        let id = user_id.to_owned();
        Ok(self.db.run(move |conn| q::credentials_for(conn, &id)).await?)
    }

    /// The user's security keys and passkeys, oldest first.
    pub async fn keys(&self, user_id: &str) -> Result<Vec<KeyView>, CoreError> {
        Ok(self
            .credential_rows(user_id)
            .await?
            .into_iter()
            .map(|r| KeyView {
                id: r.id,
                kind: r.kind,
                name: r.name,
                synced: r.backup_eligible,
                created_at: r.created_at.and_utc(),
                last_used_at: r.last_used_at.map(|t| t.and_utc()),
            })
            .collect())
    }

    // --- Registration ---------------------------------------------------------

    /// Starts adding a passkey or security key for `user`; the options
    /// exclude the keys the user already has.
    pub async fn webauthn_register_start(&self, user: &User, kind: Kind, binding: &str) -> Result<Started, CoreError> {
        let rp = self.relying_party()?;
        let handle = user_handle(&user.id)?;
        let exclude: Vec<_> = self
            .credential_rows(&user.id)
            .await?
            .iter()
            .filter_map(|r| URL_SAFE_NO_PAD.decode(&r.credential_id).ok())
            .collect();
        let display = user.name.clone().unwrap_or_else(|| user.email.clone());
        let (options, state) = match kind {
            Kind::Passkey => {
                let (ccr, st) = rp
                    .start_passkey_registration(handle, &user.email, &display, Some(exclude))
                    .map_err(|e| CoreError::Internal(format!("webauthn: {e}")))?;
                let mut options = serde_json::to_value(&ccr).map_err(|e| CoreError::Internal(e.to_string()))?;
                // A passkey signs in without an email first, so it must be
                // discoverable: ask the authenticator to keep it.
                if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
                    sel["residentKey"] = "required".into();
                    sel["requireResidentKey"] = true.into();
                }
                (options, State::RegisterPasskey(st))
            }
            Kind::SecurityKey => {
                let (ccr, st) = rp
                    .start_securitykey_registration(handle, &user.email, &display, Some(exclude), None, None)
                    .map_err(|e| CoreError::Internal(format!("webauthn: {e}")))?;
                let options = serde_json::to_value(&ccr).map_err(|e| CoreError::Internal(e.to_string()))?;
                (options, State::RegisterSecurityKey(st))
            }
        };
        let ceremony =
            self.put_ceremony(&Ceremony { binding: binding.to_owned(), user_id: Some(user.id.clone()), state }).await?;
        Ok(Started { ceremony, options })
    }

    /// Finishes adding a key: checked by webauthn-rs against the ceremony
    /// (challenge, origin, RP id, user verification for passkeys), then
    /// saved. Returns the `amr` value the key proves (`hwk`, or `swk` for a
    /// key that syncs) and new recovery codes when this is the user's first
    /// factor.
    pub async fn webauthn_register_finish(
        &self,
        user: &User,
        ceremony: &str,
        binding: &str,
        name: &str,
        response: &str,
        ctx: &RequestContext,
    ) -> Result<(&'static str, Option<Vec<String>>), CoreError> {
        let rp = self.relying_party()?;
        let c = self.take_ceremony(ceremony, binding).await?;
        if c.user_id.as_deref() != Some(user.id.as_str()) || response.len() > MAX_RESPONSE {
            return Err(refused());
        }
        let reg: RegisterPublicKeyCredential = serde_json::from_str(response).map_err(|_| refused())?;
        let (kind, cred): (Kind, Credential) = match c.state {
            State::RegisterPasskey(st) => {
                let pk = rp.finish_passkey_registration(&reg, &st).map_err(|e| {
                    tracing::info!(error = %e, "passkey registration refused");
                    refused()
                })?;
                (Kind::Passkey, pk.into())
            }
            State::RegisterSecurityKey(st) => {
                let sk = rp.finish_securitykey_registration(&reg, &st).map_err(|e| {
                    tracing::info!(error = %e, "security key registration refused");
                    refused()
                })?;
                (Kind::SecurityKey, sk.into())
            }
            _ => return Err(refused()),
        };
        let fallback = match kind {
            Kind::Passkey => "Passkey",
            Kind::SecurityKey => "Security key",
        };
        let name = clean_name(name, fallback)?;
        let first = !self.factors(&user.id).await?.any();
        let method = if cred.backup_eligible { AMR_SWK } else { AMR_HWK };
        let row = q::CredentialRow {
            id: random_id()?,
            user_id: user.id.clone(),
            kind: kind.as_str().to_owned(),
            credential_id: cred_id_text(cred.cred_id.as_ref()),
            name,
            sign_count: i64::from(cred.counter),
            backup_eligible: cred.backup_eligible,
            backup_state: cred.backup_state,
            credential: serde_json::to_string(&cred).map_err(|e| CoreError::Internal(e.to_string()))?,
            created_at: self.clock.now_naive(),
            last_used_at: None,
        };
        self.db.run(move |conn| q::credential_insert(conn, &row)).await.map_err(|e| match e {
            latchkey_db::DbError::Conflict(_) => CoreError::invalid("Security key", "That key is already registered."),
            other => other.into(),
        })?;
        self.factor_changed(user, "mfa.added", kind.noun(), ctx).await;
        let codes = if first { Some(self.new_recovery_codes(user, ctx).await?) } else { None };
        Ok((method, codes))
    }

    // --- A key as the second factor -------------------------------------------

    /// Starts a second-factor check with any of the user's keys.
    pub async fn webauthn_second_factor_start(&self, user_id: &str, binding: &str) -> Result<Started, CoreError> {
        let rp = self.relying_party()?;
        let rows = self.credential_rows(user_id).await?;
        let creds: Vec<Credential> =
            rows.iter().filter_map(|r| serde_json::from_str::<Credential>(&r.credential).ok()).collect();
        if creds.is_empty() {
            return Err(CoreError::invalid("Security key", "You have no security key on this account."));
        }
        let webauthn = |e: webauthn_rs::prelude::WebauthnError| CoreError::Internal(format!("webauthn: {e}"));
        let (rcr, state) = if rows.iter().any(|r| r.kind == KIND_PASSKEY) {
            let keys: Vec<Passkey> = creds.into_iter().map(Passkey::from).collect();
            let (rcr, st) = rp.start_passkey_authentication(&keys).map_err(webauthn)?;
            (rcr, State::SecondFactorVerified(st))
        } else {
            let keys: Vec<SecurityKey> = creds.into_iter().map(SecurityKey::from).collect();
            let (rcr, st) = rp.start_securitykey_authentication(&keys).map_err(webauthn)?;
            (rcr, State::SecondFactor(st))
        };
        let options = serde_json::to_value(&rcr).map_err(|e| CoreError::Internal(e.to_string()))?;
        let ceremony = self
            .put_ceremony(&Ceremony { binding: binding.to_owned(), user_id: Some(user_id.to_owned()), state })
            .await?;
        Ok(Started { ceremony, options })
    }

    /// Finishes a second-factor check; returns the `amr` it adds.
    pub async fn webauthn_second_factor_finish(
        &self,
        user_id: &str,
        ceremony: &str,
        binding: &str,
        response: &str,
    ) -> Result<Vec<&'static str>, CoreError> {
        let rp = self.relying_party()?;
        let c = self.take_ceremony(ceremony, binding).await?;
        if c.user_id.as_deref() != Some(user_id) || response.len() > MAX_RESPONSE {
            return Err(refused());
        }
        let cred: PublicKeyCredential = serde_json::from_str(response).map_err(|_| refused())?;
        let result = match c.state {
            State::SecondFactor(st) => rp.finish_securitykey_authentication(&cred, &st),
            State::SecondFactorVerified(st) => rp.finish_passkey_authentication(&cred, &st),
            _ => return Err(refused()),
        }
        .map_err(|e| {
            tracing::info!(error = %e, "security key check refused");
            refused()
        })?;
        let row = self.key_used(user_id, result.cred_id().as_ref(), &result).await?;
        Ok(vec![if row.backup_eligible { AMR_SWK } else { AMR_HWK }])
    }

    /// Records a key's use: its counter and backup state (webauthn-rs has
    /// already refused a counter that went backwards).
    async fn key_used(
        &self,
        user_id: &str,
        cred_id: &[u8],
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<q::CredentialRow, CoreError> {
        let text = cred_id_text(cred_id);
        let row = self
            .db
            .run(move |conn| q::credential_by_credential_id(conn, &text))
            .await?
            .filter(|r| r.user_id == user_id)
            .ok_or_else(refused)?;
        let cred: Credential = serde_json::from_str(&row.credential).map_err(|_| refused())?;
        let mut pk = Passkey::from(cred);
        pk.update_credential(result);
        let cred = Credential::from(pk);
        let json = serde_json::to_string(&cred).map_err(|e| CoreError::Internal(e.to_string()))?;
        let (id, count, backup, now) =
            (row.id.clone(), i64::from(cred.counter), cred.backup_state, self.clock.now_naive());
        self.db.run(move |conn| q::credential_used(conn, &id, &json, count, backup, now)).await?;
        Ok(row)
    }

    // --- Passkey sign-in ------------------------------------------------------

    /// Starts a passkey sign-in (no email first: the passkey names its user).
    pub async fn passkey_sign_in_start(&self, binding: &str) -> Result<Started, CoreError> {
        let rp = self.relying_party()?;
        let (rcr, st) =
            rp.start_discoverable_authentication().map_err(|e| CoreError::Internal(format!("webauthn: {e}")))?;
        let mut options = serde_json::to_value(&rcr).map_err(|e| CoreError::Internal(e.to_string()))?;
        // The page asks for conditional mediation itself where supported;
        // the button asks plainly.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        let ceremony = self
            .put_ceremony(&Ceremony { binding: binding.to_owned(), user_id: None, state: State::SignIn(st) })
            .await?;
        Ok(Started { ceremony, options })
    }

    /// Finishes a passkey sign-in: the passkey must be registered as one,
    /// to the user it names, and have verified the user. A passkey counts as
    /// multi-factor, so no second factor follows.
    pub async fn passkey_sign_in_finish(
        &self,
        ceremony: &str,
        binding: &str,
        response: &str,
        ctx: &RequestContext,
    ) -> Result<SignedIn, CoreError> {
        let rp = self.relying_party()?;
        let c = self.take_ceremony(ceremony, binding).await?;
        let State::SignIn(st) = c.state else { return Err(refused()) };
        if response.len() > MAX_RESPONSE {
            return Err(refused());
        }
        let cred: PublicKeyCredential = serde_json::from_str(response).map_err(|_| refused())?;
        let (handle, cred_id) = rp.identify_discoverable_authentication(&cred).map_err(|_| refused())?;
        let text = cred_id_text(cred_id);
        let row = self
            .db
            .run(move |conn| q::credential_by_credential_id(conn, &text))
            .await?
            .filter(|r| r.kind == KIND_PASSKEY && Uuid::parse_str(&r.user_id).ok() == Some(handle))
            .ok_or_else(refused)?;
        let stored: Credential = serde_json::from_str(&row.credential).map_err(|_| refused())?;
        let result = rp.finish_discoverable_authentication_v2(&cred, st, &stored).map_err(|e| {
            tracing::info!(error = %e, "passkey sign-in refused");
            refused()
        })?;
        if !result.user_verified() {
            return Err(refused());
        }
        self.key_used(&row.user_id, result.cred_id().as_ref(), &result).await?;
        let id = row.user_id.clone();
        let user: User = self
            .db
            .run(move |conn| uq::find_by_id(conn, &id))
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(refused)?
            .into();
        let method = if row.backup_eligible { AMR_SWK } else { AMR_HWK };
        self.signed_in_now(user, vec![method.to_owned(), AMR_MFA.to_owned()], "passkey", ctx).await
    }

    // --- Changes ------------------------------------------------------------------

    pub async fn rename_key(&self, user: &User, session: &Session, id: &str, name: &str) -> Result<bool, CoreError> {
        if !self.recently_authenticated(session) {
            return Err(CoreError::ReauthenticationRequired);
        }
        let name = clean_name(name, "")?;
        if name.is_empty() {
            return Err(CoreError::invalid("Name", "Give it a name you will recognise."));
        }
        let (uid, id) = (user.id.clone(), id.to_owned());
        Ok(self.db.run(move |conn| q::credential_rename(conn, &uid, &id, &name)).await?)
    }

    /// Removes one of the user's keys (refused when policy needs it).
    pub async fn remove_key(
        &self,
        user: &User,
        session: &Session,
        id: &str,
        ctx: &RequestContext,
    ) -> Result<bool, CoreError> {
        let rows = self.credential_rows(&user.id).await?;
        let Some(row) = rows.iter().find(|r| r.id == id) else { return Ok(false) };
        self.check_factor_change(user, session, |_: &Factors| true).await?;
        let (uid, id) = (user.id.clone(), id.to_owned());
        let removed = self.db.run(move |conn| q::credential_delete(conn, &uid, &id)).await?;
        if removed {
            let what = if row.kind == KIND_PASSKEY { Kind::Passkey } else { Kind::SecurityKey };
            self.after_factor_removed(user, what.noun(), ctx).await?;
        }
        Ok(removed)
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("webauthn ceremony state")
    }
}

/// Audit and builds the session of a sign-in that needs nothing more.
impl Core {
    pub(crate) async fn signed_in_now(
        &self,
        user: User,
        amr: Vec<String>,
        method: &str,
        ctx: &RequestContext,
    ) -> Result<SignedIn, CoreError> {
        let (session_id, session) = self.create_session(&user.id, amr, ctx).await?;
        self.audit(
            event_ctx(Event::new("login.succeeded", &Actor::User(user.id.clone())), ctx)
                .user(&user.id, &user.email.to_lowercase())
                .detail(serde_json::json!({ "method": method })),
        )
        .await;
        Ok(SignedIn { session_id, session, user, device_token: None })
    }
}
