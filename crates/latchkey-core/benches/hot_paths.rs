//! Micro-benchmarks of the paths every token request takes: signing and
//! verifying tokens (each algorithm), finding a session, authenticating a
//! client, and one password verification. Run with `cargo bench -p
//! latchkey-core` (or `--workspace`); figures land in target/criterion.
//!
//! The core is the real one, in embedded mode (SQLite in a temporary folder),
//! so store and database round trips are part of what is measured.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use latchkey_core::audit::Actor;
use latchkey_core::clients::{NewClient, create_client};
use latchkey_core::oidc::jwt;
use latchkey_core::sessions::RequestContext;
use latchkey_core::signing::Alg;
use latchkey_core::{Core, Settings, SystemClock};
use serde_json::{Map, Value, json};

struct Bench {
    rt: tokio::runtime::Runtime,
    core: Core,
    _dir: tempfile::TempDir,
}

fn setup() -> Bench {
    let dir = tempfile::tempdir().expect("temporary folder");
    let env = vec![
        ("LATCHKEY_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("LATCHKEY_KEYS__RSA_BITS".to_owned(), "2048".to_owned()),
    ];
    let settings = Settings::load(None, env).expect("settings");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let core = Core::build(settings, Arc::new(SystemClock)).expect("core");
    rt.block_on(async {
        core.db.migrate().await.expect("migrations");
        for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
            core.ensure_key_for(alg).await.expect("key");
        }
    });
    Bench { rt, core, _dir: dir }
}

fn claims() -> Value {
    json!({
        "iss": "http://localhost:8080", "sub": "3f1c0f5e-2c39-4d7e-9a51-0d1f2b3c4d5e", "aud": "bench-client",
        "client_id": "bench-client", "scope": "openid profile email", "jti": "9b2f7c1e4a3d",
        "iat": 1_790_000_000, "exp": 1_790_000_600,
    })
}

fn tokens(c: &mut Criterion) {
    let b = setup();
    let mut group = c.benchmark_group("token");
    for alg in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
        let key = b.rt.block_on(b.core.signing_key(alg)).expect("signing key");
        group.bench_function(format!("sign {}", alg.as_str()), |bench| {
            bench.iter(|| jwt::sign(black_box(&key), "at+jwt", black_box(&claims())).expect("signed"))
        });
        let token = jwt::sign(&key, "at+jwt", &claims()).expect("signed");
        // A token's first check runs the signature verification; later ones
        // find it in the verified-signature cache.
        group.bench_function(format!("verify {}", alg.as_str()), |bench| {
            bench.iter(|| {
                b.core.verified_tokens.clear();
                b.rt.block_on(b.core.verify_jws(black_box(&token))).expect("verified").expect("valid")
            })
        });
        group.bench_function(format!("verify {} again (cached)", alg.as_str()), |bench| {
            bench.iter(|| b.rt.block_on(b.core.verify_jws(black_box(&token))).expect("verified").expect("valid"))
        });
    }
    group.finish();
}

fn sessions_and_clients(c: &mut Criterion) {
    let b = setup();
    let ctx = RequestContext { ip: Some("127.0.0.1".into()), user_agent: Some("bench".into()) };
    let (id, _) = b.rt.block_on(b.core.create_session("bench-user", vec!["pwd".into()], &ctx)).expect("session");
    c.bench_function("session lookup", |bench| {
        bench.iter(|| b.rt.block_on(b.core.session_from_cookie(black_box(&id), &ctx)).expect("store").expect("live"))
    });

    let created =
        b.rt.block_on(create_client(
            &b.core,
            NewClient { name: "Bench".into(), grants: vec!["client_credentials".into()], ..Default::default() },
            &Actor::Cli,
        ))
        .expect("client");
    let secret = created.client_secret.expect("a confidential client's secret");
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{}:{secret}", created.client.client_id)
        )
    );
    let params = Map::new();
    c.bench_function("client authentication (basic)", |bench| {
        bench.iter(|| {
            b.rt.block_on(b.core.authenticate_client(black_box(&params), Some(black_box(&basic))))
                .expect("authenticated")
        })
    });
}

fn passwords(c: &mut Criterion) {
    let hash = latchkey_core::password::hash_blocking("correct horse battery staple", 12).expect("hash");
    let mut group = c.benchmark_group("password");
    group.sample_size(10);
    group.bench_function("bcrypt-12 verify", |bench| {
        bench.iter(|| latchkey_core::password::verify_blocking(black_box("correct horse battery staple"), &hash))
    });
    group.finish();
}

criterion_group!(benches, tokens, sessions_and_clients, passwords);
criterion_main!(benches);
