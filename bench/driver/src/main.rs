//! `bench-driver`: the load driver of `bench/run.sh`.
//!
//! The HTTP scenarios that are one request each (discovery, JWKS, the
//! client-credentials token, introspection, userinfo) are driven by wrk; this
//! binary drives what wrk cannot: the whole browser-less password sign-in
//! with PKCE and the code exchange, the refresh grant with a fresh token on
//! every request, and the sign-in storm with userinfo latency measured beside
//! it. Each load command prints one JSON object per line on standard output
//! (see `stats.rs`); `report` turns the collected lines into the table.

mod flow;
mod report;
mod stats;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tokio::task::JoinSet;

use crate::flow::{Jar, Rp, RpArgs, http_client};
use crate::stats::Recorder;

#[derive(Parser)]
#[command(name = "bench-driver", about = "Load driver for bench/run.sh")]
struct Cli {
    /// Tokio worker threads of the driver (it shares the machine with the server).
    #[arg(long, global = true, default_value_t = 1, env = "DRIVER_THREADS")]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in once and print {"access_token", "refresh_token"} (for the wrk scenarios).
    Tokens {
        #[command(flatten)]
        rp: RpArgs,
    },
    /// Full sign-ins (authorize, sign-in form, code, exchange) with a fresh browser each.
    Signin {
        #[command(flatten)]
        rp: RpArgs,
        #[command(flatten)]
        load: Load,
    },
    /// Refresh grants, each chain always presenting the newest (never a spent) token.
    Refresh {
        #[command(flatten)]
        rp: RpArgs,
        #[command(flatten)]
        load: Load,
    },
    /// Userinfo latency alone, then beside sign-ins at full speed.
    Storm {
        #[command(flatten)]
        rp: RpArgs,
        #[command(flatten)]
        load: Load,
        /// Connections that probe userinfo (closed loop).
        #[arg(long, default_value_t = 4)]
        probes: usize,
        /// Seconds of userinfo probing before the storm starts (the quiet baseline).
        #[arg(long, default_value_t = 3.0)]
        quiet: f64,
    },
    /// Print the table from the JSON lines collected by run.sh.
    Report {
        /// The results file (JSON lines).
        results: std::path::PathBuf,
    },
}

#[derive(clap::Args, Clone, Copy)]
struct Load {
    /// Concurrent workers (each one request or flow at a time).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Report { results } = &cli.command {
        return match report::print(results) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench-driver: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .expect("cannot start the tokio runtime");
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-driver: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(rp: RpArgs) -> Result<Rp, String> {
    let http = http_client(&rp.issuer)?;
    Rp::discover(http, rp).await
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Tokens { rp } => {
            let rp = connect(rp).await?;
            let tokens = rp.sign_in(&mut Jar::default()).await?;
            println!(
                "{}",
                serde_json::json!({"access_token": tokens.access_token, "refresh_token": tokens.refresh_token})
            );
        }
        Command::Signin { rp, load } => {
            let rp = connect(rp).await?;
            println!("{}", signins(&rp, load, "signin", None).await.0);
        }
        Command::Refresh { rp, load } => {
            let rp = connect(rp).await?;
            println!("{}", refreshes(&rp, load).await?);
        }
        Command::Storm { rp, load, probes, quiet } => {
            let rp = connect(rp).await?;
            let token = rp.sign_in(&mut Jar::default()).await?.access_token;
            let quiet_load = Load { concurrency: probes, duration: quiet };
            println!("{}", userinfo_probes(&rp, quiet_load, &token, "userinfo_quiet").await);
            let probe_load = Load { concurrency: probes, duration: load.duration };
            let (storm, probe) = signins(&rp, load, "storm_signin", Some((probe_load, token))).await;
            println!("{storm}");
            if let Some(probe) = probe {
                println!("{probe}");
            }
        }
        Command::Report { .. } => unreachable!("handled before the runtime starts"),
    }
    Ok(())
}

fn deadline(load: Load) -> Instant {
    Instant::now() + Duration::from_secs_f64(load.duration)
}

/// Sign-ins at full speed, each with a new cookie jar (a new browser); with
/// `probe`, userinfo is probed beside them for the same time.
async fn signins(
    rp: &Rp,
    load: Load,
    scenario: &str,
    probe: Option<(Load, String)>,
) -> (serde_json::Value, Option<serde_json::Value>) {
    let probe_task = probe.map(|(pl, token)| {
        let rp = rp.clone();
        tokio::spawn(async move { userinfo_probes(&rp, pl, &token, "storm_userinfo").await })
    });
    let start = Instant::now();
    let end = deadline(load);
    let mut set = JoinSet::new();
    for _ in 0..load.concurrency.max(1) {
        let rp = rp.clone();
        set.spawn(async move {
            let mut rec = Recorder::default();
            while Instant::now() < end {
                let t = Instant::now();
                match rp.sign_in(&mut Jar::default()).await {
                    Ok(_) => rec.ok(t.elapsed()),
                    Err(e) => rec.error(e),
                }
            }
            rec
        });
    }
    let mut total = Recorder::default();
    while let Some(rec) = set.join_next().await {
        total.merge(rec.expect("a sign-in worker panicked"));
    }
    let summary = total.summary(scenario, start.elapsed());
    let probe = match probe_task {
        Some(task) => Some(task.await.expect("the userinfo probe panicked")),
        None => None,
    };
    (summary, probe)
}

async fn userinfo_probes(rp: &Rp, load: Load, token: &str, scenario: &str) -> serde_json::Value {
    let start = Instant::now();
    let end = deadline(load);
    let mut set = JoinSet::new();
    for _ in 0..load.concurrency.max(1) {
        let rp = rp.clone();
        let token = token.to_owned();
        set.spawn(async move {
            let mut rec = Recorder::default();
            while Instant::now() < end {
                let t = Instant::now();
                match rp.userinfo(&token).await {
                    Ok(()) => rec.ok(t.elapsed()),
                    Err(e) => rec.error(e),
                }
            }
            rec
        });
    }
    let mut total = Recorder::default();
    while let Some(rec) = set.join_next().await {
        total.merge(rec.expect("a userinfo worker panicked"));
    }
    total.summary(scenario, start.elapsed())
}

/// Refresh chains: one password sign-in, then one silent authorization per
/// chain through that browser session (each code starts its own refresh
/// family), then every worker refreshes its chain in a loop, always with the
/// token the last answer returned. A failed refresh is counted and the chain
/// is started again from a new code (not timed).
async fn refreshes(rp: &Rp, load: Load) -> Result<serde_json::Value, String> {
    let mut browser = Jar::default();
    rp.sign_in(&mut browser).await?;
    let mut seeds = Vec::new();
    for _ in 0..load.concurrency.max(1) {
        let tokens = rp.sign_in(&mut browser.clone()).await?;
        let rt = tokens
            .refresh_token
            .ok_or("the code exchange gave no refresh_token (offline_access not granted?)".to_owned())?;
        seeds.push(rt);
    }
    let start = Instant::now();
    let end = deadline(load);
    let mut set = JoinSet::new();
    for seed in seeds {
        let rp = rp.clone();
        let browser = browser.clone();
        set.spawn(async move {
            let mut rec = Recorder::default();
            let mut current = seed;
            while Instant::now() < end {
                let t = Instant::now();
                match rp.refresh(&current).await {
                    Ok(next) => {
                        rec.ok(t.elapsed());
                        current = next;
                    }
                    Err(e) => {
                        rec.error(e);
                        match rp.sign_in(&mut browser.clone()).await.map(|t| t.refresh_token) {
                            Ok(Some(rt)) => current = rt,
                            _ => break,
                        }
                    }
                }
            }
            rec
        });
    }
    let mut total = Recorder::default();
    while let Some(rec) = set.join_next().await {
        total.merge(rec.expect("a refresh worker panicked"));
    }
    Ok(total.summary("refresh", start.elapsed()))
}
