//! Running the real binary from async tests, and reading its JSON logs.
//!
//! The runner is async because the proxy and the test's hooks run on the same runtime: a
//! blocking `Command::output` would stop them while the binary waits for a response.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::support::Run;

/// Settings every fault test starts from: a real run, JSON logs, the report on standard output
/// and retries short enough that no test sleeps through a real backoff.
pub const FAST: [(&str, &str); 5] = [
    ("TRAINJOB_GC_DRY_RUN", "false"),
    ("TRAINJOB_GC_LOG_FORMAT", "json"),
    ("TRAINJOB_GC_REPORT", "-"),
    ("TRAINJOB_GC_RETRY_BACKOFF", "10ms"),
    ("TRAINJOB_GC_RETRY_BACKOFF_MAX", "50ms"),
];

fn command(kubeconfig: &Path, settings: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_trainjob-gc"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KUBECONFIG", kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in FAST {
        command.env(key, value);
    }
    for (key, value) in settings {
        command.env(key, value);
    }
    command
}

/// Runs the binary to the end with [`FAST`] and then `settings` in its environment.
pub async fn run(kubeconfig: &Path, settings: &[(&str, &str)]) -> Run {
    run_with_args(kubeconfig, settings, &[]).await
}

pub async fn run_with_args(kubeconfig: &Path, settings: &[(&str, &str)], args: &[&str]) -> Run {
    let output = command(kubeconfig, settings, args)
        .output()
        .await
        .expect("run trainjob-gc");
    Run::from(output)
}

/// A run of the binary that the test signals while it works.
pub struct Running {
    child: Child,
    pub started: Instant,
}

pub fn start(kubeconfig: &Path, settings: &[(&str, &str)]) -> Running {
    let child = command(kubeconfig, settings, &[])
        .spawn()
        .expect("start trainjob-gc");
    Running {
        child,
        started: Instant::now(),
    }
}

impl Running {
    /// Sends a signal (`TERM`, `INT`) to the process that this test started, by its PID.
    pub async fn signal(&self, name: &str) {
        let pid = self.child.id().expect("trainjob-gc is still running");
        let status = Command::new("kill")
            .arg("-s")
            .arg(name)
            .arg(pid.to_string())
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill -s {name} {pid} failed");
    }

    /// Waits for the exit, for at most `limit`; returns the run and when it ended.
    pub async fn finish(self, limit: Duration) -> (Run, Instant) {
        let output = tokio::time::timeout(limit, self.child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("trainjob-gc did not exit within {limit:?}"))
            .expect("wait for trainjob-gc");
        (Run::from(output), Instant::now())
    }
}

/// Parses the JSON log events of a run's standard error.
pub fn logs(run: &Run) -> Vec<Value> {
    run.stderr
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .collect()
}

/// Events whose message contains `message` and whose other fields, as text, contain `fact`.
pub fn events<'a>(events: &'a [Value], message: &str, fact: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| {
            event["message"]
                .as_str()
                .is_some_and(|text| text.contains(message))
                && event.to_string().contains(fact)
        })
        .collect()
}

/// Asserts that some log event has this message and mentions `fact`.
pub fn assert_logged(run: &Run, message: &str, fact: &str) {
    let all = logs(run);
    assert!(
        !events(&all, message, fact).is_empty(),
        "no log event {message:?} that mentions {fact:?}\n{}",
        run.explain()
    );
}

/// Returns the `fault` field of each retry warning.
pub fn retried_faults(run: &Run) -> Vec<String> {
    logs(run)
        .iter()
        .filter(|event| event["message"] == "request failed, retrying")
        .map(|event| event["fault"].as_str().unwrap_or_default().to_owned())
        .collect()
}
