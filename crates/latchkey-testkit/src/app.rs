use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use chrono::{TimeZone, Utc};
use latchkey_core::{Core, ManualClock, Settings};
use latchkey_web::ServeOptions;

use crate::TestDb;

/// The real app, serving on a loopback port of its own.
pub struct TestApp {
    /// Where to send requests: `http://127.0.0.1:PORT`.
    pub address: String,
    pub addr: SocketAddr,
    /// The configured public URL (the issuer): `http://localhost:PORT`.
    pub public_url: String,
    pub core: Core,
    pub clock: Arc<ManualClock>,
    /// A client that follows no redirects and keeps no cookies.
    pub client: reqwest::Client,
    pub db: Arc<TestDb>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _data_dir: tempfile::TempDir,
}

/// Options for [`TestApp`].
#[derive(Default)]
pub struct TestAppBuilder {
    env: Vec<(String, String)>,
    toml: Option<String>,
    db: Option<Arc<TestDb>>,
    database_url: Option<String>,
    sessions_url: Option<String>,
    migrate: bool,
    /// No mail or delivery worker: the test drives them.
    no_workers: bool,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::builder().spawn().await
    }

    /// Two instances sharing one database and one store (and prefix).
    pub async fn two_instances() -> (TestApp, TestApp) {
        let db = Arc::new(TestDb::new());
        let a = TestApp::builder().db(db.clone()).spawn().await;
        let b = TestApp::builder().db(db).spawn().await;
        (a, b)
    }

    pub fn builder() -> TestAppBuilder {
        TestAppBuilder { migrate: true, ..Default::default() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request reaches the app")
    }

    /// Stops the server and waits for it (also done on drop).
    pub fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let handle = self.handle.clone();
            let stopper = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(handle.stop(false));
                }
            });
            let _ = stopper.join();
            let _ = thread.join();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestAppBuilder {
    /// A configuration variable, as `LATCHKEY_SERVER__PUBLIC_URL`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A configuration file's text.
    pub fn toml(mut self, text: &str) -> Self {
        self.toml = Some(text.to_owned());
        self
    }

    /// Share a database with another app (two instances).
    pub fn db(mut self, db: Arc<TestDb>) -> Self {
        self.db = Some(db);
        self
    }

    /// Use this database URL instead of the test database (outage tests);
    /// migrations are then not applied.
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self.migrate = false;
        self
    }

    /// Use this Redis URL for the store (outage tests through a proxy).
    pub fn sessions_url(mut self, url: &str) -> Self {
        self.sessions_url = Some(url.to_owned());
        self
    }

    /// Runs no mail or delivery worker beside the server; the test calls
    /// them itself (with an injected outbound client, say).
    pub fn without_workers(mut self) -> Self {
        self.no_workers = true;
        self
    }

    pub async fn spawn(self) -> TestApp {
        let db = self.db.unwrap_or_else(|| Arc::new(TestDb::new()));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let public_url = format!("http://localhost:{}", addr.port());
        let data_dir = tempfile::tempdir().expect("temporary folder");

        let mut env: Vec<(String, String)> = db.env();
        env.retain(|(k, _)| k != "LATCHKEY_DATA_DIR");
        env.extend([
            ("LATCHKEY_DATA_DIR".to_owned(), data_dir.path().display().to_string()),
            ("LATCHKEY_SERVER__BIND".to_owned(), addr.to_string()),
            ("LATCHKEY_SERVER__PUBLIC_URL".to_owned(), public_url.clone()),
            ("LATCHKEY_SERVER__WORKERS".to_owned(), "1".to_owned()),
            ("LATCHKEY_SERVER__SHUTDOWN_TIMEOUT_SECS".to_owned(), "1".to_owned()),
            ("LATCHKEY_PASSWORDS__HASH_THREADS".to_owned(), "2".to_owned()),
            ("LATCHKEY_KEYS__RSA_BITS".to_owned(), "2048".to_owned()),
        ]);
        if let Some(url) = &self.database_url {
            env.retain(|(k, _)| k != "LATCHKEY_DATABASE__URL");
            env.push(("LATCHKEY_DATABASE__URL".to_owned(), url.clone()));
            env.push(("LATCHKEY_DATABASE__ACQUIRE_TIMEOUT_MS".to_owned(), "300".to_owned()));
        }
        if let Some(url) = &self.sessions_url {
            env.retain(|(k, _)| k != "LATCHKEY_SESSIONS__URL");
            env.push(("LATCHKEY_SESSIONS__URL".to_owned(), url.clone()));
            if !env.iter().any(|(k, _)| k == "LATCHKEY_SESSIONS__PREFIX") {
                let prefix = format!("latchkey-test:{}:", uuid::Uuid::new_v4().simple());
                env.push(("LATCHKEY_SESSIONS__PREFIX".to_owned(), prefix));
            }
        }
        env.extend(self.env);
        let settings = Settings::from_sources(self.toml.as_deref(), env).expect("test settings are valid");

        let start = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("a valid time");
        let clock = Arc::new(ManualClock::new(start));
        let core = Core::build(settings, clock.clone()).expect("core builds");
        if self.migrate {
            core.db.migrate().await.expect("migrations apply");
        }

        let server = latchkey_web::build_server(core.clone(), vec![listener], &ServeOptions { disable_signals: true })
            .expect("server builds");
        let handle = server.handle();
        let worker_core = core.clone();
        let workers = !self.no_workers;
        let thread = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                // The mail worker runs beside the server, as in `serve`.
                if workers {
                    rt.spawn(latchkey_core::mail::run_worker(worker_core.clone()));
                    rt.spawn(latchkey_core::oidc::backchannel::run_worker(worker_core));
                }
                let _ = rt.block_on(server);
            }
        });
        let client =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("HTTP client");
        TestApp {
            address: format!("http://{addr}"),
            addr,
            public_url,
            core,
            clock,
            client,
            db,
            handle,
            thread: Some(thread),
            _data_dir: data_dir,
        }
    }
}
