//! Logs on standard error, as text or JSON; standard output stays free for reports.

use std::io::{IsTerminal, Write};

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. The directives of a non-empty `RUST_LOG` are added to the
/// ones `level` gives, so that `RUST_LOG=kube=debug` does not silence trainjob-gc's own errors.
/// An empty `RUST_LOG` counts as unset, and an invalid one is ignored with a warning.
///
/// kube's own log lines are switched off by default: every failure they describe reaches
/// trainjob-gc as an error, which it logs with the request and the object involved.
pub fn init(format: LogFormat, level: tracing::Level) {
    let default = format!("warn,trainjob_gc={level},kube_client=off,kube=off");
    let custom = std::env::var("RUST_LOG")
        .ok()
        .filter(|text| !text.trim().is_empty());
    let mut invalid = None;
    let filter = match custom {
        None => EnvFilter::new(&default),
        // kube's lines stay at warn here rather than off, so that `kube=debug` can raise them.
        Some(text) => match EnvFilter::try_new(format!("warn,trainjob_gc={level},{text}")) {
            Ok(filter) => filter,
            Err(err) => {
                invalid = Some((text, err));
                EnvFilter::new(&default)
            }
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    // A second init in the same process (tests) keeps the first subscriber.
    let _ = result;
    if let Some((text, err)) = invalid {
        tracing::warn!("RUST_LOG={text:?} is invalid ({err}), so it is ignored; fix or unset it");
    }
}

/// Standard error that drops what it cannot write. A full or closed standard error must not
/// end a run in the middle of its deletions; the report and the exit code still tell the result.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
