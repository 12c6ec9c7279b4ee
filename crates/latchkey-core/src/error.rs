//! The one error type of the core. Each variant says what the caller did or
//! what failed, never how (no SQL, no internals); `latchkey-web/src/error.rs`
//! turns it into HTTP and the CLI into one line on stderr.

use latchkey_db::DbError;

use crate::password::{HashError, PasswordProblem};

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Input that cannot be accepted; `field` names it as users see it.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("{0}")]
    WeakPassword(#[from] PasswordProblem),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// The caller is known but may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// A feature the request asks for is not built yet.
    #[error("{0}")]
    NotBuilt(String),
    /// Too many attempts: try again after the duration (429).
    #[error("Too many attempts. Try again in {}.", crate::ratelimit::human_wait(*.0))]
    RateLimited(std::time::Duration),
    /// A sensitive action needs a recent sign-in.
    #[error("Sign in again to continue.")]
    ReauthenticationRequired,
    /// Shed load: answer 503 with Retry-After.
    #[error("busy; try again shortly")]
    Busy,
    /// A service we need (database, store) is unreachable.
    #[error("{0} unavailable")]
    Unavailable(&'static str),
    /// Everything else; the detail is logged, never shown.
    #[error("internal error")]
    Internal(String),
}

impl CoreError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        CoreError::Invalid { field, message: message.into() }
    }
}

impl From<DbError> for CoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                CoreError::Unavailable("database")
            }
            DbError::NotFound => CoreError::NotFound("record"),
            other => CoreError::Internal(other.to_string()),
        }
    }
}

impl From<HashError> for CoreError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => CoreError::Busy,
            HashError::TooLong => CoreError::WeakPassword(PasswordProblem::TooLong),
            HashError::Internal => CoreError::Internal("password hashing failed".into()),
        }
    }
}

impl From<crate::tokens::RngError> for CoreError {
    fn from(e: crate::tokens::RngError) -> Self {
        CoreError::Internal(e.to_string())
    }
}
