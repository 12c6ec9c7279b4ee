//! Outgoing mail: SMTP when `mail.smtp_url` is set, `.eml` files in
//! `data_dir/outbox` otherwise. Messages are queued and sent by a worker off
//! the request path (a sign-up answers as fast whether or not it mails), with
//! a few retries for SMTP hiccups.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use askama::Template;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::mpsc;

use crate::settings::Settings;

const QUEUE: usize = 1024;
const ATTEMPTS: u32 = 4;

#[derive(Clone)]
enum Transport {
    Outbox(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Queues and delivers mail.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    queue: Arc<OnceLock<mpsc::Sender<Message>>>,
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
    #[error("the mail queue is full")]
    QueueFull,
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
        Ok(Mailer { from, transport, queue: Arc::new(OnceLock::new()) })
    }

    /// The outbox folder, in embedded mode.
    pub fn outbox(&self) -> Option<&PathBuf> {
        match &self.transport {
            Transport::Outbox(p) => Some(p),
            Transport::Smtp(_) => None,
        }
    }

    /// Builds the message and queues it; delivery happens off the request path.
    pub fn send(&self, mail: Mail) -> Result<(), MailError> {
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
        let tx = self.queue.get_or_init(|| self.start_worker());
        tx.try_send(message).map_err(|_| MailError::QueueFull)
    }

    fn start_worker(&self) -> mpsc::Sender<Message> {
        let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
        let transport = self.transport.clone();
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                deliver(&transport, message).await;
            }
        });
        tx
    }
}

async fn deliver(transport: &Transport, message: Message) {
    for attempt in 1..=ATTEMPTS {
        let result = match transport {
            Transport::Outbox(dir) => write_eml(dir, &message).await,
            Transport::Smtp(t) => t.send(message.clone()).await.map(|_| ()).map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "mail delivery failed; retrying");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt * attempt))).await;
            }
            Err(e) => tracing::error!(error = %e, "mail delivery failed; giving up"),
        }
    }
}

async fn write_eml(dir: &PathBuf, message: &Message) -> Result<(), String> {
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
    tokio::io::AsyncWriteExt::write_all(&mut file, &message.formatted())
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

pub fn password_changed(to: &str, forgot: &str) -> Result<Mail, MailError> {
    Ok(Mail {
        to: to.to_owned(),
        subject: "Your password was changed".into(),
        text: render(&ChangedText { forgot })?,
        html: render(&ChangedHtml { forgot })?,
    })
}
