//! One connection type over PostgreSQL and SQLite, and a pool that picks the
//! backend from the URL scheme itself (diesel's derived `establish` tries every
//! backend in turn and hides the real error).

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool};
use diesel::{PgConnection, SqliteConnection};

use crate::DbError;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which SQL engine a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// A parsed database URL: the backend and what to hand its driver.
#[derive(Clone, Debug)]
pub struct DbTarget {
    pub backend: Backend,
    /// For PostgreSQL the whole URL, for SQLite the file path.
    pub target: String,
}

impl DbTarget {
    /// `postgres://…` / `postgresql://…` or `sqlite://PATH`.
    pub fn parse(url: &str) -> Result<DbTarget, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DbTarget { backend: Backend::Postgres, target: url.to_owned() })
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(DbError::Config("sqlite:// needs a file path, as in sqlite://./data/latchkey.db".into()));
            }
            Ok(DbTarget { backend: Backend::Sqlite, target: path.to_owned() })
        } else {
            let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
            Err(DbError::Config(if scheme.is_empty() {
                "not a URL; expected postgres://… or sqlite://PATH".to_owned()
            } else {
                format!("unsupported scheme {scheme:?}; expected postgres:// or sqlite://")
            }))
        }
    }
}

/// The r2d2 manager: connects to exactly the backend the URL names and sets
/// SQLite up for concurrent use (WAL, foreign keys, busy timeout).
pub struct Manager {
    target: DbTarget,
}

impl Manager {
    pub fn new(target: DbTarget) -> Self {
        Manager { target }
    }
}

/// busy_timeout first: switching to WAL takes a lock that a connection
/// opening at the same moment must wait for, not fail on.
pub const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = DbError;

    fn connect(&self) -> Result<DbConnection, DbError> {
        match self.target.backend {
            Backend::Postgres => Ok(DbConnection::Pg(PgConnection::establish(&self.target.target)?)),
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.target.target)?;
                conn.batch_execute(SQLITE_PRAGMAS)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), DbError> {
        conn.batch_execute("SELECT 1").map_err(|e| DbError::Unavailable(e.to_string()))
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

pub type DbPool = Pool<Manager>;

/// Pool settings.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_size: u32,
    pub acquire_timeout: Duration,
    /// Connections kept open while idle. Short-lived commands use 0, so no
    /// background connection is still being made when the process exits.
    pub min_idle: u32,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions { max_size: 10, acquire_timeout: Duration::from_secs(2), min_idle: 1 }
    }
}

pub(crate) fn build_pool(target: DbTarget, opts: &PoolOptions) -> DbPool {
    // A PostgreSQL connection can break while it sits in the pool (server
    // restart, network), so it is checked when taken; an SQLite file cannot,
    // and the check cost a query on every use (6% of the CPU of an
    // introspection, by profile).
    let test = target.backend != Backend::Sqlite;
    r2d2::Pool::builder()
        .max_size(opts.max_size)
        .min_idle(Some(opts.min_idle.min(opts.max_size)))
        .connection_timeout(opts.acquire_timeout)
        .test_on_check_out(test)
        .error_handler(Box::new(LogErrors))
        .build_unchecked(Manager::new(target))
}

#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<DbError> for LogErrors {
    fn handle_error(&self, error: DbError) {
        tracing::warn!(%error, "database connection failed");
    }
}
