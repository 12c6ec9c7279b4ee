//! `bench-ceiling`: how many RS256 and ES256 signatures aws-lc-rs makes per
//! second on this machine (the library Latchkey signs with, not OpenSSL's
//! `openssl speed`), and how long one bcrypt verification at Latchkey's cost
//! takes (the bcrypt crate Latchkey uses). These bound the token endpoint
//! (one signature per client-credentials token; two per code exchange or
//! refresh: the ID token and the access token) and the sign-in
//! (one bcrypt verification per password sign-in).
//!
//! Each is measured on one thread, then on `--threads` threads at once.
//! Prints one JSON object per line (`kind` = `ceiling`).

use std::thread;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256};
use clap::Parser;

#[derive(Parser)]
#[command(name = "bench-ceiling", about = "aws-lc-rs signing and bcrypt ceilings on this machine")]
struct Args {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Threads of the all-cores measurement (default: available CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// bcrypt cost of the verification measured.
    #[arg(long, default_value_t = 12)]
    bcrypt_cost: u32,
}

/// A JWS signing input of about the size of an access token's.
fn message() -> Vec<u8> {
    let mut m = b"eyJhbGciOiJSUzI1NiIsImtpZCI6ImJlbmNoIiwidHlwIjoiYXQrand0In0.".to_vec();
    m.extend(std::iter::repeat_n(b'A', 560));
    m
}

/// Runs `op` on `threads` threads for `seconds` each; returns operations per second in total.
fn rate<F>(threads: usize, seconds: f64, make: impl Fn() -> F) -> f64
where
    F: FnMut() + Send + 'static,
{
    let dur = Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let mut op = make();
            thread::spawn(move || {
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < dur || n == 0 {
                    op();
                    n += 1;
                }
                n as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("a measuring thread panicked")).sum()
}

fn emit(name: &str, unit: &str, threads: usize, per_core: f64, all: f64) {
    println!(
        "{}",
        serde_json::json!({"kind": "ceiling", "name": name, "unit": unit, "threads": threads,
                           "per_core": per_core, "all_cores": all})
    );
}

fn rsa(bits: KeySize, name: &str, threads: usize, seconds: f64) {
    let pair = std::sync::Arc::new(aws_lc_rs::rsa::KeyPair::generate(bits).expect("RSA key generation failed"));
    let make = || {
        let pair = pair.clone();
        let rng = SystemRandom::new();
        let msg = message();
        let mut sig = vec![0u8; pair.public_modulus_len()];
        move || pair.sign(&RSA_PKCS1_SHA256, &rng, &msg, &mut sig).expect("RSA signing failed")
    };
    emit(name, "signatures/s", threads, rate(1, seconds, make), rate(threads, seconds, make));
}

fn main() {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(|| thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let s = args.seconds;

    rsa(KeySize::Rsa2048, "RS256 sign, RSA-2048 (aws-lc-rs)", threads, s);
    rsa(KeySize::Rsa3072, "RS256 sign, RSA-3072 (aws-lc-rs)", threads, s);

    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("P-256 generation failed");
    let ec = std::sync::Arc::new(
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).expect("P-256 key unreadable"),
    );
    let make = || {
        let ec = ec.clone();
        let rng = SystemRandom::new();
        let msg = message();
        move || {
            ec.sign(&rng, &msg).expect("ECDSA signing failed");
        }
    };
    emit("ES256 sign, P-256 (aws-lc-rs)", "signatures/s", threads, rate(1, s, make), rate(threads, s, make));

    let password = "correct horse battery staple";
    let hash = bcrypt::non_truncating_hash(password, args.bcrypt_cost).expect("bcrypt hashing failed");
    let make = || {
        let hash = hash.clone();
        move || {
            assert!(bcrypt::non_truncating_verify(password, &hash).expect("bcrypt verify failed"));
        }
    };
    // bcrypt is slow: at least a few verifications per thread.
    let secs = s.max(2.0);
    let one = rate(1, secs, make);
    let all = rate(threads, secs, make);
    emit(&format!("bcrypt verify, cost {} (bcrypt crate)", args.bcrypt_cost), "verifications/s", threads, one, all);
    emit(
        &format!("one bcrypt verify, cost {}", args.bcrypt_cost),
        "ms each",
        threads,
        1000.0 / one,
        1000.0 * threads as f64 / all,
    );
}
