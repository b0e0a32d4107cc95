//! Configuration: environment, command-line flags and an optional ConfigMap, merged and
//! validated into [`Settings`] before the run touches the API server.
//!
//! Reading happens in two layers. First every source becomes a [`Layer`] of raw strings; envy
//! deserializes the merged layers into [`RawSettings`], the same way for the environment and for
//! a ConfigMap's data. Then [`Settings::from_raw`] parses and checks every value in one pass and
//! reports all problems together, each naming the variable, the value and an accepted example.

pub mod settings;

use std::collections::BTreeMap;
use std::ffi::OsString;
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
    /// Full variable name, such as `TRAINJOB_GC_TTL`.
    pub key: String,
    /// The value as given. `None` only when the problem is that a required setting is missing.
    pub value: Option<String>,
    /// The source of the value, present together with `value`.
    pub source: Option<Source>,
    /// The fault and its fix, written to follow the key and value.
    pub message: String,
    /// True when the problem comes from two settings together (a contradiction, a missing TTL),
    /// so that a value from another source, such as the ConfigMap, may still resolve it.
    pub across_settings: bool,
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

/// Returns true for the variables that Kubernetes service links add for a Service named
/// `trainjob-gc` or `trainjob-gc-*`: `{SERVICE}_SERVICE_HOST`, `{SERVICE}_SERVICE_PORT`,
/// `{SERVICE}_SERVICE_PORT_{PORT_NAME}`, `{SERVICE}_PORT` and
/// `{SERVICE}_PORT_{NUMBER}_{PROTOCOL}`, the last also with `_PROTO`, `_PORT` or `_ADDR`.
/// They are not settings. `bare` is the name without the prefix.
fn is_service_link_variable(bare: &str) -> bool {
    let words: Vec<&str> = bare.split('_').collect();
    let service_port = words.windows(2).any(|pair| pair == ["SERVICE", "PORT"]);
    let protocol = |word: &str| matches!(word, "TCP" | "UDP" | "SCTP");
    let number = |word: &str| !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit());
    service_port
        || matches!(words.as_slice(), [.., "SERVICE", "HOST"] | [.., "PORT"])
        || matches!(words.as_slice(), [.., "PORT", port, proto] if number(port) && protocol(proto))
        || matches!(
            words.as_slice(),
            [.., "PORT", port, proto, "PROTO" | "PORT" | "ADDR"] if number(port) && protocol(proto)
        )
}

/// Builds the layer of the process environment from `(name, value)` pairs.
///
/// Variables without the prefix and service link variables are ignored, and an empty value
/// means unset. A value of only spaces is kept, so that the check reports it. Unknown
/// `TRAINJOB_GC_*` names are problems, with the closest known name suggested.
pub fn environment_layer(
    vars: impl IntoIterator<Item = (String, String)>,
) -> (Layer, Vec<Problem>) {
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in vars {
        let Some(bare) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if settings::find(bare).is_none() {
            if !is_service_link_variable(bare) {
                problems.push(unknown_key(
                    &key,
                    &value,
                    Source::Environment,
                    "environment variable",
                ));
            }
            continue;
        }
        if !value.is_empty() {
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

/// Builds the environment layer from the process environment as the OS gives it. A variable
/// with this program's prefix whose name or value is not UTF-8 is reported as a problem instead
/// of a panic. Other variables are ignored.
pub fn environment_layer_os(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> (Layer, Vec<Problem>) {
    let mut readable = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in vars {
        match (key.into_string(), value.into_string()) {
            (Ok(key), Ok(value)) => readable.push((key, value)),
            (key, value) => {
                let key = key.unwrap_or_else(|key| key.to_string_lossy().into_owned());
                if !key.starts_with(ENV_PREFIX) {
                    continue;
                }
                let value = value.unwrap_or_else(|value| value.to_string_lossy().into_owned());
                problems.push(Problem {
                    key,
                    value: Some(value),
                    source: Some(Source::Environment),
                    message: "is not valid UTF-8 (shown with each bad byte as \u{FFFD}); set it \
                              to plain text"
                        .to_owned(),
                    across_settings: false,
                });
            }
        }
    }
    let (layer, more) = environment_layer(readable);
    problems.extend(more);
    (layer, problems)
}

/// Builds the layer of a ConfigMap's data. `name` is `namespace/name`.
///
/// Every key must be a known setting that a ConfigMap may carry: `TRAINJOB_GC_DRY_RUN` and
/// `TRAINJOB_GC_CONFIGMAP` are rejected, even with an empty value, because only the process
/// decides whether it may delete. An empty value means unset.
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
                across_settings: false,
            }),
            Some(_) => {
                if !value.is_empty() {
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
        across_settings: false,
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
    /// Merges layers given from the highest precedence to the lowest. An empty value means
    /// unset in every layer, so that `--namespaces=""` leaves the environment's value in force.
    pub fn from_layers(layers: &[&Layer]) -> Merged {
        let mut values = BTreeMap::new();
        for layer in layers {
            let set = layer.values.iter().filter(|(_, value)| !value.is_empty());
            for (key, value) in set {
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

/// Returns the example value of a setting in the settings table.
fn example(name: &str) -> &'static str {
    settings::find(name).map_or("", |spec| spec.example)
}

/// Joins accepted words as `a, b or c`.
fn one_of(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Builds the message for a value of only spaces, which is set but carries no value.
fn blank_message(name: &str) -> String {
    let spec = settings::find(name);
    let example = spec.map_or("", |spec| spec.example);
    match spec
        .and_then(|spec| spec.default)
        .filter(|default| !default.is_empty())
    {
        Some(default) => format!(
            "is blank; give a value such as {example}, or remove it to use the default {default}"
        ),
        None => format!(
            "is blank; give a value such as {example}, or remove it to leave the setting unset"
        ),
    }
}

impl Checker<'_> {
    fn problem(&mut self, name: &str, value: Option<&str>, message: String) {
        self.push_problem(name, value, message, false);
    }

    /// Records a problem that comes from two settings together.
    fn conflict(&mut self, name: &str, value: Option<&str>, message: String) {
        self.push_problem(name, value, message, true);
    }

    fn push_problem(
        &mut self,
        name: &str,
        value: Option<&str>,
        message: String,
        across_settings: bool,
    ) {
        let key = format!("{ENV_PREFIX}{name}");
        let source = value.map(|_| self.merged.source(&key));
        self.problems.push(Problem {
            key,
            value: value.map(str::to_owned),
            source,
            message,
            across_settings,
        });
    }

    /// Parses a trimmed value, or records a problem and returns `None`.
    fn parse<T>(
        &mut self,
        name: &str,
        value: Option<&String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = value?;
        let trimmed = value.trim();
        let parsed = if trimmed.is_empty() {
            Err(blank_message(name))
        } else {
            parse(trimmed)
        };
        match parsed {
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

    /// Parses a duration that must be longer than zero.
    fn positive_duration(&mut self, name: &str, value: Option<&String>) -> Option<Duration> {
        let example = example(name);
        self.parse(name, value, |text| match parse_duration(text)? {
            Duration::ZERO => Err(format!("must be longer than 0s; for example {example}")),
            duration => Ok(duration),
        })
    }

    /// Parses a whole number from `min` to `max`, or of `min` or more when `max` is `None`.
    fn integer<T: std::str::FromStr + PartialOrd + fmt::Display + Copy>(
        &mut self,
        name: &str,
        value: Option<&String>,
        min: T,
        max: Option<T>,
    ) -> Option<T> {
        let example = example(name);
        let range = match max {
            Some(max) => format!("from {min} to {max}"),
            None => format!("of {min} or more"),
        };
        self.parse(name, value, |text| match text.parse::<T>() {
            Ok(number) if number >= min && max.is_none_or(|max| number <= max) => Ok(number),
            _ => Err(format!(
                "is not a whole number {range}; for example {example}"
            )),
        })
    }

    /// Parses one of a few case-sensitive words.
    fn word<T: Copy>(
        &mut self,
        name: &str,
        value: Option<&String>,
        what: &str,
        words: &[(&str, T)],
    ) -> Option<T> {
        self.parse(name, value, |text| {
            let found = words.iter().find(|(word, _)| *word == text);
            found.map(|(_, parsed)| *parsed).ok_or_else(|| {
                let accepted: Vec<&str> = words.iter().map(|(word, _)| *word).collect();
                format!("is not {what}; use {}", one_of(&accepted))
            })
        })
    }

    /// Parses the retention rules. Returns `None` after recording why when no TTL can be chosen.
    fn policy(&mut self, raw: &RawSettings) -> Option<Policy> {
        let kind = self.word(
            "POLICY",
            raw.policy.as_ref(),
            "a policy",
            &[
                ("ttl", PolicyKind::Ttl),
                ("delete_on_completion", PolicyKind::DeleteOnCompletion),
            ],
        );
        let ttl = self.duration("TTL", raw.ttl.as_ref());
        let ttl_succeeded = self.duration("TTL_SUCCEEDED", raw.ttl_succeeded.as_ref());
        let ttl_failed = self.duration("TTL_FAILED", raw.ttl_failed.as_ref());
        let max_ttl = self.duration("MAX_TTL", raw.max_ttl.as_ref());
        let keep_last = self.integer("KEEP_LAST", raw.keep_last.as_ref(), 0u32, Some(1_000_000));
        let invalid_annotation = self.word(
            "INVALID_ANNOTATION",
            raw.invalid_annotation.as_ref(),
            "an action for invalid annotations",
            &[
                ("keep", InvalidAnnotation::Keep),
                ("policy", InvalidAnnotation::Policy),
            ],
        );
        let include = self.parse("INCLUDE", raw.include.as_ref(), parse_include);

        // An invalid policy leaves open which TTLs it needs, so they are not checked against it.
        if raw.policy.is_some() && kind.is_none() {
            return None;
        }
        let kind = kind.unwrap_or(PolicyKind::Ttl);
        let ttls = [
            ("TTL", "TRAINJOB_GC_TTL", raw.ttl.as_deref(), ttl),
            (
                "TTL_SUCCEEDED",
                "TRAINJOB_GC_TTL_SUCCEEDED",
                raw.ttl_succeeded.as_deref(),
                ttl_succeeded,
            ),
            (
                "TTL_FAILED",
                "TRAINJOB_GC_TTL_FAILED",
                raw.ttl_failed.as_deref(),
                ttl_failed,
            ),
        ];
        let (ttl_succeeded, ttl_failed) = self.resolve_ttls(kind, ttls)?;
        // A cap below the policy would give a TrainJob that asks to be kept longer less time
        // than one without the annotation; 1m typed for 1M is the usual cause.
        if let Some(max) = max_ttl {
            let longest = ttl_succeeded.duration.max(ttl_failed.duration);
            if max < longest {
                self.conflict(
                    "MAX_TTL",
                    raw.max_ttl.as_deref(),
                    format!(
                        "is shorter than the policy's TTL ({}), so an annotation asking for longer \
                         would get less; give at least {} (m is minutes, M is months)",
                        crate::duration::format(longest),
                        crate::duration::format(longest)
                    ),
                );
                return None;
            }
        }
        Some(Policy {
            kind,
            ttl_succeeded,
            ttl_failed,
            max_ttl,
            keep_last: keep_last.unwrap_or(0),
            invalid_annotation: invalid_annotation.unwrap_or(InvalidAnnotation::Keep),
            include: include.unwrap_or_default(),
        })
    }

    /// Chooses the TTL of each outcome: its own setting, else `TTL`. Under
    /// `delete_on_completion` both are zero, and every TTL setting contradicts it. `ttls` contains
    /// the name, full key, raw value and parsed value of `TTL`, `TTL_SUCCEEDED` and `TTL_FAILED`.
    fn resolve_ttls(
        &mut self,
        kind: PolicyKind,
        ttls: [(&str, &'static str, Option<&str>, Option<Duration>); 3],
    ) -> Option<(Ttl, Ttl)> {
        if kind == PolicyKind::DeleteOnCompletion {
            for (name, _, value, _) in ttls {
                if value.is_some() {
                    self.conflict(
                        name,
                        value,
                        "contradicts TRAINJOB_GC_POLICY=delete_on_completion, which deletes at \
                         once; remove it, or use TRAINJOB_GC_POLICY=ttl with \
                         TRAINJOB_GC_TTL_SUCCEEDED=0s"
                            .to_owned(),
                    );
                }
            }
            let zero = Ttl {
                duration: Duration::ZERO,
                source: "TRAINJOB_GC_POLICY=delete_on_completion",
            };
            return Some((zero, zero));
        }

        // An invalid TTL is reported already, and a missing-TTL message would only repeat it.
        if ttls
            .iter()
            .any(|(_, _, value, parsed)| value.is_some() && parsed.is_none())
        {
            return None;
        }
        let [ttl, ttl_succeeded, ttl_failed] =
            ttls.map(|(_, source, _, parsed)| parsed.map(|duration| Ttl { duration, source }));
        let missing = match (ttl_succeeded.or(ttl), ttl_failed.or(ttl)) {
            (Some(succeeded), Some(failed)) => return Some((succeeded, failed)),
            (None, None) => "any TrainJob",
            (None, Some(_)) => "succeeded TrainJobs",
            (Some(_), None) => "failed TrainJobs",
        };
        self.conflict(
            "TTL",
            None,
            format!(
                "is missing: the ttl policy has no TTL for {missing}; set TRAINJOB_GC_TTL=7d, or \
                 both TRAINJOB_GC_TTL_SUCCEEDED and TRAINJOB_GC_TTL_FAILED, or use \
                 TRAINJOB_GC_POLICY=delete_on_completion"
            ),
        );
        None
    }

    /// Parses the namespaces and the label selector that bound the run.
    fn scope(&mut self, raw: &RawSettings) -> Scope {
        let namespaces = self
            .parse("NAMESPACES", raw.namespaces.as_ref(), |text| {
                namespace_list(text, "clean every namespace")
            })
            .unwrap_or_default();
        let exclude_namespaces = self
            .parse(
                "EXCLUDE_NAMESPACES",
                raw.exclude_namespaces.as_ref(),
                |text| namespace_list(text, "exclude none"),
            )
            .unwrap_or_default();
        let label_selector = self.parse("LABEL_SELECTOR", raw.label_selector.as_ref(), |text| {
            Ok(text.to_owned())
        });

        let both: Vec<&str> = exclude_namespaces
            .iter()
            .filter(|name| namespaces.contains(name))
            .map(String::as_str)
            .collect();
        if !both.is_empty() {
            self.conflict(
                "EXCLUDE_NAMESPACES",
                raw.exclude_namespaces.as_deref(),
                format!(
                    "excludes {}, which TRAINJOB_GC_NAMESPACES lists to be cleaned; remove each \
                     from one of the two lists",
                    both.join(",")
                ),
            );
        }

        Scope {
            namespaces,
            exclude_namespaces,
            label_selector,
        }
    }

    /// Parses the request, retry and deletion limits. Unset and invalid values take the
    /// default, so that the retry backoff can still be compared with its maximum.
    fn limits(&mut self, raw: &RawSettings) -> Limits {
        let defaults = Limits::default();
        let page_size = self.integer("PAGE_SIZE", raw.page_size.as_ref(), 1u32, Some(10_000));
        let qps = self.parse("QPS", raw.qps.as_ref(), parse_qps);
        let burst = self.integer("BURST", raw.burst.as_ref(), 1u32, Some(100_000));
        let concurrency = self.integer("CONCURRENCY", raw.concurrency.as_ref(), 1usize, Some(256));
        let deadline = self.positive_duration("DEADLINE", raw.deadline.as_ref());
        let max_deletions = self.integer("MAX_DELETIONS", raw.max_deletions.as_ref(), 1u64, None);
        let abort_above = self.integer("ABORT_ABOVE", raw.abort_above.as_ref(), 0u64, None);
        let request_timeout =
            self.positive_duration("REQUEST_TIMEOUT", raw.request_timeout.as_ref());
        let retry_limit = self.integer("RETRY_LIMIT", raw.retry_limit.as_ref(), 0u32, Some(100));
        let retry_budget = self.integer(
            "RETRY_BUDGET",
            raw.retry_budget.as_ref(),
            0u32,
            Some(1_000_000),
        );
        let retry_backoff = self.duration("RETRY_BACKOFF", raw.retry_backoff.as_ref());
        let retry_backoff_max = self.duration("RETRY_BACKOFF_MAX", raw.retry_backoff_max.as_ref());
        let clock_skew_warn = self.duration("CLOCK_SKEW_WARN", raw.clock_skew_warn.as_ref());

        let backoff_valid = raw.retry_backoff.is_none() || retry_backoff.is_some();
        let max_valid = raw.retry_backoff_max.is_none() || retry_backoff_max.is_some();
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
        if backoff_valid && max_valid && limits.retry_backoff > limits.retry_backoff_max {
            self.backoff_above_max(raw, &limits);
        }
        limits
    }

    /// Reports a first retry wait longer than the maximum wait, on the setting that was given.
    fn backoff_above_max(&mut self, raw: &RawSettings, limits: &Limits) {
        let backoff = crate::duration::format(limits.retry_backoff);
        let max = crate::duration::format(limits.retry_backoff_max);
        if raw.retry_backoff.is_some() {
            self.conflict(
                "RETRY_BACKOFF",
                raw.retry_backoff.as_deref(),
                format!(
                    "is longer than TRAINJOB_GC_RETRY_BACKOFF_MAX ({max}); give {max} or less, \
                     or raise TRAINJOB_GC_RETRY_BACKOFF_MAX"
                ),
            );
        } else {
            self.conflict(
                "RETRY_BACKOFF_MAX",
                raw.retry_backoff_max.as_deref(),
                format!(
                    "is shorter than TRAINJOB_GC_RETRY_BACKOFF ({backoff}); give {backoff} or \
                     more, or lower TRAINJOB_GC_RETRY_BACKOFF"
                ),
            );
        }
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

/// Checks a ConfigMap name against the DNS subdomain rules Kubernetes applies.
fn is_object_name(name: &str) -> bool {
    let label = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    name.len() <= 253 && name.split('.').all(label)
}

/// Parses a list of namespaces. A list of only commas is rejected, because reading it as unset
/// would silently change the scope of the run. `unset_means` describes unset, for the message.
fn namespace_list(text: &str, unset_means: &str) -> Result<Vec<String>, String> {
    let names = split_list(text);
    if names.is_empty() {
        return Err(format!(
            "lists no namespace; give names such as team-a,team-b, or remove it to {unset_means}"
        ));
    }
    for name in &names {
        check_namespace(name)?;
    }
    Ok(names)
}

fn parse_configmap(text: &str) -> Result<(String, String), String> {
    const EXAMPLE: &str = "for example trainjob-gc/trainjob-gc-policy";
    let Some((namespace, name)) = text
        .split_once('/')
        .filter(|(namespace, name)| !namespace.is_empty() && !name.is_empty())
    else {
        return Err(format!("is not namespace/name; {EXAMPLE}"));
    };
    if name.contains('/') {
        return Err(format!("is not namespace/name; {EXAMPLE}"));
    }
    if check_namespace(namespace).is_err() {
        return Err(format!(
            "names the namespace {namespace:?}, which is not a namespace name (lowercase letters, \
             digits and '-'); {EXAMPLE}"
        ));
    }
    if !is_object_name(name) {
        return Err(format!(
            "names the ConfigMap {name:?}, which is not a ConfigMap name (lowercase letters, \
             digits, '-' and '.'); {EXAMPLE}"
        ));
    }
    Ok((namespace.to_owned(), name.to_owned()))
}

fn parse_include(text: &str) -> Result<Include, String> {
    let mut include = Include::default();
    let items = split_list(text);
    if items.is_empty() {
        return Err(
            "lists nothing; give any of managed-by, multikueue-copy, owned, gitops, or remove it \
             to delete no TrainJob owned elsewhere"
                .to_owned(),
        );
    }
    for item in items {
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
    match text.to_ascii_lowercase().as_str() {
        "error" => Ok(tracing::Level::ERROR),
        "warn" => Ok(tracing::Level::WARN),
        "info" => Ok(tracing::Level::INFO),
        "debug" => Ok(tracing::Level::DEBUG),
        "trace" => Ok(tracing::Level::TRACE),
        _ => Err("is not a log level; use error, warn, info, debug or trace".to_owned()),
    }
}

fn parse_qps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(qps) if qps.is_finite() && (0.1..=10_000.0).contains(&qps) => Ok(qps),
        _ => Err(format!(
            "is not a rate from 0.1 to 10000 requests per second; for example {}",
            example("QPS")
        )),
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

        let policy = check.policy(&raw);
        let scope = check.scope(&raw);
        let limits = check.limits(&raw);
        let dry_run = check.parse("DRY_RUN", raw.dry_run.as_ref(), parse_bool);
        let configmap = check.parse("CONFIGMAP", raw.configmap.as_ref(), parse_configmap);
        let report = check.parse("REPORT", raw.report.as_ref(), |text| Ok(text.to_owned()));
        let log_format = check.word(
            "LOG_FORMAT",
            raw.log_format.as_ref(),
            "a log format",
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        );
        let log_level = check.parse("LOG_LEVEL", raw.log_level.as_ref(), parse_log_level);

        // No policy comes without a problem recorded.
        let policy = match policy {
            Some(policy) if check.problems.is_empty() => policy,
            _ => return Err(ConfigError(check.problems)),
        };
        Ok(Settings {
            policy,
            dry_run: dry_run.unwrap_or(true),
            configmap,
            scope,
            report,
            log_format: log_format.unwrap_or(LogFormat::Text),
            log_level: log_level.unwrap_or(tracing::Level::INFO),
            limits,
            effective: effective_values(merged),
        })
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
        .map(|spec| {
            let key = format!("{ENV_PREFIX}{}", spec.name);
            match merged.values.get(&key) {
                Some((value, source)) => (key, value.clone(), source.clone()),
                None => {
                    let value = spec.default.unwrap_or("(unset)");
                    (key, value.to_owned(), Source::Default)
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
