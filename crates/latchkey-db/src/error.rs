use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// What can go wrong talking to the database, sorted by what a caller does
/// about it. The messages are for logs and operators; the web layer never
/// shows them to users.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (or no pooled connection came in time).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// No row matched.
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write.
    #[error("conflict on {0}")]
    Conflict(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The URL names no backend we support, or cannot be used.
    #[error("{0}")]
    Config(String),
    /// Anything else the database said.
    #[error("database error: {0}")]
    Query(String),
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => DbError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                DbError::Conflict(info.constraint_name().unwrap_or(info.message()).to_owned())
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => DbError::Unavailable(info.message().to_owned()),
            other => DbError::Query(other.to_string()),
        }
    }
}

impl From<diesel::r2d2::PoolError> for DbError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}

impl From<diesel::ConnectionError> for DbError {
    fn from(e: diesel::ConnectionError) -> Self {
        DbError::Unavailable(e.to_string())
    }
}
