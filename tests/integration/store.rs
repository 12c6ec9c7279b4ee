//! One suite for both stores: the SQL table (always) and Redis (when
//! LATCHKEY_TEST_REDIS_URL is set), with the same semantics.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use latchkey_core::store::{Store, hashed_key};
use latchkey_core::{Clock, ManualClock};
use latchkey_db::{Db, PoolOptions};
use latchkey_testkit::TestDb;

/// A store under test with its clock; keeps its database alive.
struct Subject {
    name: &'static str,
    store: Store,
    clock: Arc<ManualClock>,
    _db: Option<TestDb>,
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().expect("time")))
}

/// Every store implementation the environment offers.
async fn subjects() -> Vec<Subject> {
    let mut out = Vec::new();
    let db = TestDb::new();
    let pool = Db::connect(&db.url, &PoolOptions { max_size: 8, ..Default::default() }).expect("pool");
    pool.migrate().await.expect("migrate");
    let c = clock();
    out.push(Subject { name: "database", store: Store::database(pool, c.clone()), clock: c, _db: Some(db) });
    if let Some(url) = latchkey_testkit::redis_url() {
        // A TestDb owns the Redis prefix and removes its keys on drop.
        let holder = TestDb::new();
        let (url, prefix) = holder.redis.clone().unwrap_or((url, "latchkey-test:".into()));
        let c = clock();
        let store = Store::redis(&url, &prefix, c.clone()).expect("redis store");
        out.push(Subject { name: "redis", store, clock: c, _db: Some(holder) });
    }
    out
}

const MIN: Duration = Duration::from_secs(60);

#[tokio::test]
async fn put_get_delete() {
    for s in subjects().await {
        let st = &s.store;
        assert_eq!(st.get("k").await.expect("get"), None, "{}", s.name);
        st.put("k", b"one", MIN).await.expect("put");
        assert_eq!(st.get("k").await.expect("get").as_deref(), Some(&b"one"[..]), "{}", s.name);
        st.put("k", b"two", MIN).await.expect("overwrite");
        assert_eq!(st.get("k").await.expect("get").as_deref(), Some(&b"two"[..]), "{}", s.name);
        // Empty and binary values survive.
        st.put("empty", b"", MIN).await.expect("put");
        assert_eq!(st.get("empty").await.expect("get").as_deref(), Some(&b""[..]), "{}", s.name);
        st.put("bin", &[0, 255, 0, 10], MIN).await.expect("put");
        assert_eq!(st.get("bin").await.expect("get").as_deref(), Some(&[0u8, 255, 0, 10][..]), "{}", s.name);
        assert!(st.delete("k").await.expect("delete"), "{}", s.name);
        assert!(!st.delete("k").await.expect("delete again"), "{}", s.name);
        assert_eq!(st.get("k").await.expect("get"), None, "{}", s.name);
    }
}

#[tokio::test]
async fn put_if_present_never_brings_a_value_back() {
    for s in subjects().await {
        let st = &s.store;
        assert!(!st.put_if_present("p", b"x", MIN).await.expect("absent"), "{}", s.name);
        assert_eq!(st.get("p").await.expect("get"), None, "{}", s.name);
        st.put("p", b"one", MIN).await.expect("put");
        assert!(st.put_if_present("p", b"two", MIN).await.expect("present"), "{}", s.name);
        assert_eq!(st.get("p").await.expect("get").as_deref(), Some(&b"two"[..]), "{}", s.name);
        st.take("p").await.expect("take");
        assert!(!st.put_if_present("p", b"three", MIN).await.expect("taken"), "{}", s.name);
        assert_eq!(st.get("p").await.expect("get"), None, "{}", s.name);
    }
}

#[tokio::test]
async fn expiry_follows_the_clock() {
    for s in subjects().await {
        let st = &s.store;
        st.put("k", b"v", MIN).await.expect("put");
        st.put("t", b"v", MIN).await.expect("put");
        s.clock.advance(chrono::Duration::seconds(59));
        assert!(st.get("k").await.expect("get").is_some(), "{}: alive at 59 s", s.name);
        s.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(st.get("k").await.expect("get"), None, "{}: gone at 60 s", s.name);
        assert_eq!(st.take("t").await.expect("take"), None, "{}: an expired value is not taken", s.name);
        // A new value under the same key lives again.
        st.put("k", b"w", MIN).await.expect("put");
        assert!(st.get("k").await.expect("get").is_some(), "{}", s.name);
    }
}

#[tokio::test]
async fn take_gives_the_value_once() {
    for s in subjects().await {
        let st = &s.store;
        st.put("code", b"c1", MIN).await.expect("put");
        assert_eq!(st.take("code").await.expect("take").as_deref(), Some(&b"c1"[..]), "{}", s.name);
        assert_eq!(st.take("code").await.expect("take"), None, "{}", s.name);
        assert_eq!(st.get("code").await.expect("get"), None, "{}", s.name);
        assert_eq!(st.take("never-there").await.expect("take"), None, "{}", s.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_takes_give_exactly_one_value() {
    for s in subjects().await {
        for round in 0..3 {
            let key = format!("race-{round}");
            s.store.put(&key, b"prize", MIN).await.expect("put");
            let mut tasks = Vec::new();
            for _ in 0..50 {
                let st = s.store.clone();
                let key = key.clone();
                tasks.push(tokio::spawn(async move { st.take(&key).await }));
            }
            let mut winners = 0;
            for t in tasks {
                if t.await.expect("join").expect("take").is_some() {
                    winners += 1;
                }
            }
            assert_eq!(winners, 1, "{} round {round}", s.name);
        }
    }
}

#[tokio::test]
async fn counters_are_per_clock_window() {
    for s in subjects().await {
        let st = &s.store;
        let w = Duration::from_secs(900);
        // Start at the beginning of a window, so the test is exact.
        let now = s.clock.now().timestamp();
        s.clock.advance(chrono::Duration::seconds(900 - now.rem_euclid(900)));
        assert_eq!(st.count("login:ada", w).await.expect("count"), 0, "{}", s.name);
        for want in 1..=5 {
            assert_eq!(st.incr("login:ada", w).await.expect("incr"), want, "{}", s.name);
        }
        assert_eq!(st.count("login:ada", w).await.expect("count"), 5, "{}", s.name);
        assert_eq!(st.incr("login:bob", w).await.expect("incr"), 1, "{}: counters are separate", s.name);
        s.clock.advance(chrono::Duration::seconds(899));
        assert_eq!(st.incr("login:ada", w).await.expect("incr"), 6, "{}: same window", s.name);
        s.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(st.count("login:ada", w).await.expect("count"), 0, "{}: a new window", s.name);
        assert_eq!(st.incr("login:ada", w).await.expect("incr"), 1, "{}", s.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_increments_all_count() {
    for s in subjects().await {
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let st = s.store.clone();
            tasks.push(tokio::spawn(async move { st.incr("burst", MIN).await }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.expect("join").expect("incr"));
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=40).collect::<Vec<u64>>(), "{}", s.name);
    }
}

#[tokio::test]
async fn per_user_index() {
    for s in subjects().await {
        let st = &s.store;
        let idx = "user-sessions:u1";
        assert!(st.index_list(idx).await.expect("list").is_empty(), "{}", s.name);
        st.index_add(idx, "s-long", Duration::from_secs(3600)).await.expect("add");
        st.index_add(idx, "s-short", MIN).await.expect("add");
        st.index_add("user-sessions:u2", "other", MIN).await.expect("add");
        assert_eq!(st.index_list(idx).await.expect("list"), vec!["s-short", "s-long"], "{}", s.name);
        // Adding again moves the expiry, not a duplicate.
        st.index_add(idx, "s-short", Duration::from_secs(7200)).await.expect("add");
        assert_eq!(st.index_list(idx).await.expect("list"), vec!["s-long", "s-short"], "{}", s.name);
        assert!(st.index_remove(idx, "s-long").await.expect("remove"), "{}", s.name);
        assert!(!st.index_remove(idx, "s-long").await.expect("remove"), "{}", s.name);
        assert_eq!(st.index_list(idx).await.expect("list"), vec!["s-short"], "{}", s.name);
        s.clock.advance(chrono::Duration::hours(2));
        assert!(st.index_list(idx).await.expect("list").is_empty(), "{}: expired members drop out", s.name);
        assert!(st.index_list("user-sessions:u2").await.expect("list").is_empty(), "{}", s.name);
    }
}

#[tokio::test]
async fn locks_exclude_until_released_or_expired() {
    for s in subjects().await {
        let st = &s.store;
        let a = st.try_lock("rotate", MIN).await.expect("lock").expect("free");
        assert!(st.try_lock("rotate", MIN).await.expect("lock").is_none(), "{}", s.name);
        assert!(st.try_lock("other", MIN).await.expect("lock").is_some(), "{}", s.name);
        assert!(st.unlock(&a).await.expect("unlock"), "{}", s.name);
        assert!(!st.unlock(&a).await.expect("unlock twice"), "{}", s.name);
        let b = st.try_lock("rotate", MIN).await.expect("lock").expect("free again");
        // An expired lock can be taken over, and the old holder cannot
        // release the new holder's lock.
        s.clock.advance(chrono::Duration::seconds(61));
        let c = st.try_lock("rotate", MIN).await.expect("lock").expect("expired lock is free");
        assert!(!st.unlock(&b).await.expect("unlock"), "{}", s.name);
        assert!(st.try_lock("rotate", MIN).await.expect("lock").is_none(), "{}", s.name);
        assert!(st.unlock(&c).await.expect("unlock"), "{}", s.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_many_instances_gets_the_lock() {
    for s in subjects().await {
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let st = s.store.clone();
            tasks.push(tokio::spawn(async move { st.try_lock("sweep", MIN).await }));
        }
        let mut holders = 0;
        for t in tasks {
            if t.await.expect("join").expect("lock").is_some() {
                holders += 1;
            }
        }
        assert_eq!(holders, 1, "{}", s.name);
    }
}

#[tokio::test]
async fn secrets_are_stored_under_their_hash() {
    let key = hashed_key("session", "raw-session-id");
    assert_eq!(key, format!("session:{}", latchkey_core::tokens::hash_secret("raw-session-id")));
    assert!(!key.contains("raw-session-id"));
    for s in subjects().await {
        s.store.put(&key, b"user-1", MIN).await.expect("put");
        assert_eq!(
            s.store.get(&hashed_key("session", "raw-session-id")).await.expect("get").as_deref(),
            Some(&b"user-1"[..])
        );
        assert_eq!(s.store.get(&hashed_key("session", "raw-session-iD")).await.expect("get"), None, "{}", s.name);
    }
}

#[tokio::test]
async fn the_sql_sweep_removes_what_expired() {
    let subjects = subjects().await;
    let s = &subjects[0];
    assert_eq!(s.name, "database");
    s.store.put("a", b"1", MIN).await.expect("put");
    s.store.put("b", b"1", Duration::from_secs(3600)).await.expect("put");
    s.store.incr("c", MIN).await.expect("incr");
    s.store.index_add("i", "m", MIN).await.expect("add");
    assert_eq!(s.store.sweep().await.expect("sweep"), 0);
    s.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(s.store.sweep().await.expect("sweep"), 3, "a, the counter and the index member");
    assert!(s.store.get("b").await.expect("get").is_some());
}

#[tokio::test]
async fn a_value_written_on_one_instance_is_read_and_taken_on_the_other() {
    let (a, b) = latchkey_testkit::TestApp::two_instances().await;
    a.core.store.put("shared", b"hello", MIN).await.expect("put on a");
    assert_eq!(b.core.store.get("shared").await.expect("get on b").as_deref(), Some(&b"hello"[..]));
    assert_eq!(b.core.store.take("shared").await.expect("take on b").as_deref(), Some(&b"hello"[..]));
    assert_eq!(a.core.store.get("shared").await.expect("get on a"), None);
    assert_eq!(a.core.store.kind(), b.core.store.kind());
    // And both answer over HTTP.
    assert_eq!(a.get("/readyz").await.status(), 200);
    assert_eq!(b.get("/readyz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_takes_across_two_instances_give_one_value() {
    let (a, b) = latchkey_testkit::TestApp::two_instances().await;
    a.core.store.put("code", b"x", MIN).await.expect("put");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let st = if i % 2 == 0 { a.core.store.clone() } else { b.core.store.clone() };
        tasks.push(tokio::spawn(async move { st.take("code").await }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.expect("join").expect("take").is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn maintenance_sweeps_purges_and_runs_on_one_instance_at_a_time() {
    let (a, b) = latchkey_testkit::TestApp::two_instances().await;
    let actor = latchkey_core::audit::Actor::Cli;
    latchkey_core::accounts::create_user(
        &a.core,
        // Verified: an unverified account would itself be purged after 30 days.
        latchkey_core::accounts::NewUser {
            email: "old@example.com".into(),
            email_verified: true,
            ..Default::default()
        },
        &actor,
    )
    .await
    .expect("user");
    a.core.store.put("short", b"x", MIN).await.expect("put");

    // While one instance holds the lock, the other skips its round.
    let held = b.core.store.try_lock("maintenance", MIN).await.expect("lock").expect("free");
    assert_eq!(latchkey_core::maintenance::run_once(&a.core).await.expect("round"), None);
    assert!(b.core.store.unlock(&held).await.expect("unlock"));

    // Nothing is old enough yet: the audit event stays.
    let round = latchkey_core::maintenance::run_once(&a.core).await.expect("round").expect("ran");
    assert_eq!(round.audit_purged, 0);
    // Two years and a day later the event is purged (and the store swept).
    a.clock.advance(chrono::Duration::days(2 * 365 + 1));
    let round = latchkey_core::maintenance::run_once(&a.core).await.expect("round").expect("ran");
    assert_eq!(round.audit_purged, 1);
    if a.core.store.kind() == "database" {
        assert!(round.swept >= 1, "{round:?}");
    }
    assert!(latchkey_core::audit::list(&a.core, None, None, 10).await.expect("audit").is_empty());
}
