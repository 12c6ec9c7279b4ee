//! Second factors and the MFA step (SPEC §5): TOTP, recovery codes, the
//! sign-in that waits for a second factor after any first factor, step-up
//! of a live session, and the global MFA policy an admin sets.
//!
//! WebAuthn (security keys, passkeys) lives in [`crate::webauthn`]; this
//! module decides when a second factor is needed and what a completed one
//! records (`amr`, `acr`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::Core;
use crate::accounts::User;
use crate::audit::{Actor, Event};
use crate::auth::{SignedIn, event_ctx};
use crate::error::CoreError;
use crate::sessions::{RequestContext, Session};
use crate::store::hashed_key;
use crate::tokens::{constant_time_eq, hash_secret, random_bytes, random_id, random_token};
use latchkey_db::mfa as q;

/// RFC 8176 method values this module records.
pub const AMR_OTP: &str = "otp";
pub const AMR_MFA: &str = "mfa";
/// A hardware-bound key (security key, device-bound passkey).
pub const AMR_HWK: &str = "hwk";
/// A software key (a passkey that syncs between devices).
pub const AMR_SWK: &str = "swk";

/// How long a sign-in waits for its second factor.
pub const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long an authenticator-app set-up page stays usable.
const SETUP_TTL: Duration = Duration::from_secs(600);
/// How often instances read the policy again (SPEC §2: applied within 5 s).
const POLICY_FRESH: Duration = Duration::from_secs(2);
/// TOTP: 30-second steps, 6 digits, and one step of clock drift either way.
const STEP_SECS: u64 = 30;
const SKEW_STEPS: i64 = 1;
/// Ten recovery codes of 12 characters from a 32-letter alphabet (60 bits).
const RECOVERY_CODES: usize = 10;
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
const PENDING: &str = "mfa-pending";
const ATTEMPTS: &str = "mfa-fail";

/// `acr` for the methods a session used (SPEC §5): `phr` when a WebAuthn key
/// took part in a multi-factor sign-in, `mfa` for any other, else `1fa`.
pub fn acr_for(amr: &[String]) -> &'static str {
    let has = |m: &str| amr.iter().any(|x| x == m);
    if has(AMR_MFA) && (has(AMR_HWK) || has(AMR_SWK)) {
        "phr"
    } else if has(AMR_MFA) {
        "mfa"
    } else {
        "1fa"
    }
}

/// Whether a session's `acr` meets `wanted` (`1fa` < `mfa` < `phr`).
pub fn acr_satisfies(have: &str, wanted: &str) -> bool {
    let rank = |a: &str| match a {
        "phr" => 2,
        "mfa" => 1,
        _ => 0,
    };
    rank(have) >= rank(wanted)
}

/// Whether MFA is up to each user or demanded of everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MfaPolicy {
    Optional,
    Required,
}

impl MfaPolicy {
    pub fn parse(s: &str) -> Option<MfaPolicy> {
        match s {
            "optional" => Some(MfaPolicy::Optional),
            "required" => Some(MfaPolicy::Required),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            MfaPolicy::Optional => "optional",
            MfaPolicy::Required => "required",
        }
    }
}

/// The policy as this instance last read it.
#[derive(Default)]
pub struct PolicyCache {
    current: tokio::sync::RwLock<Option<(Instant, MfaPolicy)>>,
}

impl std::fmt::Debug for PolicyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyCache")
    }
}

/// The second factors a user has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Factors {
    pub totp: bool,
    pub security_keys: usize,
    pub passkeys: usize,
    pub recovery_codes_left: i64,
}

impl Factors {
    /// A factor other than a recovery code (those only back the others up).
    pub fn any(&self) -> bool {
        self.totp || self.security_keys > 0 || self.passkeys > 0
    }
    pub fn webauthn(&self) -> bool {
        self.security_keys > 0 || self.passkeys > 0
    }
}

/// A sign-in that passed its first factor and waits for the second, kept in
/// the store under the SHA-256 of the token in the browser's cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSignIn {
    pub user_id: String,
    /// The first factor's methods.
    pub amr: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// The user had no factor at the first factor: setting one up here is
    /// how this sign-in may finish (policy requires one).
    #[serde(default)]
    pub may_enrol: bool,
}

/// Who is proving a second factor: a sign-in waiting for one, or a live
/// session stepping up.
#[derive(Debug, Clone)]
pub enum Subject {
    Pending { token: String, record: PendingSignIn },
    Session(Session),
}

impl Subject {
    pub fn user_id(&self) -> &str {
        match self {
            Subject::Pending { record, .. } => &record.user_id,
            Subject::Session(s) => &s.record.user_id,
        }
    }
    /// What ceremony state is bound to: this sign-in or this session.
    pub fn binding(&self) -> String {
        match self {
            Subject::Pending { token, .. } => format!("pending:{}", hash_secret(token)),
            Subject::Session(s) => format!("session:{}", s.handle),
        }
    }
}

/// The end of a second factor: a new session (id for the cookie).
#[derive(Debug)]
pub struct Completed {
    pub session_id: String,
    pub session: Session,
    /// The known-device token of a sign-in that waited (none for step-up).
    pub device_token: Option<String>,
}

/// An authenticator app being set up: shown on the page, confirmed by the
/// first code. `sealed` carries the secret back (sealed to this user).
#[derive(Debug, Clone)]
pub struct TotpSetup {
    pub secret: String,
    pub qr_svg: String,
    pub sealed: String,
}

#[derive(Serialize, Deserialize)]
struct SetupState {
    secret: Vec<u8>,
    created_at: DateTime<Utc>,
}

fn pending_index(user_id: &str) -> String {
    format!("user-pending:{user_id}")
}

/// A set-up is sealed to its user and to the session or sign-in that
/// started it, so it cannot be replayed from elsewhere.
fn setup_context(user_id: &str, binding: &str) -> String {
    format!("totp-setup:{user_id}:{binding}")
}

fn totp_context(user_id: &str) -> String {
    format!("totp:{user_id}")
}

/// For `secrets rewrap`: TOTP secrets.
pub fn sealed_column() -> crate::rewrap::SealedColumn {
    crate::rewrap::SealedColumn {
        name: "totp_factors.secret",
        context: totp_context,
        load: q::totp_sealed,
        store: q::totp_set_secret,
    }
}

fn totp_for(secret: Vec<u8>, account: &str) -> Result<Totp, CoreError> {
    // The label's ':' separates issuer and account: none inside either.
    let account: String = account.chars().filter(|c| *c != ':').collect();
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(STEP_SECS)
        .with_secret(secret)
        .with_account_name(account.as_str())
        .with_issuer(Some("Latchkey"))
        .build()
        .map_err(|e| CoreError::Internal(format!("totp: {e}")))
}

/// The `otpauth://` URL as an SVG QR code, made here (nothing leaves).
fn qr_svg(totp: &Totp) -> Result<String, CoreError> {
    let url = totp.to_url().map_err(|e| CoreError::Internal(format!("totp: {e}")))?;
    let qr = qrcode::QrCode::new(url.as_bytes()).map_err(|e| CoreError::Internal(format!("qr: {e}")))?;
    Ok(qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

/// Only digits, spaces and dashes count; anything else is no code at all.
fn clean_code(code: &str) -> Option<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

fn normalize_recovery(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).take(64).collect()
}

fn new_recovery_code() -> Result<String, CoreError> {
    let bytes = random_bytes::<12>()?;
    let s: String = bytes.iter().map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)])).collect();
    Ok(format!("{}-{}-{}", &s[0..4], &s[4..8], &s[8..12]))
}

impl Core {
    // --- Policy -------------------------------------------------------------

    /// The global MFA policy, read again every few seconds.
    pub async fn mfa_policy(&self) -> Result<MfaPolicy, CoreError> {
        if let Some((at, p)) = *self.policy.current.read().await
            && at.elapsed() < POLICY_FRESH
        {
            return Ok(p);
        }
        let value = self.db.run(|conn| q::policy_get(conn, "mfa")).await?;
        let p = value.as_deref().and_then(MfaPolicy::parse).unwrap_or(MfaPolicy::Optional);
        *self.policy.current.write().await = Some((Instant::now(), p));
        Ok(p)
    }

    /// Sets the global MFA policy (`latchkey policy set --mfa`).
    pub async fn set_mfa_policy(&self, policy: MfaPolicy, actor: &Actor) -> Result<(), CoreError> {
        let now = self.clock.now_naive();
        self.db.run(move |conn| q::policy_set(conn, "mfa", policy.as_str(), now)).await?;
        *self.policy.current.write().await = Some((Instant::now(), policy));
        self.audit(Event::new("policy.changed", actor).detail(serde_json::json!({ "mfa": policy.as_str() }))).await;
        Ok(())
    }

    // --- What a user has ------------------------------------------------------

    pub async fn factors(&self, user_id: &str) -> Result<Factors, CoreError> {
        let id = user_id.to_owned();
        self.db
            .run(move |conn| {
                let totp = q::totp_for(conn, &id)?.is_some();
                let creds = q::credentials_for(conn, &id)?;
                let passkeys = creds.iter().filter(|c| c.kind == crate::webauthn::KIND_PASSKEY).count();
                Ok(Factors {
                    totp,
                    security_keys: creds.len() - passkeys,
                    passkeys,
                    recovery_codes_left: q::recovery_left(conn, &id)?,
                })
            })
            .await
            .map_err(CoreError::from)
    }

    /// Whether this user must show a second factor after a first one.
    pub async fn second_factor_needed(&self, user_id: &str) -> Result<bool, CoreError> {
        Ok(self.factors(user_id).await?.any() || self.mfa_required_for(user_id).await?)
    }

    // --- The sign-in that waits ----------------------------------------------

    /// Keeps a first factor's sign-in until a second factor completes it,
    /// indexed per user so that whatever ends the user's sessions ends it.
    pub(crate) async fn start_pending(
        &self,
        user_id: &str,
        amr: Vec<String>,
        may_enrol: bool,
    ) -> Result<String, CoreError> {
        let token = random_token()?;
        let record = PendingSignIn { user_id: user_id.to_owned(), amr, created_at: self.clock.now(), may_enrol };
        let json = serde_json::to_vec(&record).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.store.put(&hashed_key(PENDING, &token), &json, PENDING_TTL).await?;
        self.store.index_add(&pending_index(user_id), &hash_secret(&token), PENDING_TTL).await?;
        Ok(token)
    }

    /// Ends every sign-in of the user still waiting for a second factor.
    pub(crate) async fn end_pending_sign_ins(&self, user_id: &str) -> Result<(), CoreError> {
        let index = pending_index(user_id);
        for member in self.store.index_list(&index).await? {
            self.store.delete(&format!("{PENDING}:{member}")).await?;
            self.store.index_remove(&index, &member).await?;
        }
        Ok(())
    }

    /// The sign-in a browser's cookie names, while it waits.
    pub async fn pending_sign_in(&self, token: &str) -> Result<Option<PendingSignIn>, CoreError> {
        if token.len() != 43 {
            return Ok(None);
        }
        Ok(match self.store.get(&hashed_key(PENDING, token)).await? {
            Some(raw) => serde_json::from_slice(&raw).ok(),
            None => None,
        })
    }

    /// The enabled user a waiting sign-in is for.
    pub async fn pending_user(&self, record: &PendingSignIn) -> Result<Option<User>, CoreError> {
        let id = record.user_id.clone();
        Ok(self
            .db
            .run(move |conn| latchkey_db::users::find_by_id(conn, &id))
            .await?
            .filter(|r| !r.disabled)
            .map(User::from))
    }

    /// Ends a waiting sign-in (the user gave up or signed out).
    pub async fn drop_pending(&self, token: &str) -> Result<(), CoreError> {
        self.store.delete(&hashed_key(PENDING, token)).await?;
        Ok(())
    }

    /// Finishes the MFA step with `methods` (the second factor's `amr`): a
    /// waiting sign-in becomes a session; a live session gets a new id, the
    /// methods and a fresh `auth_time` (SPEC §5: a new id at every change of
    /// authentication level).
    pub async fn complete_second_factor(
        &self,
        subject: &Subject,
        methods: &[&str],
        ctx: &RequestContext,
    ) -> Result<Completed, CoreError> {
        let add = |amr: &mut Vec<String>| {
            for m in methods.iter().chain(std::iter::once(&AMR_MFA)) {
                if !amr.iter().any(|x| x == m) {
                    amr.push((*m).to_owned());
                }
            }
        };
        match subject {
            Subject::Pending { token, record } => {
                // Once: whoever takes the waiting sign-in makes the session.
                if self.store.take(&hashed_key(PENDING, token)).await?.is_none() {
                    return Err(CoreError::invalid("Code", "This sign-in expired. Sign in again."));
                }
                let user = self.pending_user(record).await?.ok_or_else(|| {
                    CoreError::invalid("Code", "This account cannot sign in. Contact your administrator.")
                })?;
                let mut amr = record.amr.clone();
                add(&mut amr);
                let (session_id, session) = self.create_session(&record.user_id, amr.clone(), ctx).await?;
                let device_token = self.new_device_token(&user.id, &user.email).await?;
                self.audit(
                    event_ctx(Event::new("login.succeeded", &Actor::User(record.user_id.clone())), ctx)
                        .with_user_id(&record.user_id)
                        .detail(serde_json::json!({ "method": amr.join(" "), "acr": acr_for(&amr) })),
                )
                .await;
                Ok(Completed { session_id, session, device_token: Some(device_token) })
            }
            Subject::Session(s) => {
                let mut stepped = s.clone();
                add(&mut stepped.record.amr);
                // auth_time stays that of the sign-in: a second factor alone
                // is no fresh sign-in for sensitive account changes.
                let (session_id, session) = self.rotate_session(&stepped, false).await?;
                self.audit(
                    event_ctx(Event::new("login.step_up", &Actor::User(s.record.user_id.clone())), ctx)
                        .with_user_id(&s.record.user_id)
                        .detail(
                            serde_json::json!({ "method": methods.join(" "), "acr": acr_for(&session.record.amr) }),
                        ),
                )
                .await;
                Ok(Completed { session_id, session, device_token: None })
            }
        }
    }

    /// Counts a second-factor attempt first (TOTP and recovery codes share 5
    /// per account per 15 minutes, SPEC §5), so parallel guesses cannot pass
    /// together.
    async fn second_factor_attempt(&self, user_id: &str) -> Result<(), CoreError> {
        let l = &self.settings.limits;
        let window = l.login_failure_window;
        let key = format!("{ATTEMPTS}:{}", hash_secret(user_id));
        if self.store.incr(&key, window).await? > l.login_failures_per_account {
            let w = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
            let left = w - self.clock.now().timestamp_millis().rem_euclid(w);
            return Err(CoreError::RateLimited(Duration::from_millis(u64::try_from(left).unwrap_or(0))));
        }
        Ok(())
    }

    async fn second_factor_succeeded(&self, user_id: &str) -> Result<(), CoreError> {
        let key = format!("{ATTEMPTS}:{}", hash_secret(user_id));
        Ok(self.store.decr(&key, self.settings.limits.login_failure_window).await?)
    }

    // --- TOTP -----------------------------------------------------------------

    /// A new secret for the authenticator app, not saved until a first code
    /// confirms it.
    pub fn totp_setup(&self, user: &User, binding: &str) -> Result<TotpSetup, CoreError> {
        let secret = random_bytes::<20>()?.to_vec();
        let totp = totp_for(secret.clone(), &user.email)?;
        let qr_svg = qr_svg(&totp)?;
        let state = SetupState { secret, created_at: self.clock.now() };
        let json = serde_json::to_vec(&state).map_err(|e| CoreError::Internal(e.to_string()))?;
        let sealed = self
            .secrets
            .seal(&setup_context(&user.id, binding), &json)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(TotpSetup { secret: Secret::from(state.secret).to_base32(), qr_svg, sealed })
    }

    /// The same set-up again (to show it with an error after a wrong code).
    pub fn totp_setup_again(&self, user: &User, binding: &str, sealed: &str) -> Result<Option<TotpSetup>, CoreError> {
        let Ok(raw) = self.secrets.open(&setup_context(&user.id, binding), sealed) else { return Ok(None) };
        let Ok(state) = serde_json::from_slice::<SetupState>(&raw) else { return Ok(None) };
        if (self.clock.now() - state.created_at).to_std().unwrap_or(Duration::MAX) > SETUP_TTL {
            return Ok(None);
        }
        let totp = totp_for(state.secret.clone(), &user.email)?;
        Ok(Some(TotpSetup {
            secret: Secret::from(state.secret).to_base32(),
            qr_svg: qr_svg(&totp)?,
            sealed: sealed.to_owned(),
        }))
    }

    /// The step `code` is valid for, if any (±1 step).
    fn matching_step(&self, secret: &[u8], account: &str, code: &str) -> Result<Option<i64>, CoreError> {
        let totp = totp_for(secret.to_vec(), account)?;
        let now_step = self.clock.now().timestamp().div_euclid(i64::try_from(STEP_SECS).unwrap_or(30));
        let mut found = None;
        for step in (now_step - SKEW_STEPS)..=(now_step + SKEW_STEPS) {
            let at = u64::try_from(step).unwrap_or(0).saturating_mul(STEP_SECS);
            // Every candidate is compared, in constant time, whatever matched.
            if constant_time_eq(totp.generate(at).to_string().as_bytes(), code.as_bytes()) {
                found = Some(step);
            }
        }
        Ok(found)
    }

    /// Confirms an authenticator app with its first code and saves it.
    /// Returns new recovery codes when this is the user's first factor.
    pub async fn totp_confirm(
        &self,
        user: &User,
        binding: &str,
        sealed: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<Vec<String>>, CoreError> {
        let expired = || CoreError::invalid("Code", "This set-up expired. Start again to get a new QR code.");
        let raw = self.secrets.open(&setup_context(&user.id, binding), sealed).map_err(|_| expired())?;
        let state: SetupState = serde_json::from_slice(&raw).map_err(|_| expired())?;
        let age = (self.clock.now() - state.created_at).to_std().unwrap_or(Duration::MAX);
        if age > SETUP_TTL {
            return Err(expired());
        }
        let Some(code) = clean_code(code) else {
            return Err(CoreError::invalid("Code", "Enter the 6-digit code your app shows."));
        };
        self.second_factor_attempt(&user.id).await?;
        let Some(step) = self.matching_step(&state.secret, &user.email, &code)? else {
            return Err(CoreError::invalid(
                "Code",
                "That code is not right. Check the time on your device and try again.",
            ));
        };
        self.second_factor_succeeded(&user.id).await?;
        let first = !self.factors(&user.id).await?.any();
        let row = q::TotpRow {
            user_id: user.id.clone(),
            secret: self
                .secrets
                .seal(&totp_context(&user.id), &state.secret)
                .map_err(|e| CoreError::Internal(e.to_string()))?,
            last_step: step,
            created_at: self.clock.now_naive(),
        };
        self.db.run(move |conn| latchkey_db::transaction(conn, |c| q::totp_save(c, &row))).await?;
        self.factor_changed(user, "mfa.added", "an authenticator app", ctx).await;
        if first { Ok(Some(self.new_recovery_codes(user, ctx).await?)) } else { Ok(None) }
    }

    /// Checks a code from the user's authenticator app: right, within one
    /// step, and for a step not used before (a conditional update, so two
    /// instances cannot both accept it).
    pub async fn totp_verify(&self, user_id: &str, code: &str, ctx: &RequestContext) -> Result<bool, CoreError> {
        let ok = self.totp_check(user_id, code).await?;
        if !ok {
            self.second_factor_failed(Some(user_id), AMR_OTP, ctx).await;
        }
        Ok(ok)
    }

    /// Records a second factor (or passkey) that did not prove anything.
    pub async fn second_factor_failed(&self, user_id: Option<&str>, method: &str, ctx: &RequestContext) {
        let actor = user_id.map_or(Actor::Anonymous, |id| Actor::User(id.to_owned()));
        let mut e = event_ctx(Event { outcome: "failed", ..Event::new("login.failed", &actor) }, ctx)
            .detail(serde_json::json!({ "method": method }));
        if let Some(id) = user_id {
            e = e.with_user_id(id);
        }
        self.audit(e).await;
    }

    async fn totp_check(&self, user_id: &str, code: &str) -> Result<bool, CoreError> {
        let Some(code) = clean_code(code) else { return Ok(false) };
        self.second_factor_attempt(user_id).await?;
        let id = user_id.to_owned();
        let Some(row) = self.db.run(move |conn| q::totp_for(conn, &id)).await? else { return Ok(false) };
        let secret = self
            .secrets
            .open(&totp_context(user_id), &row.secret)
            .map_err(|e| CoreError::Internal(format!("totp secret: {e}")))?;
        let Some(step) = self.matching_step(&secret, "", &code)? else { return Ok(false) };
        let id = user_id.to_owned();
        if !self.db.run(move |conn| q::totp_take_step(conn, &id, step)).await? {
            return Ok(false); // this code (or a later one) was used already
        }
        self.second_factor_succeeded(user_id).await?;
        Ok(true)
    }

    pub async fn totp_remove(&self, user: &User, session: &Session, ctx: &RequestContext) -> Result<bool, CoreError> {
        self.check_factor_change(user, session, |f| f.totp).await?;
        let id = user.id.clone();
        let removed = self.db.run(move |conn| q::totp_delete(conn, &id)).await?;
        if removed {
            self.after_factor_removed(user, "an authenticator app", ctx).await?;
        }
        Ok(removed)
    }

    // --- Recovery codes ---------------------------------------------------------

    /// A recovery code's stored form: SHA-256 over the user id and the code.
    /// Salted by the user, so a copy of the database cannot test one guess
    /// against every user at once; 60 random bits leave one user's codes out
    /// of reach. No server key: rotating the encryption keys keeps them valid.
    fn recovery_hash(&self, user_id: &str, normalized: &str) -> String {
        hash_secret(&format!("recovery:{user_id}:{normalized}"))
    }

    /// Ten new recovery codes, replacing any old ones; shown once.
    pub async fn new_recovery_codes(&self, user: &User, ctx: &RequestContext) -> Result<Vec<String>, CoreError> {
        let now = self.clock.now_naive();
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        let mut rows = Vec::with_capacity(RECOVERY_CODES);
        while codes.len() < RECOVERY_CODES {
            let code = new_recovery_code()?;
            let hash = self.recovery_hash(&user.id, &normalize_recovery(&code));
            if rows.iter().any(|r: &q::RecoveryRow| r.code_hash == hash) {
                continue;
            }
            rows.push(q::RecoveryRow {
                id: random_id()?,
                user_id: user.id.clone(),
                code_hash: hash,
                created_at: now,
                used_at: None,
            });
            codes.push(code);
        }
        let id = user.id.clone();
        self.db.run(move |conn| latchkey_db::transaction(conn, |c| q::recovery_replace(c, &id, &rows))).await?;
        self.audit(
            event_ctx(Event::new("mfa.recovery_codes_created", &Actor::User(user.id.clone())), ctx)
                .user(&user.id, &user.email.to_lowercase()),
        )
        .await;
        Ok(codes)
    }

    /// Uses one recovery code (once); audited and mailed to the user.
    pub async fn recovery_code_use(&self, user: &User, code: &str, ctx: &RequestContext) -> Result<bool, CoreError> {
        let normalized = normalize_recovery(code);
        if normalized.len() != 12 {
            self.second_factor_failed(Some(&user.id), "recovery", ctx).await;
            return Ok(false);
        }
        self.second_factor_attempt(&user.id).await?;
        let (id, hash, now) = (user.id.clone(), self.recovery_hash(&user.id, &normalized), self.clock.now_naive());
        if !self.db.run(move |conn| q::recovery_use(conn, &id, &hash, now)).await? {
            self.second_factor_failed(Some(&user.id), "recovery", ctx).await;
            return Ok(false);
        }
        self.second_factor_succeeded(&user.id).await?;
        let id = user.id.clone();
        let left = self.db.run(move |conn| q::recovery_left(conn, &id)).await?;
        self.audit(
            event_ctx(Event::new("mfa.recovery_code_used", &Actor::User(user.id.clone())), ctx)
                .user(&user.id, &user.email.to_lowercase())
                .detail(serde_json::json!({ "left": left })),
        )
        .await;
        let what = format!(
            "A recovery code was just used to sign in to your account. You have {left} recovery code{} left.",
            if left == 1 { "" } else { "s" }
        );
        self.security_mail(&user.email, "A recovery code was used", &what).await;
        Ok(true)
    }

    // --- Changes to factors -----------------------------------------------------

    /// A factor may change only after a recent sign-in; removing one must not
    /// leave a user whom policy requires to have MFA without any.
    pub(crate) async fn check_factor_change(
        &self,
        user: &User,
        session: &Session,
        removing: impl Fn(&Factors) -> bool,
    ) -> Result<(), CoreError> {
        if !self.recently_authenticated(session) {
            return Err(CoreError::ReauthenticationRequired);
        }
        let f = self.factors(&user.id).await?;
        if removing(&f) && self.mfa_required_for(&user.id).await? {
            let left = usize::from(f.totp) + f.security_keys + f.passkeys;
            if left <= 1 {
                return Err(CoreError::Conflict(
                    "Your organisation requires a second factor. Add another one before removing this one.".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// After a factor went: the audit event, the mail, and no recovery codes
    /// left behind once nothing needs them.
    pub(crate) async fn after_factor_removed(
        &self,
        user: &User,
        what: &str,
        ctx: &RequestContext,
    ) -> Result<(), CoreError> {
        if !self.factors(&user.id).await?.any() {
            let id = user.id.clone();
            self.db.run(move |conn| q::recovery_delete(conn, &id)).await?;
        }
        self.factor_changed(user, "mfa.removed", what, ctx).await;
        Ok(())
    }

    /// Audits a factor added or removed and tells the user by mail; `what`
    /// names it with its article ("an authenticator app").
    pub(crate) async fn factor_changed(&self, user: &User, kind: &'static str, what: &str, ctx: &RequestContext) {
        self.audit(
            event_ctx(Event::new(kind, &Actor::User(user.id.clone())), ctx)
                .user(&user.id, &user.email.to_lowercase())
                .detail(serde_json::json!({ "factor": what })),
        )
        .await;
        let mut sentence = what.to_owned();
        if let Some(first) = sentence.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let (title, sentence) = if kind == "mfa.added" {
            ("A sign-in method was added", format!("{sentence} was just added to your account."))
        } else {
            ("A sign-in method was removed", format!("{sentence} was just removed from your account."))
        };
        self.security_mail(&user.email, title, &sentence).await;
    }

    async fn security_mail(&self, to: &str, title: &str, what: &str) {
        let base = &self.settings.server.public_url;
        let (account, forgot) = (format!("{base}/account"), format!("{base}/password/forgot"));
        match crate::mail::security_notice(to, title, what, &account, &forgot) {
            Ok(m) => self.queue_mail(m).await,
            Err(e) => tracing::error!(error = %e, "could not build a security notice"),
        }
    }
}

/// What [`Core::first_factor_complete`] hands the browser: a session, or a
/// sign-in waiting for its second factor.
#[derive(Debug)]
pub enum AfterFirstFactor {
    SignedIn(Box<SignedIn>),
    SecondFactor { token: String, user: User },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_follows_the_methods() {
        let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(acr_for(&v(&["pwd"])), "1fa");
        assert_eq!(acr_for(&v(&["pwd", "otp", "mfa"])), "mfa");
        assert_eq!(acr_for(&v(&["pwd", "hwk", "mfa"])), "phr");
        assert_eq!(acr_for(&v(&["swk", "mfa"])), "phr");
        assert!(acr_satisfies("phr", "mfa") && acr_satisfies("mfa", "1fa") && !acr_satisfies("mfa", "phr"));
    }

    #[test]
    fn codes_are_cleaned_or_refused() {
        assert_eq!(clean_code(" 123 456 ").as_deref(), Some("123456"));
        assert_eq!(clean_code("123-456").as_deref(), Some("123456"));
        assert_eq!(clean_code("12345"), None);
        assert_eq!(clean_code("12345a"), None);
        assert_eq!(clean_code("١٢٣٤٥٦"), None);
    }

    #[test]
    fn recovery_codes_are_long_and_distinct() {
        let a = new_recovery_code().expect("code");
        let b = new_recovery_code().expect("code");
        assert_eq!(a.len(), 14);
        assert_ne!(a, b);
        assert_eq!(normalize_recovery(&a.to_uppercase()), a.replace('-', ""));
    }
}
