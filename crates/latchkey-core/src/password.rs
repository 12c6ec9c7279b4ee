//! Passwords: the rules a new password must meet, and bcrypt hashing on a pool
//! of its own with a bounded queue, so a sign-in storm answers "busy" instead
//! of starving everything else.
//!
//! bcrypt reads at most 72 bytes, its terminating NUL included. Passwords up
//! to 71 bytes are hashed as they are (with bcrypt's non-truncating API);
//! longer ones are first reduced to base64(SHA-256(password)) and the stored
//! hash is marked `$lk-sha256$`, so every byte counts and the two forms never
//! verify against each other.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::settings::PasswordSettings;
use crate::tokens::sha256;

/// Longest password accepted at all (bytes): beyond this it is not a
/// password but a payload.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// The longest input bcrypt takes whole (72 bytes with its NUL).
const BCRYPT_MAX: usize = 71;
const PREHASH_MARK: &str = "$lk-sha256$";

static COMMON: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect())
}

/// Why a new password is refused; the text is for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("Password must be at least {0} characters.")]
    TooShort(usize),
    #[error("Password must be at most {MAX_PASSWORD_BYTES} bytes.")]
    TooLong,
    #[error("This password is one of the most common passwords. Choose another.")]
    Common,
    #[error("This password is too easy to guess. {0}")]
    Weak(String),
}

/// The rules for new passwords.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub min_strength: u8,
}

impl PasswordPolicy {
    pub fn from_settings(s: &PasswordSettings) -> Self {
        PasswordPolicy { min_length: s.min_length, min_strength: s.min_strength }
    }

    /// Checks a new password; `user_inputs` (email, name) count as guessable.
    pub fn check(&self, password: &str, user_inputs: &[&str]) -> Result<(), PasswordProblem> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordProblem::TooLong);
        }
        if password.chars().count() < self.min_length {
            return Err(PasswordProblem::TooShort(self.min_length));
        }
        if common_passwords().contains(password.to_lowercase().as_str()) {
            return Err(PasswordProblem::Common);
        }
        // zxcvbn's cost grows with length; past a few hundred characters a
        // password is strong by length alone, so estimate on a prefix.
        let probe: String = password.chars().take(256).collect();
        let mut inputs: Vec<&str> = Vec::new();
        for i in user_inputs {
            inputs.push(i);
            inputs.extend(i.split(|c: char| !c.is_alphanumeric()).filter(|p| p.len() >= 3));
        }
        let estimate = zxcvbn::zxcvbn(&probe, &inputs);
        if (estimate.score() as u8) < self.min_strength {
            let hint = estimate
                .feedback()
                .and_then(|f| f.warning().map(|w| w.to_string()))
                .unwrap_or_else(|| "Add more words or characters that are hard to guess.".to_owned());
            return Err(PasswordProblem::Weak(hint));
        }
        Ok(())
    }
}

/// Hashes with bcrypt at `cost` (blocking; use [`Hasher`] on request paths).
pub fn hash_blocking(password: &str, cost: u32) -> Result<String, HashError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(HashError::TooLong);
    }
    if password.len() > BCRYPT_MAX {
        let h = bcrypt::non_truncating_hash(prehash(password), cost).map_err(|_| HashError::Internal)?;
        Ok(format!("{PREHASH_MARK}{h}"))
    } else {
        bcrypt::non_truncating_hash(password, cost).map_err(|_| HashError::Internal)
    }
}

/// Verifies against a stored hash (blocking). A malformed hash never verifies.
pub fn verify_blocking(password: &str, stored: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match stored.strip_prefix(PREHASH_MARK) {
        Some(h) if password.len() > BCRYPT_MAX => bcrypt::non_truncating_verify(prehash(password), h).unwrap_or(false),
        Some(_) => false,
        None if password.len() > BCRYPT_MAX => false,
        None => bcrypt::non_truncating_verify(password, stored).unwrap_or(false),
    }
}

fn prehash(password: &str) -> String {
    STANDARD.encode(sha256(password.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The queue is full: answer 503 with Retry-After.
    #[error("password hashing is busy; try again shortly")]
    Busy,
    #[error("password is too long")]
    TooLong,
    #[error("password hashing failed")]
    Internal,
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of threads that only hash passwords, fed by a bounded queue.
pub struct Hasher {
    tx: SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    cost: u32,
    /// A hash of nothing anyone knows, at the same cost, for accounts that
    /// do not exist or have no password: the same work either way.
    dummy: Arc<OnceLock<String>>,
    dummy_runs: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").field("cost", &self.cost).field("queued", &self.queue_depth()).finish()
    }
}

impl Hasher {
    pub fn new(threads: usize, queue: usize, cost: u32) -> std::io::Result<Hasher> {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx: Arc<Mutex<Receiver<Job>>> = Arc::clone(&rx);
            std::thread::Builder::new().name(format!("latchkey-hash-{i}")).spawn(move || {
                loop {
                    let job = {
                        let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
                        guard.recv()
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => break, // every sender is gone
                    }
                }
            })?;
        }
        Ok(Hasher {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            cost,
            dummy: Arc::new(OnceLock::new()),
            dummy_runs: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn from_settings(s: &PasswordSettings) -> std::io::Result<Hasher> {
        Hasher::new(s.hash_threads, s.hash_queue, s.bcrypt_cost)
    }

    /// Jobs waiting or running.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub fn cost(&self) -> u32 {
        self.cost
    }

    async fn run<T, F>(&self, f: F) -> Result<T, HashError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let queued = Arc::clone(&self.queued);
        let job: Job = Box::new(move || {
            let out = f();
            queued.fetch_sub(1, Ordering::Relaxed);
            let _ = done_tx.send(out);
        });
        self.queued.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(job) {
            Ok(()) => done_rx.await.map_err(|_| HashError::Internal),
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(HashError::Busy)
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(HashError::Internal)
            }
        }
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let cost = self.cost;
        self.run(move || hash_blocking(&password, cost)).await?
    }

    pub async fn verify(&self, password: String, stored: String) -> Result<bool, HashError> {
        self.run(move || verify_blocking(&password, &stored)).await
    }

    /// Verifies against the dummy hash (always false): the cost of a real
    /// verification, for an account that does not exist.
    pub async fn verify_dummy(&self, password: String) -> Result<bool, HashError> {
        let (dummy, cost, runs) = (Arc::clone(&self.dummy), self.cost, Arc::clone(&self.dummy_runs));
        self.run(move || {
            let stored = dummy.get_or_init(|| {
                let secret = crate::tokens::random_token().unwrap_or_else(|_| "latchkey dummy".to_owned());
                hash_blocking(&secret, cost).unwrap_or_default()
            });
            runs.fetch_add(1, Ordering::Relaxed);
            let _ = verify_blocking(&password, stored);
            false
        })
        .await
    }

    /// How many dummy verifications ran (tests prove the path is taken).
    pub fn dummy_verifications(&self) -> usize {
        self.dummy_runs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy { min_length: 8, min_strength: 3 }
    }

    #[test]
    fn length_rules() {
        assert_eq!(policy().check("Ab3$xyz", &[]), Err(PasswordProblem::TooShort(8)));
        // Eight characters counted as characters, not bytes.
        assert_eq!(policy().check("ñññññññ", &[]), Err(PasswordProblem::TooShort(8)));
        assert_eq!(policy().check(&"a".repeat(MAX_PASSWORD_BYTES + 1), &[]), Err(PasswordProblem::TooLong));
    }

    #[test]
    fn common_and_weak_passwords_are_refused() {
        assert_eq!(policy().check("password123", &[]), Err(PasswordProblem::Common));
        assert_eq!(policy().check("PassWord123", &[]), Err(PasswordProblem::Common), "case does not help");
        assert!(matches!(policy().check("aaaaaaaaaaaa", &[]), Err(PasswordProblem::Weak(_))));
        assert!(matches!(
            policy().check("jordanmitchell1990", &["jordan.mitchell1990@example.com", "Jordan Mitchell"]),
            Err(PasswordProblem::Weak(_))
        ));
        assert_eq!(policy().check("correct horse battery staple", &[]), Ok(()));
        assert_eq!(policy().check("vR7#qLp2!mZx", &[]), Ok(()));
    }

    #[test]
    fn short_passwords_round_trip() {
        let h = hash_blocking("vR7#qLp2!mZx", 10).expect("hash");
        assert!(h.starts_with("$2b$10$"));
        assert!(verify_blocking("vR7#qLp2!mZx", &h));
        assert!(!verify_blocking("vR7#qLp2!mZy", &h));
        assert!(!verify_blocking("", &h));
        assert!(!verify_blocking("vR7#qLp2!mZx", "not a hash"));
    }

    #[test]
    fn the_72_byte_edge() {
        let exactly = "x".repeat(71);
        let h71 = hash_blocking(&exactly, 10).expect("hash");
        assert!(!h71.starts_with(PREHASH_MARK));
        assert!(verify_blocking(&exactly, &h71));

        // 72 and more bytes: the tail counts.
        let long_a = format!("{}a", "x".repeat(71));
        let long_b = format!("{}b", "x".repeat(71));
        assert_eq!(long_a.len(), 72);
        let h = hash_blocking(&long_a, 10).expect("hash");
        assert!(h.starts_with(PREHASH_MARK));
        assert!(verify_blocking(&long_a, &h));
        assert!(!verify_blocking(&long_b, &h), "a different 73rd byte must not verify");
        assert!(!verify_blocking(&exactly, &h), "the 71-byte prefix must not verify");
        assert!(!verify_blocking(&long_a, &h71));
        let much_longer_a = format!("{}a", "x".repeat(200));
        let much_longer_b = format!("{}b", "x".repeat(200));
        let hl = hash_blocking(&much_longer_a, 10).expect("hash");
        assert!(verify_blocking(&much_longer_a, &hl));
        assert!(!verify_blocking(&much_longer_b, &hl), "the 201st byte counts");

        // The pre-hash itself, presented as a password, does not verify.
        let shucked = prehash(&long_a);
        assert!(!verify_blocking(&shucked, &h));

        // Multi-byte characters across the edge.
        let emoji = "🔑".repeat(18); // 72 bytes
        let he = hash_blocking(&emoji, 10).expect("hash");
        assert!(verify_blocking(&emoji, &he));
        assert!(!verify_blocking(&"🔑".repeat(17), &he));

        assert_eq!(hash_blocking(&"x".repeat(MAX_PASSWORD_BYTES + 1), 10), Err(HashError::TooLong));
    }

    #[tokio::test]
    async fn pool_hashes_and_verifies() {
        let pool = Hasher::new(2, 8, 10).expect("pool");
        let h = pool.hash("vR7#qLp2!mZx".into()).await.expect("hash");
        assert_eq!(pool.verify("vR7#qLp2!mZx".into(), h.clone()).await, Ok(true));
        assert_eq!(pool.verify("wrong".into(), h).await, Ok(false));
        assert_eq!(pool.queue_depth(), 0);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy() {
        let pool = Arc::new(Hasher::new(1, 1, 10).expect("pool"));
        // Hold the only thread until told.
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let p = Arc::clone(&pool);
        let blocker = tokio::spawn(async move {
            p.run(move || {
                let _ = started_tx.send(());
                let _ = release_rx.recv();
            })
            .await
        });
        started_rx.await.expect("blocker started");
        // One job fits in the queue…
        let p = Arc::clone(&pool);
        let queued = tokio::spawn(async move { p.hash("vR7#qLp2!mZx".into()).await });
        while pool.queue_depth() < 2 {
            tokio::task::yield_now().await;
        }
        // …the next is refused at once.
        assert_eq!(pool.hash("vR7#qLp2!mZx".into()).await, Err(HashError::Busy));
        assert_eq!(pool.verify("x".into(), "y".into()).await, Err(HashError::Busy));
        release_tx.send(()).expect("release");
        assert_eq!(blocker.await.expect("join"), Ok(()));
        assert!(queued.await.expect("join").is_ok());
        assert_eq!(pool.queue_depth(), 0);
    }
}
