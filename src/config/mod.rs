//! Configuration: environment, command-line flags and an optional ConfigMap, merged and
//! validated into [`Settings`] before the run touches the API server.
//!
//! Reading happens in two layers. First every source becomes a [`Layer`] of raw strings; envy
//! deserializes the merged layers into [`RawSettings`], the same way for the environment and for
//! a ConfigMap's data. Then [`Settings::from_raw`] parses and checks every value in one pass and
//! reports all problems together, each naming the variable, the value and an accepted example.

pub mod settings;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::constants::ENV_PREFIX;
use crate::duration::parse_duration;
use settings::{Placement, SETTINGS};

/// Where the value of a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Environment,
    ConfigMap(String),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("command-line flag"),
            Source::Environment => f.write_str("environment"),
            Source::ConfigMap(name) => write!(f, "ConfigMap {name}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// Raw values of one source, keyed by full variable name (`TRAINJOB_GC_TTL`).
#[derive(Debug, Clone)]
pub struct Layer {
    pub source: Source,
    pub values: BTreeMap<String, String>,
}

/// One problem found in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub value: Option<String>,
    pub source: Option<Source>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)?;
        if let Some(value) = &self.value {
            write!(f, "={value:?}")?;
        }
        if let Some(source) = &self.source {
            write!(f, " (from {source})")?;
        }
        write!(f, " {}", self.message)
    }
}

/// Every problem of a configuration, reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem", self.0.len())?;
        if self.0.len() != 1 {
            f.write_str("s")?;
        }
        f.write_str("):")?;
        for problem in &self.0 {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// Returns true for the variables Kubernetes injects for a Service named `trainjob-gc`
/// (`TRAINJOB_GC_SERVICE_HOST`, `TRAINJOB_GC_PORT_443_TCP`, …); they are not settings.
fn is_service_link_variable(key: &str) -> bool {
    let bare = &key[ENV_PREFIX.len()..];
    bare.starts_with("SERVICE_") || bare == "PORT" || bare.starts_with("PORT_")
}

/// Builds the layer of the process environment from `(name, value)` pairs.
///
/// Variables without the prefix and Service link variables are ignored; an empty value means
/// unset. Unknown `TRAINJOB_GC_*` names are problems, with the closest known name suggested.
pub fn environment_layer(
    vars: impl IntoIterator<Item = (String, String)>,
) -> (Layer, Vec<Problem>) {
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in vars {
        if !key.starts_with(ENV_PREFIX) || is_service_link_variable(&key) {
            continue;
        }
        if settings::find(&key[ENV_PREFIX.len()..]).is_none() {
            problems.push(unknown_key(
                &key,
                &value,
                Source::Environment,
                "environment variable",
            ));
            continue;
        }
        if !value.trim().is_empty() {
            values.insert(key, value);
        }
    }
    (
        Layer {
            source: Source::Environment,
            values,
        },
        problems,
    )
}

/// Builds the layer of a ConfigMap's data. `name` is `namespace/name`.
///
/// Every key must be a known setting that a ConfigMap may carry: `TRAINJOB_GC_DRY_RUN` and
/// `TRAINJOB_GC_CONFIGMAP` are refused, because only the process decides whether it may delete.
pub fn configmap_layer(name: &str, data: BTreeMap<String, String>) -> (Layer, Vec<Problem>) {
    let source = Source::ConfigMap(name.to_owned());
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in data {
        let spec = key.strip_prefix(ENV_PREFIX).and_then(settings::find);
        match spec {
            None => problems.push(unknown_key(&key, &value, source.clone(), "ConfigMap key")),
            Some(spec) if spec.placement == Placement::ProcessOnly => problems.push(Problem {
                key: key.clone(),
                value: Some(value),
                source: Some(source.clone()),
                message: format!(
                    "is not allowed in a ConfigMap: set {key} in the environment of the process or \
                     with a command-line flag, and remove the key from {name}"
                ),
            }),
            Some(_) => {
                if !value.trim().is_empty() {
                    values.insert(key, value);
                }
            }
        }
    }
    (Layer { source, values }, problems)
}

fn unknown_key(key: &str, value: &str, source: Source, what: &str) -> Problem {
    let hint = match settings::closest(key) {
        Some(known) => format!("; did you mean {known}?"),
        None => format!("; see the settings table in the README (all start with {ENV_PREFIX})"),
    };
    Problem {
        key: key.to_owned(),
        value: Some(value.to_owned()),
        source: Some(source),
        message: format!("is an unknown {what}{hint}"),
    }
}

/// Every setting as the raw string of the layer that won. envy fills it from the merged layers,
/// for the environment and for a ConfigMap alike; each field is parsed by [`Settings::from_raw`]
/// so that a bad value gets a message naming the variable.
#[derive(Debug, Default, Deserialize)]
pub struct RawSettings {
    pub policy: Option<String>,
    pub ttl: Option<String>,
    pub ttl_succeeded: Option<String>,
    pub ttl_failed: Option<String>,
    pub max_ttl: Option<String>,
    pub keep_last: Option<String>,
    pub invalid_annotation: Option<String>,
    pub include: Option<String>,
    pub dry_run: Option<String>,
    pub configmap: Option<String>,
    pub namespaces: Option<String>,
    pub exclude_namespaces: Option<String>,
    pub label_selector: Option<String>,
    pub page_size: Option<String>,
    pub report: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub qps: Option<String>,
    pub burst: Option<String>,
    pub concurrency: Option<String>,
    pub deadline: Option<String>,
    pub max_deletions: Option<String>,
    pub abort_above: Option<String>,
    pub request_timeout: Option<String>,
    pub retry_limit: Option<String>,
    pub retry_budget: Option<String>,
    pub retry_backoff: Option<String>,
    pub retry_backoff_max: Option<String>,
    pub clock_skew_warn: Option<String>,
}

/// The merged layers: each key's value and the source it came from.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    pub values: BTreeMap<String, (String, Source)>,
}

impl Merged {
    /// Merges layers given from the highest precedence to the lowest.
    pub fn from_layers(layers: &[&Layer]) -> Merged {
        let mut values = BTreeMap::new();
        for layer in layers {
            for (key, value) in &layer.values {
                values
                    .entry(key.clone())
                    .or_insert_with(|| (value.clone(), layer.source.clone()));
            }
        }
        Merged { values }
    }

    fn source(&self, key: &str) -> Source {
        self.values
            .get(key)
            .map_or(Source::Default, |(_, source)| source.clone())
    }

    /// Deserializes the merged values with envy.
    pub fn raw(&self) -> RawSettings {
        let pairs = self
            .values
            .iter()
            .map(|(key, (value, _))| (key.clone(), value.clone()));
        // Every field is an optional string and every key is known, so envy cannot fail here.
        envy::prefixed(ENV_PREFIX)
            .from_iter(pairs)
            .unwrap_or_default()
    }
}

/// What happens to the outcome TTLs: `ttl` or `delete_on_completion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Ttl,
    DeleteOnCompletion,
}

/// What an annotation that does not parse does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidAnnotation {
    Keep,
    Policy,
}

/// Kinds of TrainJobs whose lifecycle another system owns that the run may delete anyway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Include {
    pub managed_by: bool,
    pub multikueue_copy: bool,
    pub owned: bool,
    pub gitops: bool,
}

/// A retention time and the setting it came from, for logs and the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    pub duration: Duration,
    pub source: &'static str,
}

/// The retention rules the decision applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub ttl_succeeded: Ttl,
    pub ttl_failed: Ttl,
    pub max_ttl: Option<Duration>,
    pub keep_last: u32,
    pub invalid_annotation: InvalidAnnotation,
    pub include: Include,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Which namespaces the run covers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// Empty means every namespace.
    pub namespaces: Vec<String>,
    pub exclude_namespaces: Vec<String>,
    pub label_selector: Option<String>,
}

/// Retry and request limits of the API client.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub page_size: u32,
    pub qps: f64,
    pub burst: u32,
    pub concurrency: usize,
    pub deadline: Duration,
    pub max_deletions: Option<u64>,
    pub abort_above: Option<u64>,
    pub request_timeout: Duration,
    pub retry_limit: u32,
    pub retry_budget: u32,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    pub clock_skew_warn: Duration,
}

/// The validated configuration of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Policy,
    pub dry_run: bool,
    pub configmap: Option<(String, String)>,
    pub scope: Scope,
    pub report: Option<String>,
    pub log_format: LogFormat,
    pub log_level: tracing::Level,
    pub limits: Limits,
    /// Effective value and source of every setting, for the start-up log.
    pub effective: Vec<(String, String, Source)>,
}

/// Collects problems while the fields are parsed, so that all of them are reported at once.
struct Checker<'a> {
    merged: &'a Merged,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, name: &str, value: Option<&str>, message: String) {
        let key = format!("{ENV_PREFIX}{name}");
        let source = value.map(|_| self.merged.source(&key));
        self.problems.push(Problem {
            key,
            value: value.map(str::to_owned),
            source,
            message,
        });
    }

    /// Parses a value, or records a problem and returns `None`.
    fn parse<T>(
        &mut self,
        name: &str,
        value: Option<&String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = value?;
        match parse(value.trim()) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.problem(name, Some(value), message);
                None
            }
        }
    }

    fn duration(&mut self, name: &str, value: Option<&String>) -> Option<Duration> {
        self.parse(name, value, parse_duration)
    }

    fn integer<T: std::str::FromStr + PartialOrd + fmt::Display + Copy>(
        &mut self,
        name: &str,
        value: Option<&String>,
        min: T,
        max: T,
        example: &str,
    ) -> Option<T> {
        self.parse(name, value, |text| match text.parse::<T>() {
            Ok(number) if number >= min && number <= max => Ok(number),
            _ => Err(format!(
                "is not a whole number from {min} to {max}; for example {example}"
            )),
        })
    }
}

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("is not a boolean; use true or false".to_owned()),
    }
}

/// Splits a comma-separated list, trimming items and dropping empty ones.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Checks a namespace name against the DNS label rules Kubernetes applies.
fn check_namespace(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "contains {name:?}, which is not a namespace name (lowercase letters, digits and '-', \
             at most 63 characters); for example team-a,team-b"
        ))
    }
}

fn parse_namespaces(text: &str) -> Result<Vec<String>, String> {
    let names = split_list(text);
    for name in &names {
        check_namespace(name)?;
    }
    Ok(names)
}

fn parse_configmap(text: &str) -> Result<(String, String), String> {
    let mut parts = text.splitn(2, '/');
    match (parts.next(), parts.next()) {
        (Some(namespace), Some(name))
            if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
        {
            check_namespace(namespace).map_err(|_| {
                format!("names the namespace {namespace:?}, which is not a namespace name")
            })?;
            Ok((namespace.to_owned(), name.to_owned()))
        }
        _ => Err("is not namespace/name; for example trainjob-gc/trainjob-gc-policy".to_owned()),
    }
}

fn parse_include(text: &str) -> Result<Include, String> {
    let mut include = Include::default();
    for item in split_list(text) {
        match item.as_str() {
            "managed-by" => include.managed_by = true,
            "multikueue-copy" => include.multikueue_copy = true,
            "owned" => include.owned = true,
            "gitops" => include.gitops = true,
            other => {
                return Err(format!(
                    "contains {other:?}; use any of managed-by, multikueue-copy, owned, gitops, \
                     comma-separated, such as managed-by,gitops"
                ));
            }
        }
    }
    Ok(include)
}

fn parse_log_level(text: &str) -> Result<tracing::Level, String> {
    text.to_ascii_lowercase()
        .parse::<tracing::Level>()
        .map_err(|_| "is not a log level; use error, warn, info, debug or trace".to_owned())
}

fn parse_qps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(qps) if qps.is_finite() && (0.1..=10_000.0).contains(&qps) => Ok(qps),
        _ => Err("is not a rate from 0.1 to 10000 requests per second; for example 50".to_owned()),
    }
}

impl Settings {
    /// Parses and checks the merged layers, reporting every problem at once.
    pub fn from_raw(merged: &Merged) -> Result<Settings, ConfigError> {
        let raw = merged.raw();
        let mut check = Checker {
            merged,
            problems: Vec::new(),
        };

        let kind = check.parse("POLICY", raw.policy.as_ref(), |text| match text {
            "ttl" => Ok(PolicyKind::Ttl),
            "delete_on_completion" => Ok(PolicyKind::DeleteOnCompletion),
            _ => Err("is not a policy; use ttl or delete_on_completion".to_owned()),
        });
        let ttl = check.duration("TTL", raw.ttl.as_ref());
        let ttl_succeeded = check.duration("TTL_SUCCEEDED", raw.ttl_succeeded.as_ref());
        let ttl_failed = check.duration("TTL_FAILED", raw.ttl_failed.as_ref());
        let max_ttl = check.duration("MAX_TTL", raw.max_ttl.as_ref());
        let keep_last = check.integer("KEEP_LAST", raw.keep_last.as_ref(), 0u32, 1_000_000, "5");
        let invalid_annotation = check.parse(
            "INVALID_ANNOTATION",
            raw.invalid_annotation.as_ref(),
            |text| match text {
                "keep" => Ok(InvalidAnnotation::Keep),
                "policy" => Ok(InvalidAnnotation::Policy),
                _ => Err("is not keep or policy".to_owned()),
            },
        );
        let include = check.parse("INCLUDE", raw.include.as_ref(), parse_include);
        let dry_run = check.parse("DRY_RUN", raw.dry_run.as_ref(), parse_bool);
        let configmap = check.parse("CONFIGMAP", raw.configmap.as_ref(), parse_configmap);
        let namespaces = check.parse("NAMESPACES", raw.namespaces.as_ref(), parse_namespaces);
        let exclude_namespaces = check.parse(
            "EXCLUDE_NAMESPACES",
            raw.exclude_namespaces.as_ref(),
            parse_namespaces,
        );
        let page_size = check.integer("PAGE_SIZE", raw.page_size.as_ref(), 1u32, 10_000, "500");
        let log_format = check.parse("LOG_FORMAT", raw.log_format.as_ref(), |text| match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("is not a log format; use text or json".to_owned()),
        });
        let log_level = check.parse("LOG_LEVEL", raw.log_level.as_ref(), parse_log_level);
        let qps = check.parse("QPS", raw.qps.as_ref(), parse_qps);
        let burst = check.integer("BURST", raw.burst.as_ref(), 1u32, 100_000, "40");
        let concurrency = check.integer("CONCURRENCY", raw.concurrency.as_ref(), 1usize, 256, "8");
        let deadline = check.duration("DEADLINE", raw.deadline.as_ref());
        let max_deletions = check.integer(
            "MAX_DELETIONS",
            raw.max_deletions.as_ref(),
            1u64,
            u64::MAX,
            "1000",
        );
        let abort_above = check.integer(
            "ABORT_ABOVE",
            raw.abort_above.as_ref(),
            0u64,
            u64::MAX,
            "5000",
        );
        let request_timeout = check.duration("REQUEST_TIMEOUT", raw.request_timeout.as_ref());
        let retry_limit = check.integer("RETRY_LIMIT", raw.retry_limit.as_ref(), 0u32, 100, "5");
        let retry_budget = check.integer(
            "RETRY_BUDGET",
            raw.retry_budget.as_ref(),
            0u32,
            1_000_000,
            "100",
        );
        let retry_backoff = check.duration("RETRY_BACKOFF", raw.retry_backoff.as_ref());
        let retry_backoff_max = check.duration("RETRY_BACKOFF_MAX", raw.retry_backoff_max.as_ref());
        let clock_skew_warn = check.duration("CLOCK_SKEW_WARN", raw.clock_skew_warn.as_ref());

        if let Some(report) = raw.report.as_ref()
            && report.trim().is_empty()
        {
            check.problem(
                "REPORT",
                Some(report),
                "is empty; give a file path or -".to_owned(),
            );
        }
        for (name, parsed, value) in [
            ("DEADLINE", deadline, raw.deadline.as_deref()),
            (
                "REQUEST_TIMEOUT",
                request_timeout,
                raw.request_timeout.as_deref(),
            ),
        ] {
            if parsed == Some(Duration::ZERO) {
                check.problem(
                    name,
                    value,
                    "must be longer than 0s; for example 10m".to_owned(),
                );
            }
        }

        let kind = kind.unwrap_or(PolicyKind::Ttl);
        let policy_ttls = resolve_ttls(&mut check, merged, kind, ttl, ttl_succeeded, ttl_failed);

        let defaults = Limits::default();
        if let (Some(backoff), Some(max)) = (
            retry_backoff.or(Some(defaults.retry_backoff)),
            retry_backoff_max.or(Some(defaults.retry_backoff_max)),
        ) && backoff > max
        {
            check.problem(
                "RETRY_BACKOFF",
                raw.retry_backoff.as_deref(),
                format!(
                    "is longer than TRAINJOB_GC_RETRY_BACKOFF_MAX ({}); make it shorter",
                    humantime::format_duration(max)
                ),
            );
        }

        if !check.problems.is_empty() {
            return Err(ConfigError(check.problems));
        }
        let (ttl_succeeded, ttl_failed) =
            policy_ttls.expect("TTLs resolve when there is no problem");

        let limits = Limits {
            page_size: page_size.unwrap_or(defaults.page_size),
            qps: qps.unwrap_or(defaults.qps),
            burst: burst.unwrap_or(defaults.burst),
            concurrency: concurrency.unwrap_or(defaults.concurrency),
            deadline: deadline.unwrap_or(defaults.deadline),
            max_deletions,
            abort_above,
            request_timeout: request_timeout.unwrap_or(defaults.request_timeout),
            retry_limit: retry_limit.unwrap_or(defaults.retry_limit),
            retry_budget: retry_budget.unwrap_or(defaults.retry_budget),
            retry_backoff: retry_backoff.unwrap_or(defaults.retry_backoff),
            retry_backoff_max: retry_backoff_max.unwrap_or(defaults.retry_backoff_max),
            clock_skew_warn: clock_skew_warn.unwrap_or(defaults.clock_skew_warn),
        };
        Ok(Settings {
            policy: Policy {
                kind,
                ttl_succeeded,
                ttl_failed,
                max_ttl,
                keep_last: keep_last.unwrap_or(0),
                invalid_annotation: invalid_annotation.unwrap_or(InvalidAnnotation::Keep),
                include: include.unwrap_or_default(),
            },
            dry_run: dry_run.unwrap_or(true),
            configmap,
            scope: Scope {
                namespaces: namespaces.unwrap_or_default(),
                exclude_namespaces: exclude_namespaces.unwrap_or_default(),
                label_selector: raw.label_selector.map(|s| s.trim().to_owned()),
            },
            report: raw.report.map(|s| s.trim().to_owned()),
            log_format: log_format.unwrap_or(LogFormat::Text),
            log_level: log_level.unwrap_or(tracing::Level::INFO),
            limits,
            effective: effective_values(merged),
        })
    }
}

/// Resolves the per-outcome TTLs and checks that they fit the policy.
fn resolve_ttls(
    check: &mut Checker<'_>,
    merged: &Merged,
    kind: PolicyKind,
    ttl: Option<Duration>,
    ttl_succeeded: Option<Duration>,
    ttl_failed: Option<Duration>,
) -> Option<(Ttl, Ttl)> {
    let raw_value = |name: &str| {
        merged
            .values
            .get(&format!("{ENV_PREFIX}{name}"))
            .map(|(value, _)| value.clone())
    };
    match kind {
        PolicyKind::DeleteOnCompletion => {
            let mut contradiction = false;
            for name in ["TTL", "TTL_SUCCEEDED", "TTL_FAILED"] {
                if let Some(value) = raw_value(name) {
                    contradiction = true;
                    check.problem(
                        name,
                        Some(&value),
                        "contradicts TRAINJOB_GC_POLICY=delete_on_completion, which deletes at \
                         once; remove it, or use TRAINJOB_GC_POLICY=ttl with TRAINJOB_GC_TTL_SUCCEEDED=0s"
                            .to_owned(),
                    );
                }
            }
            let zero = Ttl {
                duration: Duration::ZERO,
                source: "TRAINJOB_GC_POLICY=delete_on_completion",
            };
            (!contradiction).then_some((zero, zero))
        }
        PolicyKind::Ttl => {
            let general = ttl.map(|duration| Ttl {
                duration,
                source: "TRAINJOB_GC_TTL",
            });
            let succeeded = ttl_succeeded
                .map(|duration| Ttl {
                    duration,
                    source: "TRAINJOB_GC_TTL_SUCCEEDED",
                })
                .or(general);
            let failed = ttl_failed
                .map(|duration| Ttl {
                    duration,
                    source: "TRAINJOB_GC_TTL_FAILED",
                })
                .or(general);
            let unparsed = [
                ("TTL", ttl),
                ("TTL_SUCCEEDED", ttl_succeeded),
                ("TTL_FAILED", ttl_failed),
            ]
            .iter()
            .any(|(name, parsed)| parsed.is_none() && raw_value(name).is_some());
            if unparsed {
                // The invalid value is already reported; a second message would only repeat it.
                return None;
            }
            match (succeeded, failed) {
                (Some(succeeded), Some(failed)) => Some((succeeded, failed)),
                (succeeded, failed) => {
                    let missing = match (succeeded, failed) {
                        (None, None) => "every TrainJob",
                        (None, Some(_)) => "succeeded TrainJobs",
                        _ => "failed TrainJobs",
                    };
                    check.problem(
                        "TTL",
                        None,
                        format!(
                            "is missing: the ttl policy has no TTL for {missing}; set \
                             TRAINJOB_GC_TTL=7d, or both TRAINJOB_GC_TTL_SUCCEEDED and \
                             TRAINJOB_GC_TTL_FAILED, or use TRAINJOB_GC_POLICY=delete_on_completion"
                        ),
                    );
                    None
                }
            }
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            page_size: 500,
            qps: 20.0,
            burst: 40,
            concurrency: 4,
            deadline: Duration::from_secs(600),
            max_deletions: None,
            abort_above: None,
            request_timeout: Duration::from_secs(30),
            retry_limit: 5,
            retry_budget: 100,
            retry_backoff: Duration::from_millis(500),
            retry_backoff_max: Duration::from_secs(30),
            clock_skew_warn: Duration::from_secs(30),
        }
    }
}

/// Lists every setting with its effective value and source, for the start-up log.
fn effective_values(merged: &Merged) -> Vec<(String, String, Source)> {
    SETTINGS
        .iter()
        .filter_map(|spec| {
            let key = format!("{ENV_PREFIX}{}", spec.name);
            match merged.values.get(&key) {
                Some((value, source)) => Some((key, value.clone(), source.clone())),
                None => spec
                    .default
                    .map(|default| (key, default.to_owned(), Source::Default)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
