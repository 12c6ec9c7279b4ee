//! Outgoing mail: SMTP when `mail.smtp_url` is set, `.eml` files in
//! `data_dir/outbox` otherwise. A message is written to the `mail_outbox`
//! table on the request path (sealed: it may carry a sign-in link) and a
//! worker delivers it with retries, so neither a restart nor a mail-server
//! outage loses it, and a sign-up answers as fast whether or not it mails.

use std::path::PathBuf;
use std::time::Duration;

use askama::Template;
use latchkey_db::mail_outbox::{self as q, MailRow};
use lettre::address::Envelope;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::Core;
use crate::error::CoreError;
use crate::settings::Settings;

/// Delivery attempts before a message is given up: with the backoff below,
/// about a day of retries.
pub const MAX_ATTEMPTS: i64 = 14;
/// How often the worker looks for due mail when nobody wakes it.
const TICK: Duration = Duration::from_secs(1);
/// Messages per round: with a 10 s SMTP timeout a round stays well inside
/// the lock's lifetime, so no other instance sends the same message.
const BATCH: i64 = 10;
const LOCK_TTL: Duration = Duration::from_secs(300);

#[derive(Clone)]
enum Transport {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Builds and delivers mail.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    wakeup: std::sync::Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.transport {
            Transport::Outbox(_) => "outbox",
            Transport::Smtp(_) => "smtp",
        };
        f.debug_struct("Mailer").field("transport", &kind).finish()
    }
}

/// A message to send: subject and both bodies, already rendered.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail.smtp_url: {0}")]
    Config(String),
    #[error("cannot build the message: {0}")]
    Build(String),
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> Result<Mailer, MailError> {
        let from: Mailbox = settings.mail.from.parse().map_err(|e| MailError::Build(format!("mail.from: {e}")))?;
        let transport = match &settings.mail.smtp_url {
            Some(url) => {
                let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
                let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Config(e.to_string()))?
                    .timeout(Some(Duration::from_secs(10)))
                    .build();
                Transport::Smtp(t)
            }
            None => Transport::Outbox(settings.data_dir.join("outbox")),
        };
        Ok(Mailer { from, transport, wakeup: std::sync::Arc::new(tokio::sync::Notify::new()) })
    }

    /// The outbox folder, in embedded mode.
    pub fn outbox(&self) -> Option<&PathBuf> {
        match &self.transport {
            Transport::Outbox(p) => Some(p),
            Transport::Smtp(_) => None,
        }
    }

    /// The message as it goes on the wire.
    fn build(&self, mail: Mail) -> Result<Vec<u8>, MailError> {
        let to: Mailbox = mail.to.parse().map_err(|e| MailError::Build(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(mail.text))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(mail.html)),
            )
            .map_err(|e| MailError::Build(e.to_string()))?;
        Ok(message.formatted())
    }

    async fn deliver(&self, recipient: &str, raw: &[u8]) -> Result<(), String> {
        match &self.transport {
            Transport::Outbox(dir) => write_eml(dir, raw).await,
            Transport::Smtp(t) => {
                let to = recipient.parse().map_err(|e| format!("recipient: {e}"))?;
                let envelope =
                    Envelope::new(Some(self.from.email.clone()), vec![to]).map_err(|e| format!("envelope: {e}"))?;
                t.send_raw(&envelope, raw).await.map(|_| ()).map_err(|e| e.to_string())
            }
        }
    }
}

fn sealed_context(id: &str) -> String {
    format!("mail:{id}")
}

/// For `secrets rewrap`: queued messages.
pub fn sealed_column() -> crate::rewrap::SealedColumn {
    crate::rewrap::SealedColumn {
        name: "mail_outbox.message",
        context: sealed_context,
        load: q::sealed,
        store: q::set_sealed,
    }
}

/// Wait before attempt `n + 1`: 30 s, 1 min, 2 min, … capped at 4 h.
fn backoff(attempts: i64) -> chrono::Duration {
    let secs = 30i64.saturating_mul(1i64 << attempts.clamp(0, 9)).min(4 * 3600);
    chrono::Duration::seconds(secs)
}

impl Core {
    /// Writes a message to the outbox table and wakes the worker. A mail that
    /// cannot be queued is logged, never shown: the answer to the request
    /// must not depend on it.
    pub async fn queue_mail(&self, mail: Mail) {
        if let Err(e) = self.try_queue_mail(mail).await {
            tracing::error!(error = %e, "could not queue a mail");
        }
    }

    async fn try_queue_mail(&self, mail: Mail) -> Result<(), CoreError> {
        let row = self.outbox_row(mail)?;
        self.db.run(move |conn| q::insert(conn, &row)).await?;
        self.mail_queued();
        Ok(())
    }

    /// A message built and sealed as the outbox keeps it, for a caller that
    /// writes it in a transaction of its own; call [`Core::mail_queued`]
    /// once that is committed.
    pub(crate) fn outbox_row(&self, mail: Mail) -> Result<MailRow, CoreError> {
        let recipient = mail.to.clone();
        let raw = self.mailer.build(mail).map_err(|e| CoreError::Internal(e.to_string()))?;
        let id = uuid::Uuid::new_v4().to_string();
        let sealed = self.secrets.seal(&sealed_context(&id), &raw).map_err(|e| CoreError::Internal(e.to_string()))?;
        let now = self.clock.now_naive();
        Ok(MailRow {
            id,
            created_at: now,
            next_attempt_at: now,
            attempts: 0,
            recipient,
            message: sealed,
            last_error: None,
        })
    }

    /// Wakes the worker: a message is in the outbox.
    pub(crate) fn mail_queued(&self) {
        self.mailer.wakeup.notify_one();
    }

    /// One delivery round: sends what is due (one instance at a time, under
    /// a store lock); returns how many were delivered.
    pub async fn deliver_due_mail(&self) -> Result<usize, CoreError> {
        let Some(lock) = self.store.try_lock("mail", LOCK_TTL).await? else { return Ok(0) };
        let result = self.deliver_due_locked().await;
        let _ = self.store.unlock(&lock).await;
        result
    }

    async fn deliver_due_locked(&self) -> Result<usize, CoreError> {
        let now = self.clock.now_naive();
        let rows = self.db.run(move |conn| q::due(conn, now, BATCH)).await?;
        let mut delivered = 0;
        for row in rows {
            let outcome = match self.secrets.open(&sealed_context(&row.id), &row.message) {
                Ok(raw) => self.mailer.deliver(&row.recipient, &raw).await,
                Err(e) => Err(format!("cannot open the stored message: {e}")),
            };
            let id = row.id.clone();
            match outcome {
                Ok(()) => {
                    self.db.run(move |conn| q::delete(conn, &id)).await?;
                    delivered += 1;
                }
                Err(e) if row.attempts + 1 >= MAX_ATTEMPTS => {
                    tracing::error!(error = %e, id = %row.id, attempts = row.attempts + 1, "mail delivery failed; giving up");
                    self.db.run(move |conn| q::delete(conn, &id)).await?;
                }
                Err(e) => {
                    tracing::warn!(error = %e, id = %row.id, attempt = row.attempts + 1, "mail delivery failed; will retry");
                    let next = self.clock.now_naive() + backoff(row.attempts);
                    let attempts = row.attempts + 1;
                    self.db.run(move |conn| q::reschedule(conn, &id, next, attempts, &e)).await?;
                }
            }
        }
        Ok(delivered)
    }

    /// Messages waiting in the outbox table.
    pub async fn queued_mail(&self) -> Result<i64, CoreError> {
        Ok(self.db.run(q::count).await?)
    }
}

/// Delivers mail until the task is dropped (spawn it beside the server).
pub async fn run_worker(core: Core) {
    loop {
        match core.deliver_due_mail().await {
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "mail round failed"),
        }
        let _ = tokio::time::timeout(TICK, core.mailer.wakeup.notified()).await;
    }
}

async fn write_eml(dir: &PathBuf, raw: &[u8]) -> Result<(), String> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = format!(
        "{}-{}.eml",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        crate::tokens::random_id().map_err(|e| e.to_string())?
    );
    // Written under a temporary name and renamed, so readers never see half
    // a file; readable by the owner only, since mails carry sign-in links.
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut opts = tokio::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut file = opts.open(&tmp).await.map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    tokio::io::AsyncWriteExt::write_all(&mut file, raw)
        .await
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    drop(file);
    tokio::fs::rename(&tmp, dir.join(&name)).await.map_err(|e| format!("cannot rename {}: {e}", tmp.display()))
}

// ---------------------------------------------------------------------------
// The messages, from templates under templates/mail.

#[derive(Template)]
#[template(path = "mail/verify.txt")]
struct VerifyText<'a> {
    link: &'a str,
    lifetime: &'a str,
}

#[derive(Template)]
#[template(path = "mail/verify.html")]
struct VerifyHtml<'a> {
    link: &'a str,
    lifetime: &'a str,
}

#[derive(Template)]
#[template(path = "mail/account_exists.txt")]
struct ExistsText<'a> {
    login: &'a str,
    forgot: &'a str,
}

#[derive(Template)]
#[template(path = "mail/account_exists.html")]
struct ExistsHtml<'a> {
    login: &'a str,
    forgot: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset.txt")]
struct ResetText<'a> {
    link: &'a str,
    lifetime: &'a str,
}

#[derive(Template)]
#[template(path = "mail/reset.html")]
struct ResetHtml<'a> {
    link: &'a str,
    lifetime: &'a str,
}

/// "24 hours", "1 hour", "30 minutes".
fn lifetime(d: Duration) -> String {
    let mins = (d.as_secs() / 60).max(1);
    if mins.is_multiple_of(60) {
        let h = mins / 60;
        format!("{h} hour{}", if h == 1 { "" } else { "s" })
    } else {
        format!("{mins} minute{}", if mins == 1 { "" } else { "s" })
    }
}

#[derive(Template)]
#[template(path = "mail/password_changed.txt")]
struct ChangedText<'a> {
    forgot: &'a str,
}

#[derive(Template)]
#[template(path = "mail/password_changed.html")]
struct ChangedHtml<'a> {
    forgot: &'a str,
}

fn render(t: &impl Template) -> Result<String, MailError> {
    t.render().map_err(|e| MailError::Build(e.to_string()))
}

pub fn verify_email(to: &str, link: &str, ttl: Duration) -> Result<Mail, MailError> {
    let lifetime = lifetime(ttl);
    Ok(Mail {
        to: to.to_owned(),
        subject: "Confirm your email address".into(),
        text: render(&VerifyText { link, lifetime: &lifetime })?,
        html: render(&VerifyHtml { link, lifetime: &lifetime })?,
    })
}

pub fn account_exists(to: &str, login: &str, forgot: &str) -> Result<Mail, MailError> {
    Ok(Mail {
        to: to.to_owned(),
        subject: "You already have an account".into(),
        text: render(&ExistsText { login, forgot })?,
        html: render(&ExistsHtml { login, forgot })?,
    })
}

pub fn reset_password(to: &str, link: &str, ttl: Duration) -> Result<Mail, MailError> {
    let lifetime = lifetime(ttl);
    Ok(Mail {
        to: to.to_owned(),
        subject: "Reset your password".into(),
        text: render(&ResetText { link, lifetime: &lifetime })?,
        html: render(&ResetHtml { link, lifetime: &lifetime })?,
    })
}

#[derive(Template)]
#[template(path = "mail/magic_link.txt")]
struct MagicText<'a> {
    link: &'a str,
    lifetime: &'a str,
}

#[derive(Template)]
#[template(path = "mail/magic_link.html")]
struct MagicHtml<'a> {
    link: &'a str,
    lifetime: &'a str,
}

pub fn magic_link(to: &str, link: &str, ttl: Duration) -> Result<Mail, MailError> {
    let lifetime = lifetime(ttl);
    Ok(Mail {
        to: to.to_owned(),
        subject: "Your sign-in link".into(),
        text: render(&MagicText { link, lifetime: &lifetime })?,
        html: render(&MagicHtml { link, lifetime: &lifetime })?,
    })
}

pub fn password_changed(to: &str, forgot: &str) -> Result<Mail, MailError> {
    Ok(Mail {
        to: to.to_owned(),
        subject: "Your password was changed".into(),
        text: render(&ChangedText { forgot })?,
        html: render(&ChangedHtml { forgot })?,
    })
}

#[derive(Template)]
#[template(path = "mail/security_notice.txt")]
struct NoticeText<'a> {
    title: &'a str,
    what: &'a str,
    account: &'a str,
    forgot: &'a str,
}

#[derive(Template)]
#[template(path = "mail/security_notice.html")]
struct NoticeHtml<'a> {
    title: &'a str,
    what: &'a str,
    account: &'a str,
    forgot: &'a str,
}

/// A change to how the account signs in (a factor added or removed, a
/// recovery code used): `title` is the subject, `what` one sentence.
pub fn security_notice(to: &str, title: &str, what: &str, account: &str, forgot: &str) -> Result<Mail, MailError> {
    Ok(Mail {
        to: to.to_owned(),
        subject: title.to_owned(),
        text: render(&NoticeText { title, what, account, forgot })?,
        html: render(&NoticeHtml { title, what, account, forgot })?,
    })
}

#[derive(Template)]
#[template(path = "mail/account_deleted.txt")]
struct DeletedText<'a> {
    email: &'a str,
    by_admin: bool,
    service: &'a str,
}

#[derive(Template)]
#[template(path = "mail/account_deleted.html")]
struct DeletedHtml<'a> {
    email: &'a str,
    by_admin: bool,
    service: &'a str,
}

/// The account at `to` was deleted (by its owner, or by an administrator
/// when `by_admin`); `service` is the public URL it was kept at.
pub fn account_deleted(to: &str, by_admin: bool, service: &str) -> Result<Mail, MailError> {
    Ok(Mail {
        to: to.to_owned(),
        subject: "Your account was deleted".into(),
        text: render(&DeletedText { email: to, by_admin, service })?,
        html: render(&DeletedHtml { email: to, by_admin, service })?,
    })
}
