//! Latchkey's SQL storage: one diesel schema over PostgreSQL and SQLite, the
//! pool, the embedded migrations of both backends, and one query module per
//! table. Nothing above this crate touches diesel.

mod connection;
mod error;
pub mod queries;
pub mod schema;

use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use connection::{Backend, DbConnection, DbTarget, PoolOptions};
pub use error::DbError;
pub use queries::{
    api_keys, audit, clients, consents, deliveries, groups, identities, mail_outbox, mfa, refresh_tokens, signing_keys,
    store, users, webhooks,
};

pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// A handle on the database: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct Db {
    pool: connection::DbPool,
    backend: Backend,
    label: Arc<str>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.backend).field("target", &self.label).finish()
    }
}

impl Db {
    /// Builds the pool for `url` without connecting yet; for SQLite the file's
    /// folder must exist. Use [`Db::ping`] to find out whether it is reachable.
    pub fn connect(url: &str, opts: &PoolOptions) -> Result<Db, DbError> {
        let target = DbTarget::parse(url)?;
        let backend = target.backend;
        let label: Arc<str> = match backend {
            Backend::Postgres => redact_url(url).into(),
            Backend::Sqlite => target.target.clone().into(),
        };
        Ok(Db { pool: connection::build_pool(target, opts), backend, label })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database named for logs, with any password removed.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs blocking diesel work on tokio's blocking pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| DbError::Query(format!("database task failed: {e}")))?
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }

    /// Checks that a connection can be had within `within` and answers.
    pub async fn ping(&self, within: std::time::Duration) -> Result<(), DbError> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            use diesel::connection::SimpleConnection;
            let mut conn = pool.get_timeout(within)?;
            conn.batch_execute("SELECT 1").map_err(|e| DbError::Unavailable(e.to_string()))
        })
        .await
        .map_err(|e| DbError::Query(format!("database task failed: {e}")))?
    }

    /// Applies the migrations not applied yet; returns their names.
    pub async fn migrate(&self) -> Result<Vec<String>, DbError> {
        self.run(run_migrations).await
    }

    /// Migrations that exist but are not applied.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, DbError> {
        self.run(|conn| {
            let names = match conn {
                DbConnection::Pg(c) => {
                    c.pending_migrations(POSTGRES_MIGRATIONS).map(|p| p.iter().map(|m| m.name().to_string()).collect())
                }
                DbConnection::Sqlite(c) => {
                    c.pending_migrations(SQLITE_MIGRATIONS).map(|p| p.iter().map(|m| m.name().to_string()).collect())
                }
            };
            names.map_err(|e| DbError::Migration(e.to_string()))
        })
        .await
    }
}

/// Runs `f` in one transaction: committed when it returns Ok, rolled back
/// otherwise. On SQLite the outermost transaction begins IMMEDIATE: it takes
/// the write lock at once (waiting up to the busy timeout), so a transaction
/// that reads and then writes never finds, at its first write, that another
/// connection wrote since its read (which SQLite answers with "database is
/// locked" at once, without waiting).
pub fn transaction<T, F>(conn: &mut DbConnection, f: F) -> Result<T, DbError>
where
    F: FnOnce(&mut DbConnection) -> Result<T, DbError>,
{
    use diesel::Connection as _;
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let outermost_sqlite = match conn {
        DbConnection::Sqlite(c) => {
            let depth = AnsiTransactionManager::transaction_manager_status_mut(c).transaction_depth()?;
            if depth.is_none() {
                AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
                true
            } else {
                false
            }
        }
        DbConnection::Pg(_) => false,
    };
    if !outermost_sqlite {
        return conn.transaction(f);
    }
    let result = f(conn);
    match (conn, result) {
        (DbConnection::Sqlite(c), Ok(v)) => {
            AnsiTransactionManager::commit_transaction(c)?;
            Ok(v)
        }
        (DbConnection::Sqlite(c), Err(e)) => {
            AnsiTransactionManager::rollback_transaction(c)?;
            Err(e)
        }
        // Matched as SQLite above; a connection does not change backend.
        (DbConnection::Pg(_), result) => result,
    }
}

/// Applies pending migrations on one connection; returns their names.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, DbError> {
    fn names<DB: diesel::backend::Backend>(list: Vec<Box<dyn diesel::migration::Migration<DB>>>) -> Vec<String> {
        list.iter().map(|m| m.name().to_string()).collect()
    }
    let applied: diesel::migration::Result<Vec<String>> = match conn {
        DbConnection::Pg(c) => {
            // Instances starting together take turns: the first migrates,
            // the others then find nothing pending.
            use diesel::connection::SimpleConnection;
            c.batch_execute("SELECT pg_advisory_lock(7217000042)")?;
            let result = c
                .pending_migrations(POSTGRES_MIGRATIONS)
                .map(names)
                .and_then(|n| c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| n));
            c.batch_execute("SELECT pg_advisory_unlock(7217000042)")?;
            result
        }
        DbConnection::Sqlite(c) => c
            .pending_migrations(SQLITE_MIGRATIONS)
            .map(names)
            .and_then(|n| c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| n)),
    };
    applied.map_err(|e| DbError::Migration(e.to_string()))
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or(userinfo);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &str) -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations").join(dir);
        let mut v: Vec<String> = std::fs::read_dir(root)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        let pg = names("postgres");
        let sqlite = names("sqlite");
        assert!(!pg.is_empty());
        assert_eq!(pg, sqlite);
    }

    #[test]
    fn url_schemes() {
        assert_eq!(DbTarget::parse("postgres://u@h/db").map(|t| t.backend).ok(), Some(Backend::Postgres));
        assert_eq!(DbTarget::parse("postgresql://u@h/db").map(|t| t.backend).ok(), Some(Backend::Postgres));
        let t = DbTarget::parse("sqlite://./data/x.db").ok();
        assert_eq!(t.map(|t| (t.backend, t.target)), Some((Backend::Sqlite, "./data/x.db".to_owned())));
        assert!(matches!(DbTarget::parse("mysql://h/db"), Err(DbError::Config(m)) if m.contains("\"mysql\"")));
        assert!(matches!(DbTarget::parse("sqlite://"), Err(DbError::Config(_))));
        assert!(matches!(DbTarget::parse("just-a-file.db"), Err(DbError::Config(m)) if m.contains("not a URL")));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/lk"), "postgres://app:***@db:5432/lk");
        assert_eq!(redact_url("postgres://app@db/lk"), "postgres://app@db/lk");
        assert_eq!(redact_url("postgres://db/lk"), "postgres://db/lk");
    }

    #[tokio::test]
    async fn sqlite_migrates_and_pings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::connect(&url, &PoolOptions::default()).expect("connect");
        db.ping(std::time::Duration::from_secs(2)).await.expect("ping");
        let applied = db.migrate().await.expect("migrate");
        assert_eq!(applied.len(), names("sqlite").len());
        assert!(db.pending_migrations().await.expect("pending").is_empty());
        assert!(db.migrate().await.expect("second migrate").is_empty());
    }

    #[tokio::test]
    async fn unreachable_sqlite_folder_is_unavailable() {
        let db = Db::connect(
            "sqlite:///nonexistent-folder-latchkey/x.db",
            &PoolOptions { max_size: 1, acquire_timeout: std::time::Duration::from_secs(5), min_idle: 0 },
        )
        .expect("pool builds lazily");
        let started = std::time::Instant::now();
        let ping = db.ping(std::time::Duration::from_millis(300)).await;
        assert!(matches!(ping, Err(DbError::Unavailable(_))), "{ping:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "the ping's own deadline applies");
    }
}
