//! The real binary: `serve` in an empty folder, the CLI beside it, a restart.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use latchkey_testkit::TestDb;

use crate::support::{STRONG_PASSWORD, latchkey_command, run_with_env};

struct Served {
    child: Child,
    address: String,
    banner: Vec<String>,
    stderr: mpsc::Receiver<String>,
}

fn start(env: &[(String, String)], cwd: &std::path::Path) -> Served {
    let mut child = latchkey_command(env, cwd)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (line_tx, line_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = line_tx.send(line);
        }
    });
    let (err_tx, err_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    let mut banner = Vec::new();
    let address = loop {
        let line = line_rx.recv_timeout(Duration::from_secs(60)).expect("serve prints where it listens");
        banner.push(line.clone());
        if let Some(rest) = line.split("listening on ").nth(1) {
            let first = rest.trim_end_matches(')').split(", ").next().unwrap_or_default().to_owned();
            break format!("http://{first}");
        }
    };
    // The rest of the banner follows at once.
    while let Ok(line) = line_rx.recv_timeout(Duration::from_millis(300)) {
        banner.push(line);
    }
    Served { child, address, banner, stderr: err_rx }
}

impl Served {
    /// SIGTERM, then the exit status and everything logged.
    fn stop(mut self) -> (bool, String) {
        let pid = self.child.id().to_string();
        let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(killed.success());
        let status = self.child.wait().expect("serve exits");
        let mut log = String::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            log.push_str(&line);
            log.push('\n');
        }
        (status.success(), log)
    }
}

async fn status(client: &reqwest::Client, url: String) -> u16 {
    client.get(url).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[tokio::test]
async fn serve_in_an_empty_folder_then_restart() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = vec![
        ("LATCHKEY_SERVER__BIND".to_owned(), "127.0.0.1:0".to_owned()),
        ("LATCHKEY_PASSWORDS__BCRYPT_COST".to_owned(), "10".to_owned()),
        ("LATCHKEY_SERVER__TRUSTED_PROXIES".to_owned(), "127.0.0.1/32, ::1".to_owned()),
    ];
    if db.is_postgres() {
        env.extend(db.env().into_iter().filter(|(k, _)| k != "LATCHKEY_DATA_DIR"));
    }
    let client = reqwest::Client::new();

    let served = start(&env, dir.path());
    let banner = served.banner.join("\n");
    assert!(banner.contains("Latchkey is running at http://localhost:8080"), "{banner}");
    assert!(banner.contains("No admin account yet"), "{banner}");
    assert!(banner.contains("latchkey user create --email"), "{banner}");
    assert_eq!(status(&client, format!("{}/healthz", served.address)).await, 200);
    assert_eq!(status(&client, format!("{}/readyz", served.address)).await, 200);
    let r = client
        .get(format!("{}/healthz?code=QUERYSECRET123", served.address))
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    if !db.is_postgres() {
        assert!(dir.path().join("data/latchkey.db").is_file(), "the SQLite file is in ./data");
        assert!(dir.path().join("data/secret.key").is_file(), "the encryption key is in ./data");
    }

    // The CLI works beside the running server.
    run_with_env(
        &env,
        dir.path(),
        &["user", "create", "--email", "admin@example.com", "--admin", "--password-stdin"],
        Some(STRONG_PASSWORD),
    )
    .ok();
    let client_id = run_with_env(
        &env,
        dir.path(),
        &["client", "create", "--name", "Demo", "--redirect-uri", "https://app.example.com/cb", "--json"],
        None,
    )
    .ok()
    .json()["client_id"]
        .as_str()
        .expect("client id")
        .to_owned();

    let (clean, log) = served.stop();
    assert!(clean, "SIGTERM stops serve gracefully with success; log:\n{log}");
    assert!(log.contains("/healthz"), "requests are logged:\n{log}");
    assert!(!log.contains("QUERYSECRET123"), "query strings are never logged:\n{log}");
    // Past a trusted proxy, the client is the last untrusted forwarded address.
    assert!(log.contains("client=203.0.113.7"), "{log}");

    // A restart keeps everything.
    let served = start(&env, dir.path());
    let banner = served.banner.join("\n");
    assert!(!banner.contains("No admin account yet"), "{banner}");
    assert_eq!(status(&client, format!("{}/readyz", served.address)).await, 200);
    let users = run_with_env(&env, dir.path(), &["user", "list", "--json"], None).ok().json();
    assert_eq!(users[0]["email"], "admin@example.com");
    assert_eq!(users[0]["admin"], true);
    let clients = run_with_env(&env, dir.path(), &["client", "list", "--json"], None).ok().json();
    assert_eq!(clients[0]["client_id"], client_id.as_str());
    let (clean, _) = served.stop();
    assert!(clean);
}

#[tokio::test]
async fn a_busy_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![("LATCHKEY_SERVER__BIND".to_owned(), addr.clone())];
    let r = run_with_env(&env, dir.path(), &["serve"], None);
    assert_ne!(r.code, 0);
    let last = r.stderr.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("latchkey: server.bind: cannot listen on"), "{last}");
    assert!(last.contains(&addr), "{last}");
}

/// The configuration the container image and docker-compose.yml use, run with
/// the local PostgreSQL and Redis in place of the compose services (no
/// container engine here: the image itself is built elsewhere).
#[tokio::test]
async fn the_compose_configuration_serves_on_postgres_and_redis() {
    let db = TestDb::new();
    if !db.is_postgres() || db.redis.is_none() {
        return; // runs in the suite's pass with both (.ci/run)
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("config/docker.toml");
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).expect("docker-compose.yml");
    assert!(compose.contains("./config/docker.toml:/etc/latchkey/latchkey.toml"), "compose mounts this config");
    let dockerfile = std::fs::read_to_string(root.join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("COPY config/docker.toml /etc/latchkey/latchkey.toml"));

    let dir = tempfile::tempdir().expect("tempdir");
    let mut env: Vec<(String, String)> = db.env().into_iter().filter(|(k, _)| k != "LATCHKEY_DATA_DIR").collect();
    env.push(("LATCHKEY_CONFIG".to_owned(), config.display().to_string()));
    env.push(("LATCHKEY_SERVER__BIND".to_owned(), "127.0.0.1:0".to_owned()));
    let served = start(&env, dir.path());
    let banner = served.banner.join("\n");
    assert!(banner.contains("Session store: redis"), "{banner}");
    let client = reqwest::Client::new();
    let r = client.get(format!("{}/readyz", served.address)).send().await.expect("readyz");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["checks"]["store_kind"], "redis");
    let (clean, log) = served.stop();
    assert!(clean);
    // log.format = "json": every line is a JSON object.
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(serde_json::from_str::<serde_json::Value>(line).is_ok(), "not JSON: {line}");
    }
}
