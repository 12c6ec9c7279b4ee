use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use latchkey_testkit::TestDb;

pub const STRONG_PASSWORD: &str = "vR7#qLp2!mZx-orbit";

/// A `latchkey` command with only the given configuration variables.
pub fn latchkey_command(env: &[(String, String)], cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (k, _) in std::env::vars() {
        if k.starts_with("LATCHKEY_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))).current_dir(cwd);
    cmd
}

/// What a finished command said.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success; stderr: {}", self.stderr);
        self
    }

    /// A failure with one line on stderr that contains `needle`.
    #[track_caller]
    pub fn fails_with(self, needle: &str) -> Run {
        assert_ne!(self.code, 0, "expected failure; stdout: {}", self.stdout);
        let line = self.stderr.trim_end();
        assert!(!line.contains('\n'), "stderr is more than one line: {line:?}");
        assert!(line.starts_with("latchkey: "), "stderr: {line:?}");
        assert!(line.contains(needle), "stderr {line:?} does not mention {needle:?}");
        assert!(self.stdout.is_empty(), "nothing on stdout after a failure: {:?}", self.stdout);
        self
    }
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `latchkey ARGS` against `db`, with `stdin` if given.
pub fn latchkey(db: &TestDb, args: &[&str], stdin: Option<&str>) -> Run {
    run_with_env(&db.env(), db.dir.path(), args, stdin)
}

pub fn run_with_env(env: &[(String, String)], cwd: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = latchkey_command(env, cwd);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the latchkey binary starts");
    if let Some(mut pipe) = child.stdin.take() {
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        drop(pipe);
    }
    finish(child.wait_with_output().expect("the latchkey binary finishes"))
}
