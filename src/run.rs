//! One run, from the configuration to the exit code.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::api::{Answer, Api, Page, RequestError};
use crate::cli::Cli;
use crate::cluster::{self, Target};
use crate::config::{self, ConfigError, Merged, Settings};
use crate::constants::*;
use crate::decide::{self, Decision, KeepReason, Verdict};
use crate::exit::Exit;
use crate::report::{Identity, Record, ReportSink, RunResult, Summary, TableRow};
use crate::trainjob::{Malformed, TrainJob};

/// A run-ending error: its message and exit code.
#[derive(Debug)]
pub struct Fatal {
    pub exit: Exit,
    pub message: String,
}

impl Fatal {
    pub fn new(exit: Exit, message: impl Into<String>) -> Fatal {
        Fatal {
            exit,
            message: message.into(),
        }
    }
}

fn config_fatal(err: ConfigError) -> Fatal {
    Fatal::new(Exit::InvalidConfig, err.to_string())
}

/// A TrainJob that finished and whose fate the TTL decides: kept in memory until `KEEP_LAST`
/// and the deletion limits are applied. Only this small record is kept, never the listed object.
struct Candidate {
    /// Namespace, name, uid and resourceVersion in one allocation, split at `ends`. A large run
    /// keeps one candidate per due TrainJob, so one string instead of four saves about a third
    /// of its memory.
    key: Box<str>,
    ends: [u32; 3],
    verdict: Verdict,
}

impl Candidate {
    fn new(
        namespace: &str,
        name: &str,
        uid: &str,
        resource_version: &str,
        verdict: Verdict,
    ) -> Candidate {
        let key = [namespace, name, uid, resource_version].concat();
        let first = namespace.len() as u32;
        let second = first + name.len() as u32;
        let third = second + uid.len() as u32;
        Candidate {
            key: key.into_boxed_str(),
            ends: [first, second, third],
            verdict,
        }
    }

    fn part(&self, index: usize) -> &str {
        let start = if index == 0 {
            0
        } else {
            self.ends[index - 1] as usize
        };
        let end = if index == 3 {
            self.key.len()
        } else {
            self.ends[index] as usize
        };
        &self.key[start..end]
    }

    fn namespace(&self) -> &str {
        self.part(0)
    }

    fn name(&self) -> &str {
        self.part(1)
    }

    fn uid(&self) -> &str {
        self.part(2)
    }

    fn resource_version(&self) -> &str {
        self.part(3)
    }

    fn identity(&self) -> Identity<'_> {
        Identity {
            namespace: self.namespace(),
            name: self.name(),
            uid: self.uid(),
            resource_version: self.resource_version(),
        }
    }
}

/// Everything the run writes: report lines, table rows and totals.
struct Output {
    sink: ReportSink,
    table: Option<Vec<TableRow>>,
    summary: Summary,
    now: Timestamp,
    /// The first failure to write the report. The run goes on, and its exit code becomes 10
    /// unless a stronger one applies.
    report_error: Option<std::io::Error>,
}

impl Output {
    fn record(&mut self, id: Identity<'_>, verdict: &Verdict, result: RunResult, reason: String) {
        if let Some(rows) = &mut self.table {
            rows.push(TableRow {
                namespace: id.namespace.to_owned(),
                name: id.name.to_owned(),
                result,
                rule: verdict.rule(),
                reason: reason.clone(),
            });
        }
        self.summary.count(verdict, result);
        let record = Record::new(id, verdict, self.now, result, reason);
        if let Err(err) = self.sink.write(&record) {
            self.report_failed(err);
        }
    }

    /// Stores the first report failure and logs it once, because later lines fail the same way.
    fn report_failed(&mut self, err: std::io::Error) {
        if self.report_error.is_none() {
            error!(
                error = %err,
                "failed to write the report; the run goes on and exits with code 10 unless a \
                 stronger code applies"
            );
            self.report_error = Some(err);
        }
    }
}

/// Reads the configuration from flags, the environment and the ConfigMap, then runs.
pub async fn main(cli: Cli) -> Exit {
    let started = Instant::now();
    let cancel = CancellationToken::new();
    // From here on a signal stops the run in order, also while the ConfigMap is read.
    watch_signals(cancel.clone());

    // 1. Flags and environment, checked before any API call.
    let flags = cli.layer();
    let (env, mut problems) = config::environment_layer_os(std::env::vars_os());
    let early = Merged::from_layers(&[&flags, &env]);
    let early_settings = Settings::from_raw(&early);
    let configmap_key = format!("{ENV_PREFIX}CONFIGMAP");
    let configmap = early
        .values
        .get(&configmap_key)
        .map(|(value, _)| value.trim().to_owned());
    if let Err(err) = &early_settings {
        // With a ConfigMap named, a problem between two settings may be resolved by a value
        // from the ConfigMap, so only those wait until it is read. A value that does not parse
        // stops the run here, before any API call.
        let deferred = |problem: &config::Problem| configmap.is_some() && problem.across_settings;
        problems.extend(err.0.iter().filter(|problem| !deferred(problem)).cloned());
    }
    let early_settings = early_settings
        .ok()
        .or_else(|| settings_without_ttl(&flags, &env));
    // When the settings do not parse, the log format is still taken from its own value, so that
    // the error reaches a JSON log pipeline as JSON.
    let log_format = match &early_settings {
        Some(settings) => settings.log_format,
        None => match early.values.get(&format!("{ENV_PREFIX}LOG_FORMAT")) {
            Some((value, _)) if value.trim() == "json" => config::LogFormat::Json,
            _ => config::LogFormat::Text,
        },
    };
    // A value that could not be read at all (not UTF-8) is already reported. It needs no second
    // problem saying that the same setting is missing.
    let reported: Vec<String> = problems
        .iter()
        .filter(|problem| problem.value.is_some())
        .map(|problem| problem.key.clone())
        .collect();
    problems.retain(|problem| problem.value.is_some() || !reported.contains(&problem.key));
    if !problems.is_empty() {
        return fail_before_logging(log_format, &config_fatal(ConfigError(problems)));
    }

    // 2. Connection to the cluster.
    let (kube_config, target) =
        match cluster::load(cli.kubeconfig.as_ref(), cli.context.as_deref()).await {
            Ok(loaded) => loaded,
            Err(err) => {
                return fail_before_logging(log_format, &Fatal::new(err.exit(), err.to_string()));
            }
        };
    let early_limits = early_settings
        .as_ref()
        .map(|s| s.limits.clone())
        .unwrap_or_default();
    // The deadline of the flags and the environment already bounds the ConfigMap read.
    let early_deadline = watch_deadline(cancel.clone(), started, early_limits.deadline);
    let client = match cluster::client(kube_config.clone(), &early_limits) {
        Ok(client) => client,
        Err(err) => {
            return fail_before_logging(
                log_format,
                &Fatal::new(Exit::ApiUnavailable, err.to_string()),
            );
        }
    };

    // 3. The ConfigMap, when one is named, completes the configuration.
    let settings = match configmap {
        None => Settings::from_raw(&early).map_err(config_fatal),
        Some(name) => {
            let api = Api::new(client.clone(), early_limits.clone(), cancel.clone());
            read_configmap(&api, &name, &flags, &env).await
        }
    };
    let settings = match settings {
        Ok(settings) => settings,
        Err(fatal) => return fail_before_logging(log_format, &fatal),
    };
    crate::logging::init(settings.log_format, settings.log_level);
    let client = if settings.limits != early_limits {
        match cluster::client(kube_config, &settings.limits) {
            Ok(client) => client,
            Err(err) => return fail(&Fatal::new(Exit::ApiUnavailable, err.to_string())),
        }
    } else {
        client
    };
    let now_override = match parse_now_flag(cli.now.as_deref(), settings.dry_run) {
        Ok(now) => now,
        Err(fatal) => return fail(&fatal),
    };

    // 4. The deadline, like a signal, stops new work; the summary is still written.
    if settings.limits.deadline != early_limits.deadline {
        early_deadline.abort();
        watch_deadline(cancel.clone(), started, settings.limits.deadline);
    }
    let api = Api::new(client, settings.limits.clone(), cancel.clone());
    log_start(&settings, &target);

    let report_to_stdout = settings.report.as_deref() == Some("-");
    if cli.table && report_to_stdout {
        return fail(&Fatal::new(
            Exit::InvalidConfig,
            "--table and TRAINJOB_GC_REPORT=- would both write to standard output; write the \
             report to a file, such as TRAINJOB_GC_REPORT=/tmp/report.jsonl, or drop --table"
                .to_owned(),
        ));
    }
    let table = cli.table || (std::io::stdout().is_terminal() && !report_to_stdout);
    let sink = match ReportSink::open(settings.report.as_deref()) {
        Ok(sink) => sink,
        Err(err) => {
            let message = format!(
                "failed to open the report {:?} (TRAINJOB_GC_REPORT): {err}; give a writable path or -",
                settings.report.as_deref().unwrap_or_default()
            );
            return fail(&Fatal::new(Exit::InvalidConfig, message));
        }
    };
    let mut output = Output {
        sink,
        table: table.then(Vec::new),
        summary: Summary {
            dry_run: settings.dry_run,
            ..Summary::default()
        },
        now: Timestamp::now(),
        report_error: None,
    };

    let mut exit = match execute(&api, &settings, now_override, &mut output, &cancel).await {
        Ok(exit) => exit,
        Err(fatal) => {
            error!(exit_code = fatal.exit.code(), "{}", fatal.message);
            output.summary.exit_reason = fatal.message.clone();
            fatal.exit
        }
    };

    // 5. Summary, report and exit code. The lines buffered so far are flushed first, so that a
    // failure to write them is in the summary's exit code.
    if let Err(err) = output.sink.finish() {
        output.report_failed(err);
    }
    if output.report_error.is_some() {
        exit = exit.or_worse(Exit::ReportFailed);
    }
    output.summary.retries = api.retries();
    output.summary.duration_seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    output.summary.exit_code = exit.code();
    if output.summary.exit_reason.is_empty() {
        output.summary.exit_reason = exit_reason(exit).to_owned();
    }
    log_summary(&output.summary);
    let written = output
        .sink
        .write(&serde_json::json!({ "summary": &output.summary }))
        .and_then(|()| output.sink.finish());
    if let Err(err) = written
        && output.report_error.is_none()
    {
        // The summary above still names the earlier code, but the process exits with this one.
        error!(error = %err, "failed to write the report's end; the exit code becomes 10 unless a stronger one applies");
        exit = exit.or_worse(Exit::ReportFailed);
    }
    if let Some(rows) = output.table.take() {
        let mut stdout = std::io::stdout().lock();
        if let Err(err) = crate::report::write_table(&mut stdout, rows, &output.summary) {
            warn!(error = %err, "failed to write the table");
        }
    }
    exit
}

/// Settings of the flags and the environment when only the TTL is missing from them, which is
/// usual when the ConfigMap sets it. The placeholder TTL decides nothing: these settings give
/// only the log format and the request limits of the ConfigMap read.
fn settings_without_ttl(flags: &config::Layer, env: &config::Layer) -> Option<Settings> {
    let placeholder = config::Layer {
        source: config::Source::Default,
        values: [(format!("{ENV_PREFIX}TTL"), "0s".to_owned())].into(),
    };
    Settings::from_raw(&Merged::from_layers(&[flags, env, &placeholder])).ok()
}

fn exit_reason(exit: Exit) -> &'static str {
    match exit {
        Exit::Success => "completed",
        Exit::DeletionsFailed => "some deletions failed or were denied",
        Exit::Interrupted => "stopped by the deadline (TRAINJOB_GC_DEADLINE) or a signal",
        Exit::Backlog => {
            "more TrainJobs were due than TRAINJOB_GC_MAX_DELETIONS; the rest wait for the next run"
        }
        Exit::BreakerTripped => {
            "more TrainJobs were due than TRAINJOB_GC_ABORT_ABOVE; none was deleted"
        }
        Exit::ReportFailed => "the report (TRAINJOB_GC_REPORT) could not be written completely",
        _ => "failed",
    }
}

/// Prints a run-ending error before the log format is known for sure.
fn fail_before_logging(format: config::LogFormat, fatal: &Fatal) -> Exit {
    match format {
        config::LogFormat::Json => {
            let line = serde_json::json!({
                "timestamp": Timestamp::now().to_string(),
                "level": "ERROR",
                "message": fatal.message,
                "exit_code": fatal.exit.code(),
            });
            eprintln!("{line}");
        }
        config::LogFormat::Text => eprintln!("error: {}", fatal.message),
    }
    fatal.exit
}

fn fail(fatal: &Fatal) -> Exit {
    error!(exit_code = fatal.exit.code(), "{}", fatal.message);
    fatal.exit
}

fn parse_now_flag(now: Option<&str>, dry_run: bool) -> Result<Option<Timestamp>, Fatal> {
    let Some(text) = now else { return Ok(None) };
    if !dry_run {
        return Err(Fatal::new(
            Exit::InvalidConfig,
            format!(
                "--now {text:?} is allowed in dry-run only: a real run decides with the API server's clock"
            ),
        ));
    }
    // The same strict RFC 3339 reading as the times in a TrainJob's status.
    decide::parse_time(text).map(Some).map_err(|problem| {
        Fatal::new(
            Exit::InvalidConfig,
            format!("--now {text:?} {problem}; give a time such as 2026-12-07T09:00:00Z"),
        )
    })
}

async fn read_configmap(
    api: &Api,
    name: &str,
    flags: &config::Layer,
    env: &config::Layer,
) -> Result<Settings, Fatal> {
    let (namespace, configmap) = name
        .split_once('/')
        .expect("CONFIGMAP was checked to be namespace/name");
    let answer = api
        .get_configmap(namespace, configmap)
        .await
        .map_err(|err| match err {
            RequestError::Cancelled { .. } | RequestError::Abandoned { .. } => Fatal::new(
                Exit::Interrupted,
                format!(
                    "the deadline (TRAINJOB_GC_DEADLINE) or a signal stopped the run while it read \
                     the policy ConfigMap {name}; nothing was deleted"
                ),
            ),
            // No HTTP status came back within the retry limits: the API server is the problem,
            // not the ConfigMap.
            other => Fatal::new(
                Exit::ApiUnavailable,
                format!("failed to read the policy ConfigMap {name}: {other}"),
            ),
        })?;
    match answer.status.as_u16() {
        200 => {}
        404 => {
            return Err(Fatal::new(
                Exit::ConfigMapUnavailable,
                format!(
                    "the policy ConfigMap {name} (TRAINJOB_GC_CONFIGMAP) was not found; create it, or \
                     unset TRAINJOB_GC_CONFIGMAP to use the environment alone"
                ),
            ));
        }
        403 => {
            return Err(Fatal::new(
                Exit::ConfigMapUnavailable,
                format!(
                    "may not read the policy ConfigMap {name} (TRAINJOB_GC_CONFIGMAP): {}; grant get on \
                     configmaps named {configmap} in namespace {namespace}",
                    answer.message()
                ),
            ));
        }
        401 => {
            return Err(Fatal::new(
                Exit::ApiUnavailable,
                format!(
                    "the API server rejected the credentials: {}; {RENEW_CREDENTIALS}",
                    answer.message()
                ),
            ));
        }
        _ => {
            return Err(Fatal::new(
                Exit::ConfigMapUnavailable,
                format!(
                    "failed to read the policy ConfigMap {name}: HTTP {}: {}",
                    answer.status,
                    answer.message()
                ),
            ));
        }
    }
    let data = crate::api::configmap_data(&answer.body).map_err(|err| {
        Fatal::new(
            Exit::ConfigMapUnavailable,
            format!("the ConfigMap {name} is not readable: {err}"),
        )
    })?;
    let (layer, mut problems) = config::configmap_layer(name, data);
    // Unknown or forbidden keys and bad values are reported together, so that one fix-and-retry
    // round is enough.
    match Settings::from_raw(&Merged::from_layers(&[flags, env, &layer])) {
        Ok(settings) if problems.is_empty() => Ok(settings),
        Ok(_) => Err(config_fatal(ConfigError(problems))),
        Err(ConfigError(more)) => {
            for problem in more {
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
            Err(config_fatal(ConfigError(problems)))
        }
    }
}

/// Cancels the run once `deadline` has passed since it started.
fn watch_deadline(
    cancel: CancellationToken,
    started: Instant,
    deadline: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep_until(started + deadline).await;
        if !cancel.is_cancelled() {
            warn!(deadline = %humantime::format_duration(deadline), "deadline reached (TRAINJOB_GC_DEADLINE); starting no new deletion");
            cancel.cancel();
            exit_if_stuck();
        }
    })
}

/// Time the run may still take after the deadline or a signal before the process exits on its
/// own: requests in flight get `IN_FLIGHT_GRACE`, and writing the summary needs a moment more.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Ends the process with exit code 7 when the run has not stopped `STOP_GRACE` after the deadline
/// or a signal, for example while blocked on a report path that is a FIFO without a reader. A thread
/// of its own does this, because a blocked write may hold the runtime's threads.
fn exit_if_stuck() {
    static ARMED: std::sync::Once = std::sync::Once::new();
    ARMED.call_once(|| {
        std::thread::spawn(|| {
            std::thread::sleep(STOP_GRACE);
            error!(
                exit_code = Exit::Interrupted.code(),
                "the run did not stop within {} after the deadline or a signal, so the process \
                 exits now; the report may be incomplete",
                humantime::format_duration(STOP_GRACE)
            );
            std::process::exit(i32::from(Exit::Interrupted.code()));
        });
    });
}

/// Cancels the run on the first SIGTERM or SIGINT. The handlers are installed before this
/// returns, not when a task first runs, so that no signal after it kills the process outright.
fn watch_signals(cancel: CancellationToken) {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    // A signal whose handler cannot be installed keeps its default action: it ends the process.
    let mut term = signal(SignalKind::terminate()).ok();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    async fn received(signal: &mut Option<Signal>) {
        match signal {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    tokio::spawn(async move {
        let name = tokio::select! {
            () = received(&mut term) => "SIGTERM",
            () = received(&mut interrupt) => "SIGINT",
        };
        warn!(signal = name, "signal received; starting no new deletion");
        cancel.cancel();
        exit_if_stuck();

        // A second signal means the operator does not want to wait for the orderly stop.
        let name = tokio::select! {
            () = received(&mut term) => "SIGTERM",
            () = received(&mut interrupt) => "SIGINT",
        };
        error!(
            signal = name,
            exit_code = Exit::Interrupted.code(),
            "second signal received, so the process exits now; requests in flight may still be \
             applied, and the report may be incomplete"
        );
        std::process::exit(i32::from(Exit::Interrupted.code()));
    });
}

fn log_start(settings: &Settings, target: &Target) {
    let policy = &settings.policy;
    let scope = if settings.scope.namespaces.is_empty() {
        "all namespaces".to_owned()
    } else {
        format!("namespaces {}", settings.scope.namespaces.join(","))
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        server = %target.url,
        context = target.context.as_deref().unwrap_or("(in-cluster)"),
        identity = %target.identity,
        policy = match policy.kind { config::PolicyKind::Ttl => "ttl", config::PolicyKind::DeleteOnCompletion => "delete_on_completion" },
        ttl_succeeded = %crate::duration::describe(policy.ttl_succeeded.duration),
        ttl_failed = %crate::duration::describe(policy.ttl_failed.duration),
        keep_last = policy.keep_last,
        scope = %scope,
        exclude_namespaces = %settings.scope.exclude_namespaces.join(","),
        label_selector = settings.scope.label_selector.as_deref().unwrap_or(""),
        dry_run = settings.dry_run,
        "trainjob-gc starting{}",
        if settings.dry_run { " (dry-run: nothing will be deleted)" } else { "" }
    );
    for (key, value, source) in &settings.effective {
        info!(setting = %key, value = %value, source = %source, "effective setting");
    }
}

fn log_summary(summary: &Summary) {
    let kept: u64 = summary.kept.values().sum();
    let kept_by_rule = summary
        .kept
        .iter()
        .map(|(rule, n)| format!("{rule}={n}"))
        .collect::<Vec<_>>()
        .join(",");
    info!(
        listed = summary.listed,
        finished = summary.finished,
        due = summary.due,
        deleted = summary.deleted,
        would_delete = summary.would_delete,
        already_gone = summary.already_gone,
        conflicts = summary.conflicts,
        kept,
        kept_by_rule = %kept_by_rule,
        anomalies = summary.anomalies,
        malformed = summary.malformed,
        invalid_annotations = summary.invalid_annotations,
        denied = summary.denied,
        failed = summary.failed,
        backlog = summary.backlog,
        aborted = summary.aborted,
        interrupted = summary.interrupted,
        retries = summary.retries,
        duration_seconds = summary.duration_seconds,
        exit_code = summary.exit_code,
        "summary: {}",
        summary.exit_reason
    );
}

/// Checks the scope, lists and decides, then deletes what is due.
async fn execute(
    api: &Api,
    settings: &Settings,
    now_override: Option<Timestamp>,
    output: &mut Output,
    cancel: &CancellationToken,
) -> Result<Exit, Fatal> {
    // Namespaces named in the scope should exist: a typo would otherwise clean nothing, silently.
    let namespaces: Vec<&str> = settings
        .scope
        .namespaces
        .iter()
        .map(String::as_str)
        .filter(|namespace| {
            !settings
                .scope
                .exclude_namespaces
                .iter()
                .any(|excluded| excluded == namespace)
        })
        .collect();
    for namespace in &namespaces {
        check_namespace_exists(api, namespace).await;
    }
    crate::preflight::check(api, settings, &namespaces).await?;

    // List and decide. Final keeps are reported at once; candidates wait for KEEP_LAST.
    let mut lister = Lister {
        api,
        settings,
        now_override,
        now: None,
        seen: HashSet::new(),
        hasher: RandomState::new(),
    };
    let mut candidates: Vec<Candidate> = Vec::new();
    let scopes: Vec<Option<&str>> = if settings.scope.namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().copied().map(Some).collect()
    };
    for scope in scopes {
        if cancel.is_cancelled() {
            break;
        }
        match lister.list_scope(scope, output, &mut candidates).await {
            Ok(()) => {}
            Err(ListFailure::Cancelled) => break,
            Err(ListFailure::Fatal(fatal)) => return Err(fatal),
        }
    }
    let now = output.now;
    if cancel.is_cancelled() {
        // An incomplete listing could rank KEEP_LAST wrongly, so nothing is deleted.
        for candidate in &candidates {
            let result = if candidate.verdict.is_delete() {
                RunResult::Interrupted
            } else {
                RunResult::Kept
            };
            let reason = candidate.verdict.reason(now);
            output.record(candidate.identity(), &candidate.verdict, result, reason);
        }
        return Ok(Exit::Interrupted);
    }

    apply_keep_last(&mut candidates, settings.policy.keep_last);
    let (due, kept): (Vec<Candidate>, Vec<Candidate>) =
        candidates.into_iter().partition(|c| c.verdict.is_delete());
    for candidate in &kept {
        log_kept(candidate.identity(), &candidate.verdict, now);
        output.record(
            candidate.identity(),
            &candidate.verdict,
            RunResult::Kept,
            candidate.verdict.reason(now),
        );
    }
    drop(kept);
    output.summary.due = due.len() as u64;

    // The breaker and the batch cap are both applied before the first deletion.
    if let Some(limit) = settings.limits.abort_above
        && due.len() as u64 > limit
    {
        error!(
            due = due.len(),
            abort_above = limit,
            "{} TrainJobs are due, more than TRAINJOB_GC_ABORT_ABOVE={limit}; deleting none. Check the TTLs \
             (m is minutes, M is months), then raise TRAINJOB_GC_ABORT_ABOVE if this is expected",
            due.len()
        );
        for candidate in &due {
            output.record(
                candidate.identity(),
                &candidate.verdict,
                RunResult::Aborted,
                candidate.verdict.reason(now),
            );
        }
        return Ok(Exit::BreakerTripped);
    }
    let mut due = due;
    // Longest overdue first, so that a cap or a deadline leaves the youngest for the next run.
    due.sort_by(|a, b| {
        let overdue = |c: &Candidate| c.verdict.overdue_seconds(now).unwrap_or(0);
        overdue(b)
            .cmp(&overdue(a))
            .then_with(|| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())))
    });
    let mut backlog = Vec::new();
    if let Some(cap) = settings.limits.max_deletions
        && due.len() as u64 > cap
    {
        backlog = due.split_off(cap as usize);
        warn!(
            due = due.len() + backlog.len(),
            max_deletions = cap,
            backlog = backlog.len(),
            "more TrainJobs are due than TRAINJOB_GC_MAX_DELETIONS; the least overdue wait for the next run"
        );
    }
    for candidate in &backlog {
        output.record(
            candidate.identity(),
            &candidate.verdict,
            RunResult::Backlog,
            candidate.verdict.reason(now),
        );
    }

    // Delete, or say what would be deleted.
    let mut exit = if backlog.is_empty() {
        Exit::Success
    } else {
        Exit::Backlog
    };
    if settings.dry_run {
        for candidate in &due {
            log_deletion(candidate, now, "would delete", None);
            output.record(
                candidate.identity(),
                &candidate.verdict,
                RunResult::WouldDelete,
                candidate.verdict.reason(now),
            );
        }
        return Ok(exit);
    }
    let output = Arc::new(Mutex::new(output));
    futures::stream::iter(due)
        .map(|candidate| {
            let output = Arc::clone(&output);
            async move {
                let (result, verdict, reason) = if cancel.is_cancelled() {
                    (
                        RunResult::Interrupted,
                        candidate.verdict.clone(),
                        candidate.verdict.reason(now),
                    )
                } else if api.credentials_rejected() {
                    // Every further request would be refused the same way.
                    (
                        RunResult::Failed,
                        candidate.verdict.clone(),
                        "not attempted: the API server rejected the credentials earlier in this run"
                            .to_owned(),
                    )
                } else {
                    delete_one(api, &candidate, settings, now).await
                };
                let mut output = output.lock().await;
                output.record(candidate.identity(), &verdict, result, reason);
            }
        })
        .buffer_unordered(settings.limits.concurrency)
        .collect::<()>()
        .await;
    let output = Arc::try_unwrap(output)
        .ok()
        .expect("no deletion is running")
        .into_inner();

    if api.credentials_rejected() {
        return Err(Fatal::new(
            Exit::ApiUnavailable,
            format!(
                "the API server rejected the credentials (HTTP 401) during the deletions, so the \
                 rest were not attempted; {RENEW_CREDENTIALS}"
            ),
        ));
    }
    let summary = &output.summary;
    for (condition, outcome) in [
        (summary.interrupted > 0, Exit::Interrupted),
        (summary.failed + summary.denied > 0, Exit::DeletionsFailed),
    ] {
        if condition {
            exit = exit.or_worse(outcome);
        }
    }
    Ok(exit)
}

async fn check_namespace_exists(api: &Api, namespace: &str) {
    match api.get_namespace(namespace).await {
        Ok(answer) if answer.status.as_u16() == 404 => warn!(
            namespace,
            "namespace {namespace} in TRAINJOB_GC_NAMESPACES does not exist; nothing is cleaned there"
        ),
        Ok(answer) if answer.status.is_success() => {}
        Ok(answer) => debug!(
            namespace,
            status = answer.status.as_u16(),
            "could not check that namespace {namespace} exists: {}",
            answer.message()
        ),
        Err(err) => debug!(namespace, error = %err, "could not check that the namespace exists"),
    }
}

enum ListFailure {
    Cancelled,
    Fatal(Fatal),
}

/// Lists TrainJobs page by page and decides about each item as it arrives.
struct Lister<'a> {
    api: &'a Api,
    settings: &'a Settings,
    now_override: Option<Timestamp>,
    now: Option<Timestamp>,
    /// Hashes of the items already decided ([`SightKey`]), so that a listing restarted after an
    /// expired `continue` token repeats no work. A collision would skip a TrainJob, which only
    /// keeps it.
    seen: HashSet<u64>,
    hasher: RandomState,
}

/// Restarts of one listing after an expired `continue` token before the run gives up.
const MAX_LIST_RESTARTS: u32 = 3;

impl Lister<'_> {
    async fn list_scope(
        &mut self,
        namespace: Option<&str>,
        output: &mut Output,
        candidates: &mut Vec<Candidate>,
    ) -> Result<(), ListFailure> {
        let scope = &self.settings.scope;
        let field_selector =
            (namespace.is_none() && !scope.exclude_namespaces.is_empty()).then(|| {
                scope
                    .exclude_namespaces
                    .iter()
                    .map(|ns| format!("metadata.namespace!={ns}"))
                    .collect::<Vec<_>>()
                    .join(",")
            });
        let mut continue_token: Option<String> = None;
        let mut restarts = 0;
        loop {
            let answer = self
                .api
                .list_page(
                    namespace,
                    scope.label_selector.as_deref(),
                    field_selector.as_deref(),
                    continue_token.as_deref(),
                )
                .await
                .map_err(|err| match err {
                    RequestError::Cancelled { .. } | RequestError::Abandoned { .. } => {
                        ListFailure::Cancelled
                    }
                    other => ListFailure::Fatal(Fatal::new(
                        Exit::ApiUnavailable,
                        format!("failed to list TrainJobs: {other}"),
                    )),
                })?;
            if answer.status.as_u16() == 410
                && continue_token.is_some()
                && restarts < MAX_LIST_RESTARTS
            {
                restarts += 1;
                warn!(
                    restarts,
                    "the list's continue token expired (410 Gone); listing again from the start, skipping TrainJobs already seen"
                );
                continue_token = None;
                continue;
            }
            check_list_answer(&answer, self.settings)?;
            if self.now.is_none() {
                self.now = Some(self.decide_now(output));
            }
            let page: Page<'_> = serde_json::from_slice(&answer.body).map_err(|err| {
                ListFailure::Fatal(Fatal::new(
                    Exit::ApiUnavailable,
                    format!("the API server's list of TrainJobs is not a readable list: {err}"),
                ))
            })?;
            for item in page.items() {
                self.take(item, namespace, output, candidates);
            }
            match page
                .metadata
                .continue_token
                .filter(|token| !token.is_empty())
            {
                Some(token) => continue_token = Some(token),
                None => return Ok(()),
            }
        }
    }

    /// Picks the time every decision of the run uses: `--now`, else the API server's clock,
    /// else the local clock.
    fn decide_now(&self, output: &mut Output) -> Timestamp {
        let local = Timestamp::now();
        let server = self.api.server_now();
        if let Some(server) = server {
            let skew = local.duration_since(server).unsigned_abs();
            if skew > self.settings.limits.clock_skew_warn {
                warn!(
                    local = %local,
                    server = %server,
                    skew_seconds = skew.as_secs(),
                    "the local clock differs from the API server's; decisions use the API server's clock"
                );
            }
        } else {
            warn!("the API server sent no Date header; decisions use the local clock");
        }
        let now = self.now_override.or(server).unwrap_or(local);
        if let Some(overridden) = self.now_override {
            info!(now = %overridden, "deciding as of --now (dry-run)");
        }
        output.now = now;
        output.summary.now = now.to_string();
        now
    }

    /// Decides about one list item. `listed` is the namespace the list was of, if any.
    fn take(
        &mut self,
        item: &serde_json::value::RawValue,
        listed: Option<&str>,
        output: &mut Output,
        candidates: &mut Vec<Candidate>,
    ) {
        let now = output.now;
        let job = match TrainJob::from_json(item).and_then(|job| check_namespace(job, listed)) {
            Ok(job) => job,
            Err(malformed) => {
                // Without a uid the item's text identifies it, as long as it does not change.
                let key = if malformed.uid.is_empty() {
                    SightKey::Text(item.get())
                } else {
                    SightKey::Uid(&malformed.uid)
                };
                if !self.first_sight(key) {
                    return;
                }
                let verdict = Verdict::malformed(malformed.problem.clone());
                warn!(
                    namespace = %malformed.namespace,
                    name = %malformed.name,
                    uid = %malformed.uid,
                    problem = %malformed.problem,
                    "kept a TrainJob that could not be read"
                );
                let id = Identity {
                    namespace: &malformed.namespace,
                    name: &malformed.name,
                    uid: &malformed.uid,
                    resource_version: &malformed.resource_version,
                };
                output.record(id, &verdict, RunResult::Kept, verdict.reason(now));
                return;
            }
        };

        if !self.first_sight(SightKey::Uid(&job.uid)) {
            return;
        }
        if self
            .settings
            .scope
            .exclude_namespaces
            .contains(&job.namespace)
        {
            return;
        }

        let verdict = decide::decide(&job, &self.settings.policy, now);
        let id = Identity {
            namespace: &job.namespace,
            name: &job.name,
            uid: &job.uid,
            resource_version: &job.resource_version,
        };
        if verdict.both_terminal_conditions {
            warn!(namespace = %job.namespace, name = %job.name, uid = %job.uid, "both Complete and Failed are True; using the later lastTransitionTime");
        }
        if let Some(annotation) = &verdict.ignored_annotation {
            warn!(namespace = %job.namespace, name = %job.name, uid = %job.uid, annotation = %annotation, "ignored an invalid annotation (TRAINJOB_GC_INVALID_ANNOTATION=policy)");
        }
        if decide::counts_for_keep_last(&verdict) {
            candidates.push(Candidate::new(
                &job.namespace,
                &job.name,
                &job.uid,
                &job.resource_version,
                verdict,
            ));
            return;
        }
        log_kept(id, &verdict, now);
        let reason = verdict.reason(now);
        let id = Identity {
            namespace: &job.namespace,
            name: &job.name,
            uid: &job.uid,
            resource_version: &job.resource_version,
        };
        output.record(id, &verdict, RunResult::Kept, reason);
    }

    fn first_sight(&mut self, key: SightKey<'_>) -> bool {
        let mut hasher = self.hasher.build_hasher();
        match key {
            SightKey::Uid(uid) => {
                hasher.write_u8(0);
                hasher.write(uid.as_bytes());
            }
            SightKey::Text(text) => {
                hasher.write_u8(1);
                hasher.write(text.as_bytes());
            }
        }
        self.seen.insert(hasher.finish())
    }
}

/// The identity of a list item across a restarted listing.
enum SightKey<'a> {
    Uid(&'a str),
    /// The raw JSON of an item without a uid.
    Text(&'a str),
}

/// Rejects an item whose namespace is missing or is not the one listed. Deleting it would send
/// `DELETE .../namespaces//trainjobs/NAME` or aim at another namespace than the run's scope.
fn check_namespace(job: TrainJob, listed: Option<&str>) -> Result<TrainJob, Malformed> {
    let problem = match listed {
        _ if job.namespace.is_empty() => {
            "metadata.namespace is missing, but a TrainJob is namespaced".to_owned()
        }
        Some(listed) if listed != job.namespace => format!(
            "metadata.namespace is {:?}, but the list was of namespace {listed}",
            job.namespace
        ),
        _ => return Ok(job),
    };
    let namespace = if job.namespace.is_empty() {
        listed.unwrap_or_default().to_owned()
    } else {
        job.namespace
    };
    Err(Malformed {
        namespace,
        name: job.name,
        uid: job.uid,
        resource_version: job.resource_version,
        problem,
    })
}

fn check_list_answer(answer: &Answer, settings: &Settings) -> Result<(), ListFailure> {
    let status = answer.status.as_u16();
    let fatal = |exit, message: String| Err(ListFailure::Fatal(Fatal::new(exit, message)));
    match status {
        200 => Ok(()),
        404 => fatal(
            Exit::CrdMissing,
            format!(
                "the TrainJob CRD {TRAINJOB_CRD} (version {TRAINJOB_VERSION}) is not installed on this cluster \
                 ({}); install Kubeflow Trainer v2, or point the kubeconfig at the right cluster",
                answer.message()
            ),
        ),
        400 if settings.scope.label_selector.is_some() => fatal(
            Exit::InvalidConfig,
            format!(
                "the API server rejected TRAINJOB_GC_LABEL_SELECTOR={:?}: {}; use the kubectl selector syntax, \
                 such as team=research,tier!=prod",
                settings.scope.label_selector.as_deref().unwrap_or_default(),
                answer.message()
            ),
        ),
        401 => fatal(
            Exit::ApiUnavailable,
            format!(
                "the API server rejected the credentials: {}; {RENEW_CREDENTIALS}",
                answer.message()
            ),
        ),
        403 => fatal(
            Exit::PermissionMissing,
            format!(
                "may not list TrainJobs: {}; grant list on {TRAINJOB_PLURAL}.{TRAINJOB_GROUP}",
                answer.message()
            ),
        ),
        _ => fatal(
            Exit::ApiUnavailable,
            format!(
                "failed to list TrainJobs: HTTP {}: {}",
                answer.status,
                answer.message()
            ),
        ),
    }
}

/// Keeps the `keep_last` most recently finished candidates of each namespace. Ties on the
/// finish time go by name, so that a dry-run and the real run that follows pick the same ones.
fn apply_keep_last(candidates: &mut [Candidate], keep_last: u32) {
    if keep_last == 0 {
        return;
    }
    candidates.sort_by(|a, b| {
        (
            a.namespace(),
            std::cmp::Reverse(a.verdict.finished_at),
            a.name(),
        )
            .cmp(&(
                b.namespace(),
                std::cmp::Reverse(b.verdict.finished_at),
                b.name(),
            ))
    });
    let mut rank = 0;
    for index in 0..candidates.len() {
        let same_namespace =
            index > 0 && candidates[index - 1].namespace() == candidates[index].namespace();
        rank = if same_namespace { rank + 1 } else { 1 };
        let candidate = &mut candidates[index];
        if rank <= keep_last && candidate.verdict.is_delete() {
            candidate.verdict.decision = Decision::Keep(KeepReason::KeepLast { rank, keep_last });
        }
    }
}

fn log_kept(id: Identity<'_>, verdict: &Verdict, now: Timestamp) {
    let reason = verdict.reason(now);
    if verdict.is_anomaly() {
        warn!(namespace = id.namespace, name = id.name, uid = id.uid, rule = verdict.rule(), reason = %reason, "kept");
    } else {
        debug!(namespace = id.namespace, name = id.name, uid = id.uid, rule = verdict.rule(), reason = %reason, "kept");
    }
}

fn log_deletion(candidate: &Candidate, now: Timestamp, what: &str, note: Option<&str>) {
    let verdict = &candidate.verdict;
    info!(
        namespace = candidate.namespace(),
        name = candidate.name(),
        uid = candidate.uid(),
        outcome = verdict.outcome.as_str(),
        finished_at = %verdict.finished_at.map(|t| t.to_string()).unwrap_or_default(),
        overdue_seconds = verdict.overdue_seconds(now).unwrap_or(0),
        reason = %verdict.reason(now),
        note = note.unwrap_or(""),
        "{what}"
    );
}

/// Deletes one due TrainJob; on 409 reads it again and decides on the fresh object.
async fn delete_one(
    api: &Api,
    candidate: &Candidate,
    settings: &Settings,
    now: Timestamp,
) -> (RunResult, Verdict, String) {
    let policy = &settings.policy;
    let (namespace, name) = (candidate.namespace(), candidate.name());
    let answer = api
        .delete_trainjob(
            namespace,
            name,
            candidate.uid(),
            candidate.resource_version(),
        )
        .await;
    if let Err(done) = classify_delete(answer, candidate, now) {
        return *done;
    }

    // The TrainJob changed or was re-created since it was listed: decide again on what is there now.
    let fresh = match api.get_trainjob(namespace, name).await {
        Ok(answer) if answer.status.as_u16() == 404 => {
            return (
                RunResult::AlreadyGone,
                candidate.verdict.clone(),
                "deleted by someone else after it changed".to_owned(),
            );
        }
        Ok(answer) if answer.status.is_success() => answer,
        Ok(answer) => {
            let reason = format!(
                "changed since listed, and reading it again failed: HTTP {}: {}",
                answer.status,
                answer.message()
            );
            warn!(namespace, name, uid = candidate.uid(), reason = %reason, "delete failed");
            return (RunResult::Failed, candidate.verdict.clone(), reason);
        }
        Err(err) => return request_failed(candidate, err),
    };
    let raw: Box<serde_json::value::RawValue> = match serde_json::from_slice(&fresh.body) {
        Ok(raw) => raw,
        Err(err) => {
            return (
                RunResult::Failed,
                candidate.verdict.clone(),
                format!("changed since listed, and the fresh copy is not JSON: {err}"),
            );
        }
    };
    let job = match TrainJob::from_json(&raw) {
        Ok(job) => job,
        Err(malformed) => {
            let verdict = Verdict::malformed(malformed.problem);
            let reason = format!("changed since listed; kept: {}", verdict.reason(now));
            return (RunResult::Conflict, verdict, reason);
        }
    };
    if job.uid != candidate.uid() {
        let mut verdict = candidate.verdict.clone();
        verdict.decision = Decision::Keep(KeepReason::Recreated {
            new_uid: job.uid.clone(),
        });
        let reason = verdict.reason(now);
        info!(namespace, name, uid = candidate.uid(), reason = %reason, "kept after a conflict");
        return (RunResult::Conflict, verdict, reason);
    }
    let mut verdict = decide::decide(&job, policy, now);
    if verdict.is_delete()
        && let Some(selector) = settings.scope.label_selector.as_deref()
    {
        match still_selected(api, namespace, name, selector).await {
            Ok(true) => {}
            Ok(false) => {
                verdict.decision = Decision::Keep(KeepReason::OutOfScope {
                    label_selector: selector.to_owned(),
                });
            }
            Err(reason) => {
                let reason = format!("changed since listed, and {reason}");
                warn!(namespace, name, uid = candidate.uid(), reason = %reason, "delete failed");
                return (RunResult::Failed, candidate.verdict.clone(), reason);
            }
        }
    }
    if !verdict.is_delete() {
        let reason = format!("changed since listed; kept: {}", verdict.reason(now));
        info!(namespace, name, uid = candidate.uid(), reason = %reason, "kept after a conflict");
        return (RunResult::Conflict, verdict, reason);
    }
    let retry = Candidate::new(namespace, name, &job.uid, &job.resource_version, verdict);
    let answer = api
        .delete_trainjob(namespace, name, retry.uid(), retry.resource_version())
        .await;
    match classify_delete(answer, &retry, now) {
        Ok(()) => {
            let reason = "changed twice while being deleted; left for the next run".to_owned();
            warn!(namespace, name, uid = retry.uid(), reason = %reason, "delete conflict");
            (RunResult::Conflict, retry.verdict.clone(), reason)
        }
        Err(done) => *done,
    }
}

/// Asks the API server whether the TrainJob still matches the run's label selector, with a list
/// filtered by the selector and by its name, so that the server's own selector rules decide.
async fn still_selected(
    api: &Api,
    namespace: &str,
    name: &str,
    selector: &str,
) -> Result<bool, String> {
    let field_selector = format!("metadata.name={name}");
    let answer = api
        .list_page(Some(namespace), Some(selector), Some(&field_selector), None)
        .await
        .map_err(|err| format!("checking the label selector failed: {err}"))?;
    if !answer.status.is_success() {
        return Err(format!(
            "checking the label selector failed: HTTP {}: {}",
            answer.status,
            answer.message()
        ));
    }
    let page: Page<'_> = serde_json::from_slice(&answer.body)
        .map_err(|err| format!("checking the label selector failed: {err}"))?;
    Ok(!page.items().is_empty())
}

/// Interprets the response to a DELETE. `Ok(())` means 409 Conflict: the caller decides again.
///
/// `now` is the run's clock, the one the decision used, so that the log and the report agree
/// with the decision.
fn classify_delete(
    answer: Result<Answer, RequestError>,
    candidate: &Candidate,
    now: Timestamp,
) -> Result<(), Box<(RunResult, Verdict, String)>> {
    let (namespace, name, uid) = (candidate.namespace(), candidate.name(), candidate.uid());
    let verdict = candidate.verdict.clone();
    let answer = match answer {
        Ok(answer) => answer,
        Err(err) => return Err(Box::new(request_failed(candidate, err))),
    };
    match answer.status.as_u16() {
        200 | 202 => {
            let note = held_by_finalizers(&answer.body).map(|finalizers| {
                format!(
                    "deletion started, but finalizers {finalizers} hold the TrainJob until their \
                     controllers remove them"
                )
            });
            log_deletion(candidate, now, "deleted", note.as_deref());
            let mut reason = verdict.reason(now);
            if let Some(note) = note {
                reason = format!("{reason}; {note}");
            }
            Err(Box::new((RunResult::Deleted, verdict, reason)))
        }
        // An earlier attempt was sent but its response was lost (a timeout, a reset connection,
        // a 5xx from a proxy), and the TrainJob is gone now. Most likely that attempt deleted it.
        404 if answer.attempts > 1 => {
            let note = "the first DELETE's response was lost and the retry found the TrainJob gone";
            log_deletion(candidate, now, "deleted", Some(note));
            let reason = format!("{}; {note}", verdict.reason(now));
            Err(Box::new((RunResult::Deleted, verdict, reason)))
        }
        404 => {
            info!(
                namespace,
                name, uid, "already gone: deleted by someone else"
            );
            Err(Box::new((
                RunResult::AlreadyGone,
                verdict,
                "already deleted by someone else".to_owned(),
            )))
        }
        409 => Ok(()),
        401 => {
            let reason = format!(
                "the API server rejected the credentials: {}",
                answer.message()
            );
            warn!(namespace, name, uid, reason = %reason, "delete failed");
            Err(Box::new((RunResult::Failed, verdict, reason)))
        }
        code @ (400 | 403 | 405 | 422) => {
            let message = answer.message();
            let reason = if code == 403 && message.contains("cannot delete resource") {
                format!(
                    "denied by RBAC: {message}; grant delete on {TRAINJOB_PLURAL}.{TRAINJOB_GROUP}"
                )
            } else {
                format!(
                    "refused by the API server (HTTP {code}, an admission webhook or policy): {message}"
                )
            };
            warn!(namespace, name, uid, reason = %reason, "delete denied");
            Err(Box::new((RunResult::Denied, verdict, reason)))
        }
        _ => {
            let reason = format!(
                "delete failed: HTTP {}: {}",
                answer.status,
                answer.message()
            );
            warn!(namespace, name, uid, reason = %reason, "delete failed");
            Err(Box::new((RunResult::Failed, verdict, reason)))
        }
    }
}

/// Returns the finalizers, comma-separated, when the DELETE's response is the object itself with
/// a `deletionTimestamp`, because the API server keeps an object until its finalizers are removed.
fn held_by_finalizers(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Metadata {
        deletion_timestamp: Option<String>,
        #[serde(default)]
        finalizers: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Object {
        metadata: Metadata,
    }
    let object: Object = serde_json::from_slice(body).ok()?;
    let metadata = object.metadata;
    (metadata.deletion_timestamp.is_some() && !metadata.finalizers.is_empty())
        .then(|| metadata.finalizers.join(", "))
}

fn request_failed(candidate: &Candidate, err: RequestError) -> (RunResult, Verdict, String) {
    let (namespace, name, uid) = (candidate.namespace(), candidate.name(), candidate.uid());
    let verdict = candidate.verdict.clone();
    match err {
        RequestError::Cancelled { .. } => {
            return (
                RunResult::Interrupted,
                verdict,
                "stopped by the deadline or a signal before the delete was sent or retried"
                    .to_owned(),
            );
        }
        RequestError::Abandoned { .. } => {
            let reason = format!(
                "the deadline or a signal came while the delete was in flight, and no response came \
                 within {}; the TrainJob may or may not be deleted",
                humantime::format_duration(crate::api::IN_FLIGHT_GRACE)
            );
            warn!(namespace, name, uid, reason = %reason, "delete abandoned");
            return (RunResult::Interrupted, verdict, reason);
        }
        _ => {}
    }
    let reason = err.to_string();
    warn!(namespace, name, uid, reason = %reason, "delete failed");
    (RunResult::Failed, verdict, reason)
}
