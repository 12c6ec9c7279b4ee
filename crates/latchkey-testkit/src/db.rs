use std::sync::Mutex;

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::{PgConnection, sql_query};
use latchkey_db::DbConnection;

/// A database of a test's own (and, with `LATCHKEY_TEST_REDIS_URL`, a Redis
/// key prefix of its own), removed on drop.
pub struct TestDb {
    pub url: String,
    /// Redis URL and this test's key prefix, when tests use Redis.
    pub redis: Option<(String, String)>,
    /// Where embedded-mode files (the SQLite database, keys) live.
    pub dir: tempfile::TempDir,
    postgres: Option<PgDatabase>,
    /// The encryption key every process of this test shares.
    pub encryption_key: String,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

#[derive(QueryableByName)]
struct DbName {
    #[diesel(sql_type = Text)]
    #[allow(dead_code)]
    datname: String,
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    v: Option<String>,
}

impl TestDb {
    /// SQLite unless `LATCHKEY_TEST_DATABASE_URL` names a PostgreSQL server.
    pub fn new() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let redis = crate::redis_url().map(|u| (u, format!("latchkey-test:{}:", uuid::Uuid::new_v4().simple())));
        match crate::postgres_url() {
            None => TestDb {
                url: format!("sqlite://{}", dir.path().join("latchkey.db").display()),
                redis,
                dir,
                postgres: None,
                encryption_key: crate::random_key(),
            },
            Some(admin_url) => {
                let name = format!("latchkey_test_{}", uuid::Uuid::new_v4().simple());
                create_from_template(&admin_url, &name);
                TestDb {
                    url: with_database(&admin_url, &name),
                    redis,
                    dir,
                    postgres: Some(PgDatabase { admin_url, name }),
                    encryption_key: crate::random_key(),
                }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// The environment that points a `latchkey` process at this database.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("LATCHKEY_DATA_DIR".to_owned(), self.dir.path().join("data").display().to_string()),
            ("LATCHKEY_DATABASE__URL".to_owned(), self.url.clone()),
            ("LATCHKEY_PASSWORDS__BCRYPT_COST".to_owned(), "10".to_owned()),
            ("LATCHKEY_SECRETS__ENCRYPTION_KEYS".to_owned(), self.encryption_key.clone()),
        ];
        if let Some((url, prefix)) = &self.redis {
            v.push(("LATCHKEY_SESSIONS__URL".to_owned(), url.clone()));
            v.push(("LATCHKEY_SESSIONS__PREFIX".to_owned(), prefix.clone()));
        }
        v
    }

    /// Runs one SQL statement (a change a test makes behind the app's back).
    pub fn execute(&self, sql: &str) -> usize {
        use diesel::RunQueryDsl as _;
        diesel::sql_query(sql).execute(&mut self.connect()).expect("the statement runs")
    }

    /// The text column `v` of every row `sql` selects (NULLs left out), for
    /// checks that read stored values straight from the database.
    pub fn texts(&self, sql: &str) -> Vec<String> {
        let target = latchkey_db::DbTarget::parse(&self.url).expect("test database URL");
        let rows: Vec<TextRow> = match target.backend {
            latchkey_db::Backend::Postgres => {
                sql_query(sql).load(&mut PgConnection::establish(&self.url).expect("connect to the test database"))
            }
            latchkey_db::Backend::Sqlite => {
                let mut conn = diesel::SqliteConnection::establish(&target.target).expect("open the test database");
                // The app may be writing: wait for it rather than fail.
                sql_query("PRAGMA busy_timeout = 5000").execute(&mut conn).expect("busy timeout");
                sql_query(sql).load(&mut conn)
            }
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter().filter_map(|r| r.v).collect()
    }

    /// A blocking connection, for checks that look at rows directly.
    pub fn connect(&self) -> DbConnection {
        let target = latchkey_db::DbTarget::parse(&self.url).expect("test database URL");
        match target.backend {
            latchkey_db::Backend::Postgres => {
                DbConnection::Pg(PgConnection::establish(&self.url).expect("connect to the test database"))
            }
            latchkey_db::Backend::Sqlite => DbConnection::Sqlite(
                diesel::SqliteConnection::establish(&target.target).expect("open the test database"),
            ),
        }
    }
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((url, prefix)) = &self.redis {
            remove_redis_keys(url, prefix);
        }
        if let Some(pg) = &self.postgres
            && let Ok(mut admin) = PgConnection::establish(&pg.admin_url)
        {
            let _ = sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", pg.name)).execute(&mut admin);
        }
    }
}

/// Deletes every key under `prefix` (SCAN, never KEYS).
fn remove_redis_keys(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else { return };
    let Ok(mut conn) = client.get_connection() else { return };
    let keys: Vec<String> = match redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(format!("{prefix}*"))
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(&mut conn)
    {
        Ok(iter) => iter.filter_map(Result::ok).collect(),
        Err(_) => return,
    };
    for chunk in keys.chunks(500) {
        let _: Result<i64, _> = redis::cmd("DEL").arg(chunk).query(&mut conn);
    }
}

/// `postgres://u@h:5432/postgres` → the same server, database `name`.
fn with_database(url: &str, name: &str) -> String {
    let mut u = url::Url::parse(url).expect("LATCHKEY_TEST_DATABASE_URL is a URL");
    u.set_path(&format!("/{name}"));
    u.to_string()
}

/// The template's name follows the migrations' contents, so a changed
/// migration gets a fresh template.
fn template_name() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres");
    let mut files: Vec<std::path::PathBuf> = walk(&dir);
    files.sort();
    let mut text = String::new();
    for f in files {
        text.push_str(&f.display().to_string());
        text.push_str(&std::fs::read_to_string(&f).unwrap_or_default());
    }
    format!("latchkey_template_{}", &latchkey_core::tokens::hash_secret(&text)[..16])
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

static TEMPLATE_READY: Mutex<Option<String>> = Mutex::new(None);

fn create_from_template(admin_url: &str, name: &str) {
    let template = {
        let mut ready = TEMPLATE_READY.lock().unwrap_or_else(|p| p.into_inner());
        if ready.is_none() {
            *ready = Some(ensure_template(admin_url));
        }
        ready.clone().unwrap_or_default()
    };
    let mut admin = PgConnection::establish(admin_url).expect("connect to LATCHKEY_TEST_DATABASE_URL");
    // Concurrent copies of one template can collide; retry briefly.
    let mut last = None;
    for attempt in 0..20 {
        match sql_query(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")).execute(&mut admin) {
            Ok(_) => return,
            Err(e) => {
                last = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(50 * (attempt + 1)));
            }
        }
    }
    panic!("cannot create test database {name}: {last:?}");
}

/// Creates the migrated template once per server, under an advisory lock so
/// parallel test processes agree.
fn ensure_template(admin_url: &str) -> String {
    let template = template_name();
    let mut admin = PgConnection::establish(admin_url).expect("connect to LATCHKEY_TEST_DATABASE_URL");
    sql_query("SELECT pg_advisory_lock(72170001)").execute(&mut admin).expect("advisory lock");
    let exists = !sql_query(format!("SELECT datname FROM pg_database WHERE datname = '{template}'"))
        .load::<DbName>(&mut admin)
        .expect("look up the template")
        .is_empty();
    if !exists {
        let building = format!("{template}_building");
        sql_query(format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)")).execute(&mut admin).expect("drop");
        sql_query(format!("CREATE DATABASE \"{building}\"")).execute(&mut admin).expect("create template");
        {
            let mut conn = DbConnection::Pg(
                PgConnection::establish(&with_database(admin_url, &building)).expect("connect to the template"),
            );
            latchkey_db::run_migrations(&mut conn).expect("migrate the template");
        }
        sql_query(format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""))
            .execute(&mut admin)
            .expect("rename template");
    }
    sql_query("SELECT pg_advisory_unlock(72170001)").execute(&mut admin).expect("advisory unlock");
    template
}
