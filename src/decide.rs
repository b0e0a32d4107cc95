//! The retention decision: one pure function of a TrainJob, the policy and the current time.
//!
//! Nothing here reads the clock or talks to the API server, so every rule is tested as a table of
//! named cases and as a property over generated TrainJobs.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::config::{InvalidAnnotation, Policy, Ttl};
use crate::constants::*;
use crate::trainjob::{Condition, TrainJob};

/// A TrainJob held by finalizers for longer than this is logged as stuck.
pub const STUCK_TERMINATING_AFTER: Duration = Duration::from_secs(300);

/// How a TrainJob ended, for the report's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    Unfinished,
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Unfinished => "unfinished",
            Outcome::Unknown => "unknown",
        }
    }
}

/// Another system that owns the lifecycle of a TrainJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `spec.managedBy` names a controller other than Trainer's own.
    ManagedBy(String),
    /// A MultiKueue worker copy; the value is the origin label's value.
    MultiKueueCopy(String),
    /// A controller owner reference to another object.
    Controller { kind: String, name: String },
    /// Tracked by Argo CD or Flux; the value names the annotation or label.
    GitOps(String),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::ManagedBy(manager) => write!(
                f,
                "spec.managedBy is {manager:?}, not {TRAINER_MANAGER}; include it with \
                 TRAINJOB_GC_INCLUDE=managed-by"
            ),
            Owner::MultiKueueCopy(origin) => write!(
                f,
                "MultiKueue worker copy ({LABEL_MULTIKUEUE_ORIGIN}={origin}) that the manager cluster \
                 deletes; include it with TRAINJOB_GC_INCLUDE=multikueue-copy"
            ),
            Owner::Controller { kind, name } => write!(
                f,
                "controlled by {kind} {name} (ownerReference), which deletes it; include it with \
                 TRAINJOB_GC_INCLUDE=owned"
            ),
            Owner::GitOps(marker) => write!(
                f,
                "tracked by GitOps ({marker}), which would create it again; include it with \
                 TRAINJOB_GC_INCLUDE=gitops"
            ),
        }
    }
}

/// Why a TrainJob is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepReason {
    /// `metadata.deletionTimestamp` is set: someone already deleted it.
    Terminating {
        since: String,
        finalizers: Vec<String>,
        stuck: bool,
    },
    /// `trainjob-gc/keep: "true"`.
    OptedOut,
    OwnedElsewhere(Owner),
    /// Neither `Complete` nor `Failed` is True.
    NotFinished {
        suspended: bool,
    },
    /// A condition type this program does not know, which might change what finished means.
    UnknownCondition(String),
    /// A condition that breaks the API's own rules (no type, a status other than
    /// True/False/Unknown, the same type twice).
    MalformedCondition(String),
    /// Finished, but the finish time is missing, unparsable or earlier than the creation.
    FinishTimeUnknown(String),
    /// The finish time is ahead of the API server's clock.
    FinishedInFuture {
        ahead: SignedDuration,
    },
    /// A `trainjob-gc/*` annotation does not parse and `INVALID_ANNOTATION=keep`.
    InvalidAnnotation {
        key: String,
        value: String,
        problem: String,
    },
    /// The TTL has not passed yet. `None` when the expiry is past the representable time range.
    NotExpired {
        expires_at: Option<Timestamp>,
    },
    /// Among the N most recently finished candidates of its namespace.
    KeepLast {
        rank: u32,
        keep_last: u32,
    },
    /// Could not be read as a TrainJob.
    Malformed(String),
    /// Changed since it was listed so that it no longer matches the run's label selector.
    OutOfScope {
        label_selector: String,
    },
    /// Deleted and created again under the same name since it was listed; the new one is left
    /// for a later run to decide about.
    Recreated {
        new_uid: String,
    },
}

/// The decision about one TrainJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delete,
    Keep(KeepReason),
}

/// The decision with the facts it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub finished_at: Option<Timestamp>,
    /// The TTL that applies, when the TrainJob finished and a TTL was chosen.
    pub ttl: Option<Ttl>,
    pub decision: Decision,
    /// Both `Complete` and `Failed` are True; the later one was taken.
    pub both_terminal_conditions: bool,
    /// The `trainjob-gc/*` annotations that did not parse and were passed over because
    /// `INVALID_ANNOTATION=policy`, each with its problem, joined by `; `.
    pub ignored_annotation: Option<String>,
    /// The annotation TTL was longer than `MAX_TTL` and was capped.
    pub ttl_capped: bool,
}

impl Verdict {
    fn keep(outcome: Outcome, reason: KeepReason) -> Verdict {
        Verdict {
            outcome,
            finished_at: None,
            ttl: None,
            decision: Decision::Keep(reason),
            both_terminal_conditions: false,
            ignored_annotation: None,
            ttl_capped: false,
        }
    }

    /// A verdict for an item that could not be decoded.
    pub fn malformed(problem: String) -> Verdict {
        Verdict::keep(Outcome::Unknown, KeepReason::Malformed(problem))
    }

    pub fn is_delete(&self) -> bool {
        self.decision == Decision::Delete
    }

    /// When the TTL runs out, if the TrainJob finished and the time is representable.
    pub fn expires_at(&self) -> Option<Timestamp> {
        expiry(self.finished_at?, self.ttl?.duration)
    }

    /// Seconds since the TTL ran out (negative: seconds left).
    pub fn overdue_seconds(&self, now: Timestamp) -> Option<i64> {
        Some(now.duration_since(self.expires_at()?).as_secs())
    }

    /// The rule that decided, as the report's `rule` field.
    pub fn rule(&self) -> &'static str {
        let ttl_rule = if self
            .ttl
            .is_some_and(|ttl| ttl.source.starts_with(ANNOTATION_TTL))
        {
            "ttl-annotation"
        } else {
            "ttl"
        };
        match &self.decision {
            Decision::Delete => ttl_rule,
            Decision::Keep(reason) => match reason {
                KeepReason::Terminating { .. } => "terminating",
                KeepReason::OptedOut => "keep-annotation",
                KeepReason::OwnedElsewhere(_) => "owned-elsewhere",
                KeepReason::NotFinished { .. } => "not-finished",
                KeepReason::UnknownCondition(_) => "unknown-condition",
                KeepReason::MalformedCondition(_) | KeepReason::Malformed(_) => "malformed",
                KeepReason::FinishTimeUnknown(_) => "finish-time-unknown",
                KeepReason::FinishedInFuture { .. } => "clock-skew",
                KeepReason::InvalidAnnotation { .. } => "invalid-annotation",
                KeepReason::NotExpired { .. } => ttl_rule,
                KeepReason::KeepLast { .. } => "keep-last",
                KeepReason::Recreated { .. } => "recreated",
                KeepReason::OutOfScope { .. } => "out-of-scope",
            },
        }
    }

    /// True for the kept TrainJobs an operator must look at: they are logged at `warn` and
    /// counted as anomalies.
    pub fn is_anomaly(&self) -> bool {
        self.both_terminal_conditions
            || self.ignored_annotation.is_some()
            || matches!(
                &self.decision,
                Decision::Keep(
                    KeepReason::Terminating { stuck: true, .. }
                        | KeepReason::UnknownCondition(_)
                        | KeepReason::MalformedCondition(_)
                        | KeepReason::Malformed(_)
                        | KeepReason::FinishTimeUnknown(_)
                        | KeepReason::FinishedInFuture { .. }
                        | KeepReason::InvalidAnnotation { .. }
                )
            )
    }

    /// A sentence saying why, for logs and the report's `reason` field.
    pub fn reason(&self, now: Timestamp) -> String {
        let ttl_words = |ttl: &Ttl| {
            format!(
                "{} from {}",
                crate::duration::format(ttl.duration),
                ttl.source
            )
        };
        match &self.decision {
            Decision::Delete => {
                let ttl = self.ttl.as_ref().map(ttl_words).unwrap_or_default();
                let overdue = self.overdue_seconds(now).unwrap_or(0).max(0);
                let mut text = format!(
                    "finished {} ago, TTL {ttl} passed {} ago",
                    words_since(self.finished_at, now),
                    crate::duration::words(Duration::from_secs(overdue as u64))
                );
                if let Some(ignored) = &self.ignored_annotation {
                    text.push_str(&format!(
                        "; ignored the invalid annotation {ignored} (TRAINJOB_GC_INVALID_ANNOTATION=policy)"
                    ));
                }
                text
            }
            Decision::Keep(reason) => match reason {
                KeepReason::Terminating {
                    since, finalizers, ..
                } => {
                    if finalizers.is_empty() {
                        format!("already being deleted since {since}")
                    } else {
                        format!(
                            "already being deleted since {since}, held by finalizers {}",
                            finalizers.join(", ")
                        )
                    }
                }
                KeepReason::OptedOut => format!("opted out with {ANNOTATION_KEEP}: \"true\""),
                KeepReason::OwnedElsewhere(owner) => owner.to_string(),
                KeepReason::NotFinished { suspended: true } => "suspended, not finished".to_owned(),
                KeepReason::NotFinished { suspended: false } => {
                    "not finished (neither Complete nor Failed is True)".to_owned()
                }
                KeepReason::UnknownCondition(kind) => format!(
                    "condition type {kind:?} is unknown to this version of trainjob-gc, which \
                     cannot tell whether it changes what finished means"
                ),
                KeepReason::MalformedCondition(problem) => {
                    format!("malformed condition: {problem}")
                }
                KeepReason::FinishTimeUnknown(problem) => {
                    format!("no usable finish time: {problem}")
                }
                KeepReason::FinishedInFuture { ahead } => format!(
                    "finish time is {} ahead of the run's clock (the API server's, or --now), a clock skew; kept until then",
                    crate::duration::words(ahead.unsigned_abs())
                ),
                KeepReason::InvalidAnnotation {
                    key,
                    value,
                    problem,
                } => {
                    // Only an invalid ttl annotation follows INVALID_ANNOTATION. Any other key may
                    // be a misspelt keep, so it keeps the TrainJob whatever the setting.
                    let setting_note = if key == ANNOTATION_TTL {
                        "TRAINJOB_GC_INVALID_ANNOTATION=keep"
                    } else {
                        "whatever TRAINJOB_GC_INVALID_ANNOTATION says"
                    };
                    format!("annotation {key}={value:?} {problem}; kept ({setting_note})")
                }
                KeepReason::NotExpired {
                    expires_at: Some(expires_at),
                } => {
                    let ttl = self.ttl.as_ref().map(ttl_words).unwrap_or_default();
                    format!(
                        "TTL {ttl} not reached: expires at {expires_at} (in {})",
                        crate::duration::words(now.duration_until(*expires_at).unsigned_abs())
                    )
                }
                KeepReason::NotExpired { expires_at: None } => {
                    "TTL ends beyond the year 9999".to_owned()
                }
                KeepReason::KeepLast { rank, keep_last } => format!(
                    "one of the {keep_last} most recently finished in its namespace (rank {rank}, \
                     TRAINJOB_GC_KEEP_LAST)"
                ),
                KeepReason::Malformed(problem) => format!("not a readable TrainJob: {problem}"),
                KeepReason::Recreated { new_uid } => format!(
                    "re-created under the same name since it was listed (new uid {new_uid}); a later run \
                     decides about the new one"
                ),
                KeepReason::OutOfScope { label_selector } => format!(
                    "changed since it was listed and no longer matches \
                     TRAINJOB_GC_LABEL_SELECTOR={label_selector:?}"
                ),
            },
        }
    }
}

fn words_since(then: Option<Timestamp>, now: Timestamp) -> String {
    match then {
        Some(then) => crate::duration::words(now.duration_since(then).unsigned_abs()),
        None => "an unknown time".to_owned(),
    }
}

/// The end of a finished TrainJob, as its conditions state it.
struct Finish {
    outcome: Outcome,
    /// The `lastTransitionTime` of the terminal condition, or why it cannot be used.
    time: Result<Timestamp, String>,
    /// Both `Complete` and `Failed` are True.
    both: bool,
}

/// Reads the conditions: finished when `Complete` or `Failed` is True, at that condition's
/// `lastTransitionTime`. When both are True the later one counts, and `Failed` on a tie, so that
/// the order of the list does not matter. Returns why the TrainJob is kept when it has not
/// finished or its conditions cannot be trusted.
fn read_conditions(conditions: &[Condition]) -> Result<Finish, KeepReason> {
    let mut seen: Vec<&str> = Vec::new();
    let mut complete = None;
    let mut failed = None;
    let mut suspended = false;
    for condition in conditions {
        let Some(kind) = condition.type_.as_deref() else {
            return Err(KeepReason::MalformedCondition(
                "a condition has no type".to_owned(),
            ));
        };
        if seen.contains(&kind) {
            return Err(KeepReason::MalformedCondition(format!(
                "condition {kind} appears more than once"
            )));
        }
        seen.push(kind);
        let status = condition.status.as_deref().unwrap_or("");
        if !matches!(status, "True" | "False" | "Unknown") {
            return Err(KeepReason::MalformedCondition(format!(
                "condition {kind} has status {status:?}, not True, False or Unknown"
            )));
        }
        let is_true = status == "True";
        match kind {
            CONDITION_COMPLETE if is_true => complete = Some(condition_time(condition)),
            CONDITION_FAILED if is_true => failed = Some(condition_time(condition)),
            CONDITION_SUSPENDED => suspended = is_true,
            CONDITION_COMPLETE | CONDITION_FAILED | CONDITION_CREATED => {}
            other => return Err(KeepReason::UnknownCondition(other.to_owned())),
        }
    }

    let finish = |outcome, time, both| Finish {
        outcome,
        time,
        both,
    };
    match (complete, failed) {
        (None, None) => Err(KeepReason::NotFinished { suspended }),
        (Some(time), None) => Ok(finish(Outcome::Succeeded, time, false)),
        (None, Some(time)) => Ok(finish(Outcome::Failed, time, false)),
        // A time that cannot be used wins, so that the TrainJob is kept.
        (Some(Ok(completed)), Some(Ok(failed))) if completed > failed => {
            Ok(finish(Outcome::Succeeded, Ok(completed), true))
        }
        (Some(completed @ Err(_)), Some(_)) => Ok(finish(Outcome::Succeeded, completed, true)),
        (Some(_), Some(failed)) => Ok(finish(Outcome::Failed, failed, true)),
    }
}

fn condition_time(condition: &Condition) -> Result<Timestamp, String> {
    let kind = condition.type_.as_deref().unwrap_or_default();
    match condition.last_transition_time.as_deref() {
        None | Some("") => Err(format!(
            "condition {kind} is True but has no lastTransitionTime"
        )),
        Some(text) => parse_time(text)
            .map_err(|err| format!("lastTransitionTime {text:?} of condition {kind} {err}")),
    }
}

/// Parses a Kubernetes time, which is RFC 3339 (`2026-12-04T21:01:18Z`, optionally with a
/// fraction and a numeric offset). The ISO 8601 variants that jiff also reads (basic format,
/// bracketed time zones, six-digit years, `+0000` offsets, a comma before the fraction) are
/// rejected, so that a time written by something other than the API's own encoder is not trusted.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    if !is_rfc3339(text) {
        return Err("is not an RFC 3339 time such as 2026-12-04T21:01:18Z".to_owned());
    }
    text.parse::<Timestamp>()
        .map_err(|err| format!("is out of range or invalid ({err})"))
}

fn is_rfc3339(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|part| part.iter().all(u8::is_ascii_digit))
    };
    let fixed = bytes.len() >= 20
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && matches!(bytes[10], b'T' | b't')
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19);
    if !fixed {
        return false;
    }
    let mut rest = &bytes[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 {
            return false;
        }
        rest = &fraction[count..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|b| b.is_ascii_digit()),
        _ => false,
    }
}

/// Lists every other system that owns the TrainJob's lifecycle, in the order they are reported.
fn owners_elsewhere(job: &TrainJob) -> Vec<Owner> {
    let mut owners = Vec::new();
    // An empty managedBy is not Trainer's value either: Trainer's CRD allows only its own
    // controller and MultiKueue, so an empty one comes from something else.
    if let Some(manager) = job.managed_by.as_deref()
        && manager != TRAINER_MANAGER
    {
        owners.push(Owner::ManagedBy(manager.to_owned()));
    }
    if let Some(origin) = job.labels.get(LABEL_MULTIKUEUE_ORIGIN) {
        owners.push(Owner::MultiKueueCopy(origin.clone()));
    }
    if let Some(owner) = &job.controller_owner {
        owners.push(Owner::Controller {
            kind: owner.kind.clone(),
            name: owner.name.clone(),
        });
    }
    if job.annotations.contains_key(ANNOTATION_ARGOCD_TRACKING) {
        owners.push(Owner::GitOps(format!(
            "Argo CD annotation {ANNOTATION_ARGOCD_TRACKING}"
        )));
    }
    for label in [LABEL_ARGOCD_INSTANCE, LABEL_ARGOCD_CUSTOM_INSTANCE] {
        if let Some(instance) = job.labels.get(label) {
            owners.push(Owner::GitOps(format!("Argo CD label {label}={instance}")));
        }
    }
    let flux_label = job.labels.keys().find(|key| {
        LABEL_PREFIXES_FLUX
            .iter()
            .any(|prefix| key.starts_with(prefix))
    });
    if let Some(label) = flux_label {
        owners.push(Owner::GitOps(format!("Flux label {label}")));
    }
    owners
}

/// Finds a label under `trainjob-gc/`, or an annotation under it that is neither `keep` nor
/// `ttl`, such as `trainjob-gc/Keep` or `trainjob-gc/kepp`. It may be a misspelt or misplaced
/// keep, so it keeps the TrainJob.
fn unknown_annotation(job: &TrainJob) -> Option<KeepReason> {
    let under_prefix = |key: &String| key.to_ascii_lowercase().starts_with(ANNOTATION_PREFIX);
    // `kubectl label` in place of `kubectl annotate` puts the keep where it is not read.
    if let Some((key, value)) = job.labels.iter().find(|(key, _)| under_prefix(key)) {
        return Some(KeepReason::InvalidAnnotation {
            key: key.clone(),
            value: value.clone(),
            problem: "is set as a label, but trainjob-gc reads annotations; move it to \
                      metadata.annotations"
                .to_owned(),
        });
    }
    let known = [ANNOTATION_KEEP, ANNOTATION_TTL];
    let (key, value) = job
        .annotations
        .iter()
        .find(|(key, _)| under_prefix(key) && !known.contains(&key.as_str()))?;
    let lowered = key.to_ascii_lowercase();
    let closest = known
        .iter()
        .map(|name| (strsim::levenshtein(&lowered, name), name))
        .min()
        .filter(|(distance, _)| *distance <= 2);
    let hint = match closest {
        Some((_, name)) => format!("did you mean {name}?"),
        None => format!("the known ones are {ANNOTATION_KEEP} and {ANNOTATION_TTL}"),
    };
    Some(KeepReason::InvalidAnnotation {
        key: key.clone(),
        value: value.clone(),
        problem: format!("is not an annotation trainjob-gc reads ({hint}); fix or remove it"),
    })
}

fn is_included(owner: &Owner, policy: &Policy) -> bool {
    let include = &policy.include;
    match owner {
        Owner::ManagedBy(_) => include.managed_by,
        Owner::MultiKueueCopy(_) => include.multikueue_copy,
        Owner::Controller { .. } => include.owned,
        Owner::GitOps(_) => include.gitops,
    }
}

/// What the `trainjob-gc/ttl` annotation requests.
enum AnnotationTtl {
    Absent,
    Valid { ttl: Ttl, capped: bool },
    Invalid { value: String, problem: String },
}

fn annotation_ttl(job: &TrainJob, policy: &Policy) -> AnnotationTtl {
    let Some(value) = job.annotations.get(ANNOTATION_TTL) else {
        return AnnotationTtl::Absent;
    };
    let duration = match crate::duration::parse_duration(value) {
        Ok(duration) => duration,
        Err(problem) => {
            return AnnotationTtl::Invalid {
                value: value.clone(),
                problem,
            };
        }
    };
    match policy.max_ttl {
        Some(max) if duration > max => AnnotationTtl::Valid {
            ttl: Ttl {
                duration: max,
                source: "trainjob-gc/ttl capped by TRAINJOB_GC_MAX_TTL",
            },
            capped: true,
        },
        _ => AnnotationTtl::Valid {
            ttl: Ttl {
                duration,
                source: ANNOTATION_TTL,
            },
            capped: false,
        },
    }
}

/// When a TTL that started at `finished_at` runs out; `None` past the year 9999.
fn expiry(finished_at: Timestamp, ttl: Duration) -> Option<Timestamp> {
    let ttl = SignedDuration::try_from(ttl).ok()?;
    finished_at.checked_add(ttl).ok()
}

/// How much earlier than `creationTimestamp` a finish time may be and still be used, as the
/// creation time. A copied or restored object is much older than its creation.
pub const FINISH_BEFORE_CREATION_TOLERANCE: SignedDuration = SignedDuration::from_secs(60);

/// Decides whether one TrainJob is deleted, and why.
///
/// The checks run from the strongest reason to keep to the weakest: already being deleted,
/// opted out, owned elsewhere, not finished, no trustworthy finish time, then the TTL. A
/// `creationTimestamp` is never used as the age. It only rejects a finish time before it.
pub fn decide(job: &TrainJob, policy: &Policy, now: Timestamp) -> Verdict {
    if let Some(since) = &job.deletion_timestamp {
        // An unreadable deletionTimestamp is reported as stuck, so that someone looks at it.
        let stuck = since.parse::<Timestamp>().map_or(true, |since| {
            since < now && now.duration_since(since).unsigned_abs() > STUCK_TERMINATING_AFTER
        });
        let reason = KeepReason::Terminating {
            since: since.clone(),
            finalizers: job.finalizers.clone(),
            stuck,
        };
        return with_outcome(Verdict::keep(Outcome::Unknown, reason), job);
    }

    let mut ignored = Vec::new();
    let mut verdict = decide_retention(job, policy, now, &mut ignored);
    if !ignored.is_empty() {
        verdict.ignored_annotation = Some(ignored.join("; "));
    }
    with_outcome(verdict, job)
}

/// Fills in the outcome of a TrainJob kept before its conditions were read (terminating, opted
/// out, owned elsewhere), so that the report and the summary still count how it ended.
fn with_outcome(mut verdict: Verdict, job: &TrainJob) -> Verdict {
    if verdict.outcome == Outcome::Unknown {
        verdict.outcome = match read_conditions(&job.conditions) {
            Ok(finish) => finish.outcome,
            Err(KeepReason::NotFinished { .. }) => Outcome::Unfinished,
            Err(_) => Outcome::Unknown,
        };
    }
    verdict
}

/// Decides about a TrainJob that is not being deleted. Invalid annotations passed over under
/// `INVALID_ANNOTATION=policy` are added to `ignored`.
fn decide_retention(
    job: &TrainJob,
    policy: &Policy,
    now: Timestamp,
    ignored: &mut Vec<String>,
) -> Verdict {
    match job.annotations.get(ANNOTATION_KEEP).map(String::as_str) {
        Some("true") => return Verdict::keep(Outcome::Unknown, KeepReason::OptedOut),
        None | Some("false") => {}
        Some(other) => {
            // A keep annotation that does not parse still shows the intent to keep, so it keeps
            // the TrainJob whatever INVALID_ANNOTATION says.
            let reason = KeepReason::InvalidAnnotation {
                key: ANNOTATION_KEEP.to_owned(),
                value: other.to_owned(),
                problem: "is not \"true\" or \"false\"".to_owned(),
            };
            return Verdict::keep(Outcome::Unknown, reason);
        }
    }

    if let Some(reason) = unknown_annotation(job) {
        return Verdict::keep(Outcome::Unknown, reason);
    }

    // Every owner must be included: a TrainJob that Argo CD tracks stays even when its
    // spec.managedBy is included.
    let owners = owners_elsewhere(job);
    if let Some(owner) = owners.into_iter().find(|owner| !is_included(owner, policy)) {
        return Verdict::keep(Outcome::Unknown, KeepReason::OwnedElsewhere(owner));
    }

    let finish = match read_conditions(&job.conditions) {
        Ok(finish) => finish,
        Err(reason @ KeepReason::NotFinished { .. }) => {
            return Verdict::keep(Outcome::Unfinished, reason);
        }
        Err(reason) => return Verdict::keep(Outcome::Unknown, reason),
    };
    let verdict = |decision, finished_at, ttl, ttl_capped| Verdict {
        outcome: finish.outcome,
        finished_at,
        ttl,
        decision,
        both_terminal_conditions: finish.both,
        ignored_annotation: None,
        ttl_capped,
    };

    let finished_at = match finish.time {
        Ok(time) => time,
        Err(problem) => {
            let reason = KeepReason::FinishTimeUnknown(problem);
            return verdict(Decision::Keep(reason), None, None, false);
        }
    };
    // The API server always sets creationTimestamp. Without a readable one the finish time
    // cannot be checked against it, so the TrainJob stays.
    let created = match job
        .creation_timestamp
        .as_deref()
        .map(|t| (t, parse_time(t)))
    {
        Some((_, Ok(created))) => created,
        Some((text, Err(problem))) => {
            let reason = KeepReason::FinishTimeUnknown(format!(
                "creationTimestamp {text:?} {problem}, so the finish time cannot be checked \
                 against it"
            ));
            return verdict(Decision::Keep(reason), None, None, false);
        }
        None => {
            let reason = KeepReason::FinishTimeUnknown(
                "metadata.creationTimestamp is missing, so the finish time cannot be checked \
                 against it"
                    .to_owned(),
            );
            return verdict(Decision::Keep(reason), None, None, false);
        }
    };
    // Trainer stamps lastTransitionTime with its own clock and the API server stamps the
    // creation, so a TrainJob that fails at once may seem to finish a moment before it was
    // created. Within the tolerance it counts as finished at its creation, the later time.
    let finished_at = if finished_at >= created {
        finished_at
    } else if created.duration_since(finished_at) <= FINISH_BEFORE_CREATION_TOLERANCE {
        created
    } else {
        let reason = KeepReason::FinishTimeUnknown(format!(
            "finish time {finished_at} is earlier than the creation time {created}, which the API \
             server sets itself; a copied or restored object keeps old conditions"
        ));
        return verdict(Decision::Keep(reason), None, None, false);
    };
    if finished_at > now {
        let reason = KeepReason::FinishedInFuture {
            ahead: finished_at.duration_since(now),
        };
        return verdict(Decision::Keep(reason), Some(finished_at), None, false);
    }

    // Under delete_on_completion both policy TTLs are zero. When both conditions are True the
    // longer TTL applies, so that a failure kept for debugging is not deleted early.
    let policy_ttl = match finish.outcome {
        _ if finish.both => {
            std::cmp::max_by_key(policy.ttl_succeeded, policy.ttl_failed, |ttl| ttl.duration)
        }
        Outcome::Succeeded => policy.ttl_succeeded,
        _ => policy.ttl_failed,
    };
    let (ttl, capped) = match annotation_ttl(job, policy) {
        AnnotationTtl::Absent => (policy_ttl, false),
        AnnotationTtl::Valid { ttl, capped } => (ttl, capped),
        AnnotationTtl::Invalid { value, problem } => {
            if policy.invalid_annotation == InvalidAnnotation::Keep {
                let reason = KeepReason::InvalidAnnotation {
                    key: ANNOTATION_TTL.to_owned(),
                    value,
                    problem,
                };
                return verdict(Decision::Keep(reason), Some(finished_at), None, false);
            }
            ignored.push(format!("{ANNOTATION_TTL}={value:?} {problem}"));
            (policy_ttl, false)
        }
    };

    let decision = match expiry(finished_at, ttl.duration) {
        Some(expires_at) if expires_at <= now => Decision::Delete,
        expires_at => Decision::Keep(KeepReason::NotExpired { expires_at }),
    };
    verdict(decision, Some(finished_at), Some(ttl), capped)
}

/// True when the verdict makes the TrainJob count toward `KEEP_LAST`: it finished at a trusted
/// time and only its TTL decides about it.
pub fn counts_for_keep_last(verdict: &Verdict) -> bool {
    matches!(
        verdict.decision,
        Decision::Delete | Decision::Keep(KeepReason::NotExpired { .. })
    ) && verdict.finished_at.is_some()
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
