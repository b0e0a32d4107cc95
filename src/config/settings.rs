//! The table of every setting: name, default, example and meaning.
//!
//! The table drives the check for unknown keys, the start-up log of effective values and the
//! configuration table in the README, so that the three cannot drift apart.

/// Where a setting may come from besides a command-line flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Environment or ConfigMap.
    Anywhere,
    /// Only the environment of the process (and a flag): never a ConfigMap, so that an audit run
    /// from a laptop against a production ConfigMap cannot change what the run may do.
    ProcessOnly,
}

/// One setting, named without the `TRAINJOB_GC_` prefix.
#[derive(Debug)]
pub struct SettingSpec {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub example: &'static str,
    pub placement: Placement,
    pub meaning: &'static str,
}

const fn setting(
    name: &'static str,
    default: Option<&'static str>,
    example: &'static str,
    meaning: &'static str,
) -> SettingSpec {
    SettingSpec {
        name,
        default,
        example,
        placement: Placement::Anywhere,
        meaning,
    }
}

/// Every setting, in the order the README lists them.
pub const SETTINGS: &[SettingSpec] = &[
    setting(
        "POLICY",
        Some("ttl"),
        "delete_on_completion",
        "`ttl` deletes a finished TrainJob once its TTL has passed since it finished; \
         `delete_on_completion` deletes it as soon as it finished (a TTL of zero).",
    ),
    setting(
        "TTL",
        None,
        "7d",
        "Retention time after the finish, for both outcomes. Required with `ttl` unless both \
         `TTL_SUCCEEDED` and `TTL_FAILED` are set. Whole numbers with the units `ms`, `s`, `m`, \
         `h`, `d`, `w`, `M` or `y`, such as `7d` or `1h 30m`. Units are case-sensitive: `m` is \
         minutes, `M` is months.",
    ),
    setting(
        "TTL_SUCCEEDED",
        None,
        "1d",
        "Retention time of TrainJobs whose `Complete` condition is True; overrides `TTL`.",
    ),
    setting(
        "TTL_FAILED",
        None,
        "14d",
        "Retention time of TrainJobs whose `Failed` condition is True; overrides `TTL`.",
    ),
    setting(
        "MAX_TTL",
        None,
        "30d",
        "Upper bound on what a `trainjob-gc/ttl` annotation may ask for; longer values are capped.",
    ),
    setting(
        "KEEP_LAST",
        Some("0"),
        "5",
        "Keep the N most recently finished candidate TrainJobs of each namespace whatever their age.",
    ),
    setting(
        "INVALID_ANNOTATION",
        Some("keep"),
        "policy",
        "What a `trainjob-gc/ttl` annotation that does not parse does: `keep` keeps the \
         TrainJob, `policy` applies the policy's TTL. An invalid `trainjob-gc/keep` or an \
         unknown `trainjob-gc/` key always keeps.",
    ),
    setting(
        "INCLUDE",
        Some(""),
        "managed-by,gitops",
        "TrainJobs whose lifecycle another system owns that are deleted anyway: any of \
         `managed-by`, `multikueue-copy`, `owned`, `gitops`.",
    ),
    SettingSpec {
        name: "DRY_RUN",
        default: Some("true"),
        example: "false",
        placement: Placement::ProcessOnly,
        meaning: "When true, nothing is deleted and the report says what a real run would delete. \
                  Refused in a ConfigMap.",
    },
    SettingSpec {
        name: "CONFIGMAP",
        default: None,
        example: "trainjob-gc/trainjob-gc-policy",
        placement: Placement::ProcessOnly,
        meaning: "`namespace/name` of a ConfigMap whose keys are these settings; the flag and \
                  the environment override it.",
    },
    setting(
        "NAMESPACES",
        Some(""),
        "team-a,team-b",
        "Namespaces to clean, comma-separated; empty means every namespace.",
    ),
    setting(
        "EXCLUDE_NAMESPACES",
        Some(""),
        "kube-system,prod",
        "Namespaces never cleaned, comma-separated.",
    ),
    setting(
        "LABEL_SELECTOR",
        Some(""),
        "team=research,!keep",
        "Kubernetes label selector that the API server applies to the list of TrainJobs.",
    ),
    setting(
        "PAGE_SIZE",
        Some("500"),
        "1000",
        "`limit` of each list request (1 to 10000).",
    ),
    setting(
        "REPORT",
        None,
        "/tmp/audit.jsonl",
        "Where the JSON-lines audit report goes: a file path, or `-` for standard output.",
    ),
    setting(
        "LOG_FORMAT",
        Some("text"),
        "json",
        "Log format on standard error: `text` or `json`.",
    ),
    setting(
        "LOG_LEVEL",
        Some("info"),
        "debug",
        "Least severe log level written: `error`, `warn`, `info`, `debug` or `trace`.",
    ),
    setting(
        "QPS",
        Some("20"),
        "100",
        "Requests per second sent to the API server, averaged (client-side rate limit).",
    ),
    setting(
        "BURST",
        Some("40"),
        "200",
        "Requests that may be sent at once above `QPS` before the rate limit applies.",
    ),
    setting(
        "CONCURRENCY",
        Some("4"),
        "16",
        "Deletions in flight at once (1 to 256).",
    ),
    setting(
        "DEADLINE",
        Some("10m"),
        "20m",
        "Time the whole run may take. Keep it shorter than the CronJob's `activeDeadlineSeconds`.",
    ),
    setting(
        "MAX_DELETIONS",
        None,
        "1000",
        "Most deletions in one run; the longest-overdue TrainJobs go first and the rest are backlog.",
    ),
    setting(
        "ABORT_ABOVE",
        None,
        "5000",
        "Circuit breaker: when more TrainJobs than this are due in one run, delete none of them.",
    ),
    setting(
        "REQUEST_TIMEOUT",
        Some("30s"),
        "10s",
        "Time one API request may take, including reading the answer.",
    ),
    setting(
        "RETRY_LIMIT",
        Some("5"),
        "3",
        "Retries of one request after a transient failure.",
    ),
    setting(
        "RETRY_BUDGET",
        Some("100"),
        "20",
        "Retries of all requests of one run together.",
    ),
    setting(
        "RETRY_BACKOFF",
        Some("500ms"),
        "1s",
        "First wait before a retry; it doubles with each retry, with jitter.",
    ),
    setting(
        "RETRY_BACKOFF_MAX",
        Some("30s"),
        "1m",
        "Longest wait before a retry. A `Retry-After` longer than this gives up the request.",
    ),
    setting(
        "CLOCK_SKEW_WARN",
        Some("30s"),
        "2m",
        "Difference between the local clock and the API server's clock above which a warning is logged.",
    ),
];

/// Looks up a setting by its name without the prefix.
pub fn find(name: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|spec| spec.name == name)
}

/// Returns the known full key closest to an unknown one, when one is close enough to be a typo.
pub fn closest(full_key: &str) -> Option<String> {
    let upper = full_key.to_ascii_uppercase();
    let bare = upper
        .strip_prefix(crate::constants::ENV_PREFIX)
        .unwrap_or(&upper);
    SETTINGS
        .iter()
        .map(|spec| (strsim::damerau_levenshtein(bare, spec.name), spec.name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| format!("{}{name}", crate::constants::ENV_PREFIX))
}
