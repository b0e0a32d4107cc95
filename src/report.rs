//! The audit report (JSON lines), the terminal table, the summary and the exit code.

use std::collections::BTreeMap;
use std::io::Write;

use jiff::Timestamp;
use serde::Serialize;

use crate::decide::{Decision, Outcome, Verdict};

/// What happened to one TrainJob, as the report's `result` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunResult {
    Deleted,
    WouldDelete,
    AlreadyGone,
    Conflict,
    Denied,
    Failed,
    Kept,
    /// Due, but beyond `MAX_DELETIONS` in this run.
    Backlog,
    /// Due, but the `ABORT_ABOVE` breaker stopped every deletion.
    Aborted,
    /// Due, but the deadline or a signal came first.
    Interrupted,
}

impl RunResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RunResult::Deleted => "deleted",
            RunResult::WouldDelete => "would-delete",
            RunResult::AlreadyGone => "already-gone",
            RunResult::Conflict => "conflict",
            RunResult::Denied => "denied",
            RunResult::Failed => "failed",
            RunResult::Kept => "kept",
            RunResult::Backlog => "backlog",
            RunResult::Aborted => "aborted",
            RunResult::Interrupted => "interrupted",
        }
    }
}

/// One line of the audit report. The keys are the report's interface: keep them as they are.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub resource_version: &'a str,
    pub outcome: &'static str,
    pub decision: &'static str,
    pub reason: String,
    pub rule: &'static str,
    pub finished_at: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub ttl_source: Option<&'static str>,
    pub expires_at: Option<String>,
    pub overdue_seconds: Option<i64>,
    pub result: RunResult,
}

/// Identity of a TrainJob in the report.
pub struct Identity<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    pub resource_version: &'a str,
}

impl<'a> Record<'a> {
    pub fn new(
        id: Identity<'a>,
        verdict: &Verdict,
        now: Timestamp,
        result: RunResult,
        reason: String,
    ) -> Record<'a> {
        Record {
            namespace: id.namespace,
            name: id.name,
            uid: id.uid,
            resource_version: id.resource_version,
            outcome: verdict.outcome.as_str(),
            decision: match verdict.decision {
                Decision::Delete => "delete",
                Decision::Keep(_) => "keep",
            },
            reason,
            rule: verdict.rule(),
            finished_at: verdict.finished_at.map(|time| time.to_string()),
            ttl_seconds: verdict.ttl.map(|ttl| ttl.duration.as_secs()),
            ttl_source: verdict.ttl.map(|ttl| ttl.source),
            expires_at: verdict.expires_at().map(|time| time.to_string()),
            overdue_seconds: verdict.overdue_seconds(now),
            result,
        }
    }
}

/// Totals of one run, written as the report's last line and logged as the summary.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub dry_run: bool,
    pub now: String,
    pub listed: u64,
    pub finished: u64,
    pub succeeded: u64,
    pub failed_outcome: u64,
    pub due: u64,
    pub deleted: u64,
    pub would_delete: u64,
    pub already_gone: u64,
    pub conflicts: u64,
    pub denied: u64,
    pub failed: u64,
    pub backlog: u64,
    pub aborted: u64,
    pub interrupted: u64,
    /// Kept TrainJobs by rule.
    pub kept: BTreeMap<&'static str, u64>,
    pub anomalies: u64,
    pub malformed: u64,
    pub invalid_annotations: u64,
    pub retries: u32,
    pub duration_seconds: f64,
    pub exit_code: u8,
    pub exit_reason: String,
}

impl Summary {
    /// Counts a TrainJob once its result is known.
    pub fn count(&mut self, verdict: &Verdict, result: RunResult) {
        self.listed += 1;
        if verdict.finished_at.is_some()
            || matches!(verdict.outcome, Outcome::Succeeded | Outcome::Failed)
        {
            self.finished += 1;
            match verdict.outcome {
                Outcome::Succeeded => self.succeeded += 1,
                Outcome::Failed => self.failed_outcome += 1,
                _ => {}
            }
        }
        if verdict.is_anomaly() {
            self.anomalies += 1;
        }
        if verdict.rule() == "malformed" {
            self.malformed += 1;
        }
        if verdict.rule() == "invalid-annotation" || verdict.ignored_annotation.is_some() {
            self.invalid_annotations += 1;
        }
        match result {
            RunResult::Deleted => self.deleted += 1,
            RunResult::WouldDelete => self.would_delete += 1,
            RunResult::AlreadyGone => self.already_gone += 1,
            RunResult::Conflict => self.conflicts += 1,
            RunResult::Denied => self.denied += 1,
            RunResult::Failed => self.failed += 1,
            RunResult::Kept => *self.kept.entry(verdict.rule()).or_default() += 1,
            RunResult::Backlog => self.backlog += 1,
            RunResult::Aborted => self.aborted += 1,
            RunResult::Interrupted => self.interrupted += 1,
        }
    }
}

/// Where the JSON-lines report goes.
pub enum ReportSink {
    None,
    Stdout(std::io::BufWriter<std::io::Stdout>),
    File(std::io::BufWriter<std::fs::File>),
}

impl ReportSink {
    /// Opens the report destination: `-` is standard output, anything else a file path that is
    /// created or truncated.
    pub fn open(destination: Option<&str>) -> std::io::Result<ReportSink> {
        Ok(match destination {
            None => ReportSink::None,
            Some("-") => ReportSink::Stdout(std::io::BufWriter::new(std::io::stdout())),
            Some(path) => ReportSink::File(std::io::BufWriter::new(std::fs::File::create(path)?)),
        })
    }

    fn writer(&mut self) -> Option<&mut dyn Write> {
        match self {
            ReportSink::None => None,
            ReportSink::Stdout(out) => Some(out),
            ReportSink::File(out) => Some(out),
        }
    }

    /// Writes one JSON line.
    pub fn write<T: Serialize>(&mut self, line: &T) -> std::io::Result<()> {
        if let Some(out) = self.writer() {
            serde_json::to_writer(&mut *out, line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    pub fn finish(&mut self) -> std::io::Result<()> {
        match self.writer() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// One row of the terminal table.
pub struct TableRow {
    pub namespace: String,
    pub name: String,
    pub result: RunResult,
    pub rule: &'static str,
    pub reason: String,
}

/// Writes the table for terminals: one block per namespace, then the totals.
pub fn write_table(
    out: &mut dyn Write,
    mut rows: Vec<TableRow>,
    summary: &Summary,
) -> std::io::Result<()> {
    rows.sort_by(|a, b| (&a.namespace, a.result, &a.name).cmp(&(&b.namespace, b.result, &b.name)));
    let name_width = rows
        .iter()
        .map(|row| row.name.len())
        .max()
        .unwrap_or(4)
        .clamp(4, 50);
    let mut current: Option<&str> = None;
    for row in &rows {
        if current != Some(row.namespace.as_str()) {
            if current.is_some() {
                writeln!(out)?;
            }
            writeln!(out, "NAMESPACE {}", row.namespace)?;
            writeln!(
                out,
                "  {:<name_width$}  {:<12}  {:<19}  REASON",
                "NAME", "RESULT", "RULE"
            )?;
            current = Some(row.namespace.as_str());
        }
        writeln!(
            out,
            "  {:<name_width$}  {:<12}  {:<19}  {}",
            row.name,
            row.result.as_str(),
            row.rule,
            row.reason
        )?;
    }
    if !rows.is_empty() {
        writeln!(out)?;
    }
    let deleted = if summary.dry_run {
        summary.would_delete
    } else {
        summary.deleted
    };
    let verb = if summary.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let kept: u64 = summary.kept.values().sum();
    writeln!(
        out,
        "TOTAL listed {}, {verb} {deleted}, kept {kept}, already gone {}, conflicts {}, denied {}, \
         failed {}, backlog {}, aborted {}, interrupted {}, anomalies {}",
        summary.listed,
        summary.already_gone,
        summary.conflicts,
        summary.denied,
        summary.failed,
        summary.backlog,
        summary.aborted,
        summary.interrupted,
        summary.anomalies
    )
}
