//! The decision as a table of named cases, the text it gives, and a property over generated
//! TrainJobs, policies and clocks.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::fixtures::{NOW, ago, ahead, at, now, span};
use super::*;
use crate::config::Include;
use crate::trainjob::ControllerOwner;

const KUEUE_MANAGER: &str = "kueue.x-k8s.io/multikueue";
const FLUX_KUSTOMIZE: &str = "kustomize.toolkit.fluxcd.io/name";
const FLUX_HELM: &str = "helm.toolkit.fluxcd.io/name";

/// What a case expects of the verdict.
#[derive(Debug)]
struct Expect {
    rule: &'static str,
    /// Seconds since the TTL ran out, for a deletion.
    delete_overdue: Option<i64>,
    /// A part of [`Verdict::reason`].
    reason: &'static str,
    outcome: Option<Outcome>,
    both: bool,
    capped: bool,
    /// A part of [`Verdict::ignored_annotation`].
    ignored: Option<&'static str>,
}

fn delete(rule: &'static str, overdue_seconds: i64) -> Expect {
    Expect {
        rule,
        delete_overdue: Some(overdue_seconds),
        reason: "",
        outcome: None,
        both: false,
        capped: false,
        ignored: None,
    }
}

fn keep(rule: &'static str, reason: &'static str) -> Expect {
    Expect {
        rule,
        delete_overdue: None,
        reason,
        outcome: None,
        both: false,
        capped: false,
        ignored: None,
    }
}

impl Expect {
    fn outcome(mut self, outcome: Outcome) -> Expect {
        self.outcome = Some(outcome);
        self
    }

    fn both(mut self) -> Expect {
        self.both = true;
        self
    }

    fn capped(mut self) -> Expect {
        self.capped = true;
        self
    }

    fn ignoring(mut self, annotation: &'static str) -> Expect {
        self.ignored = Some(annotation);
        self
    }
}

struct Case {
    name: String,
    job: TrainJob,
    policy: Policy,
    now: Timestamp,
    expect: Expect,
}

fn case(name: impl Into<String>, job: TrainJob, policy: Policy, expect: Expect) -> Case {
    Case {
        name: name.into(),
        job,
        policy,
        now: now(),
        expect,
    }
}

fn week() -> Policy {
    Policy::test_ttl("7d")
}

/// Succeeded after 1 day, failed after 14 days.
fn per_outcome() -> Policy {
    Policy::test_ttl("7d").ttl_succeeded("1d").ttl_failed("14d")
}

fn job() -> TrainJob {
    TrainJob::test("a")
}

/// Builds a job that completed 8 days ago, one day past the 7-day policy.
fn expired() -> TrainJob {
    job().completed_at(ago("8d"))
}

const DAY: i64 = 86_400;

fn finish_cases() -> Vec<Case> {
    vec![
        case(
            "completed past TTL is deleted",
            expired(),
            week(),
            delete("ttl", DAY).outcome(Outcome::Succeeded),
        ),
        case(
            "failed past TTL is deleted",
            job().failed_at(ago("8d")),
            week(),
            delete("ttl", DAY).outcome(Outcome::Failed),
        ),
        case(
            "completed within TTL is kept",
            job().completed_at(ago("6d")),
            week(),
            keep("ttl", "not reached").outcome(Outcome::Succeeded),
        ),
        case(
            "expiry exactly now is deleted",
            job().completed_at(ago("7d")),
            week(),
            delete("ttl", 0),
        ),
        case(
            "one second before expiry is kept",
            job().completed_at(ago("6d 23h 59m 59s")),
            week(),
            keep("ttl", "(in 1s)"),
        ),
        case(
            "zero TTL at the finish second is deleted",
            job().completed_at(now()),
            Policy::test_delete_on_completion(),
            delete("ttl", 0),
        ),
        case(
            "delete_on_completion deletes a failed job",
            job().failed_at(ago("1s")),
            Policy::test_delete_on_completion(),
            delete("ttl", 1).outcome(Outcome::Failed),
        ),
        case(
            "TTL_SUCCEEDED applies to a completed job",
            job().completed_at(ago("2d")),
            per_outcome(),
            delete("ttl", DAY),
        ),
        case(
            "TTL_FAILED applies to a failed job",
            job().failed_at(ago("2d")),
            per_outcome(),
            keep("ttl", "14d from TRAINJOB_GC_TTL_FAILED"),
        ),
        case(
            "creation time is never the age",
            job().created_at(ago("400d")).completed_at(ago("1d")),
            week(),
            keep("ttl", "not reached"),
        ),
        case(
            "finish at the creation second counts",
            job().created_at(ago("8d")).completed_at(ago("8d")),
            week(),
            delete("ttl", DAY),
        ),
        case(
            "unreadable creation time keeps",
            expired().created_at_text("last week"),
            week(),
            keep("finish-time-unknown", "creationTimestamp \"last week\""),
        ),
        case(
            "missing creation time keeps",
            TrainJob {
                creation_timestamp: None,
                ..expired()
            },
            week(),
            keep("finish-time-unknown", "creationTimestamp is missing"),
        ),
        case(
            "TTL past year 9999 is kept",
            expired(),
            Policy::test_ttl("10000y"),
            keep("ttl", "beyond the year 9999"),
        ),
    ]
}

fn condition_cases() -> Vec<Case> {
    let time = ago("8d").to_string();
    let time = Some(time.as_str());
    vec![
        case(
            "missing status is not finished",
            job(),
            week(),
            keep("not-finished", "neither Complete nor Failed").outcome(Outcome::Unfinished),
        ),
        case(
            "running job is not finished",
            job()
                .condition("Created", "True", time)
                .condition("Complete", "False", time),
            week(),
            keep("not-finished", "not finished").outcome(Outcome::Unfinished),
        ),
        case(
            "Complete Unknown is not finished",
            job().condition("Complete", "Unknown", time),
            week(),
            keep("not-finished", "not finished"),
        ),
        case(
            "suspended job is not finished",
            job().suspended(),
            week(),
            keep("not-finished", "suspended").outcome(Outcome::Unfinished),
        ),
        case(
            "suspended and failed is finished",
            job().suspended().failed_at(ago("15d")),
            per_outcome(),
            delete("ttl", DAY).outcome(Outcome::Failed),
        ),
        case(
            "unknown condition type is kept",
            expired().condition("Evicted", "True", time),
            week(),
            keep("unknown-condition", "\"Evicted\"").outcome(Outcome::Unknown),
        ),
        case(
            "lowercase true status is malformed",
            job().condition("Complete", "true", time),
            week(),
            keep("malformed", "status \"true\""),
        ),
        case(
            "duplicate condition type is malformed",
            expired().completed_at(ago("9d")),
            week(),
            keep("malformed", "Complete appears more than once"),
        ),
        case(
            "condition without type is malformed",
            expired().raw_condition(Condition {
                status: Some("True".to_owned()),
                ..Condition::default()
            }),
            week(),
            keep("malformed", "has no type"),
        ),
        case(
            "condition without status is malformed",
            job().raw_condition(Condition {
                type_: Some("Complete".to_owned()),
                last_transition_time: time.map(str::to_owned),
                ..Condition::default()
            }),
            week(),
            keep("malformed", "status \"\""),
        ),
        case(
            "missing lastTransitionTime is unknown",
            job().condition("Complete", "True", None),
            week(),
            keep("finish-time-unknown", "has no lastTransitionTime").outcome(Outcome::Succeeded),
        ),
        case(
            "empty lastTransitionTime is unknown",
            job().condition("Failed", "True", Some("")),
            week(),
            keep("finish-time-unknown", "has no lastTransitionTime"),
        ),
        case(
            "unparsable lastTransitionTime is unknown",
            job().condition("Complete", "True", Some("yesterday")),
            week(),
            keep("finish-time-unknown", "\"yesterday\""),
        ),
        case(
            "finish before creation is unknown",
            job().created_at(ago("7d")).completed_at(ago("8d")),
            week(),
            keep("finish-time-unknown", "earlier than the creation time"),
        ),
        case(
            "finish 61s before creation is unknown",
            job().created_at(ago("8d")).completed_at(ago("8d 61s")),
            week(),
            keep("finish-time-unknown", "earlier than the creation time"),
        ),
        case(
            "finish 60s before creation counts from creation",
            job().created_at(ago("8d")).completed_at(ago("8d 60s")),
            week(),
            delete("ttl", DAY),
        ),
        case(
            "finish 1s before creation counts from creation",
            job().created_at(ago("7d 10s")).completed_at(ago("7d 11s")),
            week(),
            delete("ttl", 10),
        ),
        case(
            "finish in the future is kept",
            job().created_at(ago("1d")).completed_at(ahead("1h")),
            Policy::test_delete_on_completion(),
            keep("clock-skew", "1h ahead of the run's clock"),
        ),
    ]
}

fn both_true_cases() -> Vec<Case> {
    vec![
        case(
            "both true takes the later failure",
            job().completed_at(ago("9d")).failed_at(ago("3d")),
            per_outcome(),
            keep("ttl", "TRAINJOB_GC_TTL_FAILED")
                .outcome(Outcome::Failed)
                .both(),
        ),
        case(
            "both true keeps for the longer TTL",
            job().failed_at(ago("9d")).completed_at(ago("3d")),
            per_outcome(),
            keep("ttl", "TRAINJOB_GC_TTL_FAILED")
                .outcome(Outcome::Succeeded)
                .both(),
        ),
        case(
            "both true past the longer TTL",
            job().failed_at(ago("20d")).completed_at(ago("16d")),
            per_outcome(),
            delete("ttl", 2 * DAY).outcome(Outcome::Succeeded).both(),
        ),
        case(
            "both true at once takes failure",
            job().completed_at(ago("3d")).failed_at(ago("3d")),
            per_outcome(),
            keep("ttl", "TRAINJOB_GC_TTL_FAILED")
                .outcome(Outcome::Failed)
                .both(),
        ),
        case(
            "both true at once in reverse order",
            job().failed_at(ago("3d")).completed_at(ago("3d")),
            per_outcome(),
            keep("ttl", "TRAINJOB_GC_TTL_FAILED")
                .outcome(Outcome::Failed)
                .both(),
        ),
        case(
            "both true with one unusable time",
            job()
                .completed_at(ago("9d"))
                .condition("Failed", "True", Some("soon")),
            per_outcome(),
            keep("finish-time-unknown", "\"soon\"").both(),
        ),
    ]
}

fn terminating_and_opt_out_cases() -> Vec<Case> {
    vec![
        case(
            "terminating job is kept",
            expired().deleting_since(ago("1m"), &["example.com/archive"]),
            week(),
            keep("terminating", "held by finalizers example.com/archive"),
        ),
        case(
            "terminating wins over the keep annotation",
            expired()
                .annotated(ANNOTATION_KEEP, "true")
                .deleting_since(ago("1m"), &[]),
            week(),
            keep("terminating", "already being deleted since"),
        ),
        case(
            "keep annotation keeps an expired job",
            expired().annotated(ANNOTATION_KEEP, "true"),
            week(),
            keep("keep-annotation", "opted out"),
        ),
        case(
            "keep annotation wins over everything else",
            expired()
                .annotated(ANNOTATION_KEEP, "true")
                .annotated(ANNOTATION_TTL, "0s")
                .managed_by(KUEUE_MANAGER)
                .owned_by("Workflow", "w"),
            Policy::test_delete_on_completion().including(&[
                "managed-by",
                "multikueue-copy",
                "owned",
                "gitops",
            ]),
            keep("keep-annotation", "opted out"),
        ),
        case(
            "keep annotation on unfinished job",
            job().annotated(ANNOTATION_KEEP, "true"),
            week(),
            keep("keep-annotation", "opted out"),
        ),
        case(
            "keep false is no opt out",
            expired().annotated(ANNOTATION_KEEP, "false"),
            week(),
            delete("ttl", DAY),
        ),
        case(
            "keep yes is invalid and kept",
            expired().annotated(ANNOTATION_KEEP, "yes"),
            week(),
            keep("invalid-annotation", "trainjob-gc/keep=\"yes\""),
        ),
        case(
            "keep True is invalid and kept",
            expired().annotated(ANNOTATION_KEEP, "True"),
            week(),
            keep(
                "invalid-annotation",
                "whatever TRAINJOB_GC_INVALID_ANNOTATION says",
            ),
        ),
        case(
            "capitalised keep key is kept",
            expired().annotated("trainjob-gc/Keep", "true"),
            week(),
            keep("invalid-annotation", "did you mean trainjob-gc/keep?"),
        ),
        case(
            "misspelt keep key is kept",
            expired().annotated("trainjob-gc/kepp", "true"),
            week().on_invalid_annotation_use_policy(),
            keep(
                "invalid-annotation",
                "trainjob-gc/kepp=\"true\" is not an annotation",
            ),
        ),
        case(
            "unrelated key under the prefix is kept",
            expired().annotated("Trainjob-GC/owner", "alice"),
            week(),
            keep("invalid-annotation", "the known ones are trainjob-gc/keep"),
        ),
        case(
            "keep set as a label is kept",
            expired().labelled("trainjob-gc/keep", "true"),
            week(),
            keep("invalid-annotation", "is set as a label"),
        ),
        case(
            "unrelated key gets no suggestion",
            expired().annotated("trainjob-gc/note", "x"),
            week(),
            keep("invalid-annotation", "the known ones are"),
        ),
        case(
            "other prefixes are ignored",
            expired().annotated("trainjob-gc.example.com/keep", "true"),
            week(),
            delete("ttl", DAY),
        ),
        case(
            "keep yes under policy still keeps",
            expired().annotated(ANNOTATION_KEEP, "yes"),
            week().on_invalid_annotation_use_policy(),
            keep("invalid-annotation", "trainjob-gc/keep=\"yes\""),
        ),
        case(
            "keep yes on unfinished job",
            job().annotated(ANNOTATION_KEEP, "yes"),
            week().on_invalid_annotation_use_policy(),
            keep("invalid-annotation", "trainjob-gc/keep=\"yes\""),
        ),
    ]
}

fn ttl_annotation_cases() -> Vec<Case> {
    vec![
        case(
            "annotation longer than policy keeps",
            expired().annotated(ANNOTATION_TTL, "30d"),
            week(),
            keep("ttl-annotation", "30d from trainjob-gc/ttl"),
        ),
        case(
            "annotation shorter than policy deletes",
            job()
                .completed_at(ago("1d"))
                .annotated(ANNOTATION_TTL, "1h"),
            week(),
            delete("ttl-annotation", 23 * 3600),
        ),
        case(
            "annotation overrides TTL_FAILED",
            job().failed_at(ago("2d")).annotated(ANNOTATION_TTL, "1d"),
            per_outcome(),
            delete("ttl-annotation", DAY),
        ),
        case(
            "annotation zero deletes at once",
            job().completed_at(now()).annotated(ANNOTATION_TTL, "0s"),
            week(),
            delete("ttl-annotation", 0),
        ),
        case(
            "annotation capped by MAX_TTL",
            job()
                .completed_at(ago("11d"))
                .annotated(ANNOTATION_TTL, "30d"),
            week().max_ttl("10d"),
            delete("ttl-annotation", DAY).capped(),
        ),
        case(
            "annotation below MAX_TTL is not capped",
            expired().annotated(ANNOTATION_TTL, "9d"),
            week().max_ttl("10d"),
            keep("ttl-annotation", "9d from trainjob-gc/ttl not reached"),
        ),
        case(
            "annotation overrides delete_on_completion",
            job()
                .completed_at(ago("1h"))
                .annotated(ANNOTATION_TTL, "1d"),
            Policy::test_delete_on_completion(),
            keep("ttl-annotation", "not reached"),
        ),
        case(
            "annotation past year 9999 is kept",
            expired().annotated(ANNOTATION_TTL, "10000y"),
            week(),
            keep("ttl-annotation", "beyond the year 9999"),
        ),
    ]
}

fn invalid_annotation_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (value, problem) in [
        ("10ay", "unknown unit \"ay\""),
        ("-5m", "is negative"),
        ("forever", "is not a duration"),
        ("3600", "write 3600s"),
    ] {
        cases.push(case(
            format!("invalid TTL annotation {value} is kept"),
            expired().annotated(ANNOTATION_TTL, value),
            week(),
            keep("invalid-annotation", problem).outcome(Outcome::Succeeded),
        ));
        cases.push(case(
            format!("invalid TTL annotation {value} under policy"),
            expired().annotated(ANNOTATION_TTL, value),
            week().on_invalid_annotation_use_policy(),
            delete("ttl", DAY).ignoring(problem),
        ));
    }
    cases.push(case(
        "both annotations invalid under policy",
        expired()
            .annotated(ANNOTATION_KEEP, "yes")
            .annotated(ANNOTATION_TTL, "forever"),
        week().on_invalid_annotation_use_policy(),
        keep("invalid-annotation", "trainjob-gc/keep=\"yes\""),
    ));
    cases
}

fn owner_cases() -> Vec<Case> {
    let owned = [
        (
            "managed by Kueue",
            expired().managed_by(KUEUE_MANAGER),
            "managed-by",
            "spec.managedBy is \"kueue.x-k8s.io/multikueue\"",
        ),
        (
            "MultiKueue worker copy",
            expired().labelled(LABEL_MULTIKUEUE_ORIGIN, "manager-1"),
            "multikueue-copy",
            "MultiKueue worker copy",
        ),
        (
            "controlled by a Workflow",
            expired().owned_by("Workflow", "nightly"),
            "owned",
            "controlled by Workflow nightly",
        ),
        (
            "tracked by an Argo CD annotation",
            expired().annotated(ANNOTATION_ARGOCD_TRACKING, "app:trainer/TrainJob:team-a/a"),
            "gitops",
            "Argo CD annotation",
        ),
        (
            "tracked by an Argo CD label",
            expired().labelled(LABEL_ARGOCD_INSTANCE, "research"),
            "gitops",
            "Argo CD label app.kubernetes.io/instance=research",
        ),
        (
            "applied by Flux kustomize",
            expired().labelled(FLUX_KUSTOMIZE, "jobs"),
            "gitops",
            "Flux label kustomize.toolkit.fluxcd.io/name",
        ),
        (
            "applied by Flux helm",
            expired().labelled(FLUX_HELM, "jobs"),
            "gitops",
            "Flux label helm.toolkit.fluxcd.io/name",
        ),
    ];
    let mut cases = Vec::new();
    for (name, job, kind, reason) in owned {
        cases.push(case(
            format!("{name} is kept"),
            job.clone(),
            week(),
            keep("owned-elsewhere", reason),
        ));
        cases.push(case(
            format!("{name} with INCLUDE={kind} is deleted"),
            job,
            week().including(&[kind]),
            delete("ttl", DAY),
        ));
    }
    cases.extend([
        case(
            "managed by Trainer is not elsewhere",
            expired().managed_by(TRAINER_MANAGER),
            week(),
            delete("ttl", DAY),
        ),
        case(
            "empty managedBy is elsewhere",
            expired().managed_by(""),
            week(),
            keep("owned-elsewhere", "spec.managedBy is \"\""),
        ),
        case(
            "every owner must be included",
            expired()
                .managed_by(KUEUE_MANAGER)
                .labelled(LABEL_ARGOCD_INSTANCE, "research"),
            week().including(&["managed-by"]),
            keep("owned-elsewhere", "Argo CD label"),
        ),
        case(
            "Argo CD custom instance label keeps",
            expired().labelled(LABEL_ARGOCD_CUSTOM_INSTANCE, "research"),
            week(),
            keep(
                "owned-elsewhere",
                "Argo CD label argocd.argoproj.io/instance=research",
            ),
        ),
        case(
            "owned and included but unfinished",
            job().owned_by("Workflow", "nightly"),
            week().including(&["owned"]),
            keep("not-finished", "not finished"),
        ),
    ]);
    cases
}

fn check(case: &Case) -> Vec<String> {
    let verdict = decide(&case.job, &case.policy, case.now);
    let expect = &case.expect;
    let reason = verdict.reason(case.now);

    let mut wrong = Vec::new();
    if verdict.rule() != expect.rule {
        wrong.push(format!(
            "rule {:?}, expected {:?}",
            verdict.rule(),
            expect.rule
        ));
    }
    match (expect.delete_overdue, &verdict.decision) {
        (Some(overdue), Decision::Delete) => {
            if verdict.overdue_seconds(case.now) != Some(overdue) {
                wrong.push(format!(
                    "overdue {:?} seconds, expected {overdue}",
                    verdict.overdue_seconds(case.now)
                ));
            }
        }
        (Some(_), Decision::Keep(kept)) => wrong.push(format!("kept ({kept:?}), expected delete")),
        (None, Decision::Delete) => wrong.push("deleted, expected keep".to_owned()),
        (None, Decision::Keep(_)) => {}
    }

    if !reason.contains(expect.reason) {
        wrong.push(format!("reason {reason:?} lacks {:?}", expect.reason));
    }

    if let Some(outcome) = expect.outcome
        && verdict.outcome != outcome
    {
        wrong.push(format!(
            "outcome {:?}, expected {outcome:?}",
            verdict.outcome
        ));
    }
    if verdict.both_terminal_conditions != expect.both {
        wrong.push(format!(
            "both_terminal_conditions {}",
            verdict.both_terminal_conditions
        ));
    }
    if verdict.ttl_capped != expect.capped {
        wrong.push(format!("ttl_capped {}", verdict.ttl_capped));
    }
    match (expect.ignored, &verdict.ignored_annotation) {
        (None, None) => {}
        (Some(part), Some(ignored)) if ignored.contains(part) => {}
        (expected, actual) => wrong.push(format!(
            "ignored_annotation {actual:?}, expected {expected:?}"
        )),
    }

    wrong
        .into_iter()
        .map(|problem| format!("{}: {problem}", case.name))
        .collect()
}

fn run_table(cases: Vec<Case>) {
    let failures: Vec<String> = cases.iter().flat_map(check).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn finish_time_and_ttl_table() {
    run_table(finish_cases());
}

#[test]
fn conditions_table() {
    run_table(condition_cases());
}

#[test]
fn both_terminal_conditions_table() {
    run_table(both_true_cases());
}

#[test]
fn terminating_and_keep_annotation_table() {
    run_table(terminating_and_opt_out_cases());
}

#[test]
fn ttl_annotation_table() {
    run_table(ttl_annotation_cases());
}

#[test]
fn invalid_annotation_table() {
    run_table(invalid_annotation_cases());
}

#[test]
fn owned_elsewhere_table() {
    run_table(owner_cases());
}

#[test]
fn deletion_reason_names_ttl_and_overdue() {
    let verdict = decide(&expired(), &week(), now());
    assert_eq!(
        verdict.reason(now()),
        "finished 8d ago, TTL 7d from TRAINJOB_GC_TTL passed 1d ago"
    );
}

#[test]
fn not_expired_reason_gives_expiry() {
    let verdict = decide(&job().completed_at(ago("6d")), &week(), now());
    assert_eq!(
        verdict.reason(now()),
        "TTL 7d from TRAINJOB_GC_TTL not reached: expires at 2026-03-11T00:00:00Z (in 1d)"
    );
}

#[test]
fn invalid_annotation_reason_names_value_and_fix() {
    let job = expired().annotated(ANNOTATION_TTL, "3600");
    let verdict = decide(&job, &week(), now());
    assert_eq!(
        verdict.reason(now()),
        "annotation trainjob-gc/ttl=\"3600\" has no unit; write 3600s for seconds, or use larger \
         units such as 1h or 7d; kept (TRAINJOB_GC_INVALID_ANNOTATION=keep)"
    );
}

#[test]
fn owned_elsewhere_reason_names_include() {
    let verdict = decide(&expired().owned_by("Workflow", "nightly"), &week(), now());
    assert_eq!(
        verdict.reason(now()),
        "controlled by Workflow nightly (ownerReference), which deletes it; include it with \
         TRAINJOB_GC_INCLUDE=owned"
    );
}

#[test]
fn terminating_reason_without_finalizers() {
    let verdict = decide(
        &expired().deleting_since(at("2026-03-09T23:59:00Z"), &[]),
        &week(),
        now(),
    );
    assert_eq!(
        verdict.reason(now()),
        "already being deleted since 2026-03-09T23:59:00Z"
    );
}

#[test]
fn clock_skew_reason_gives_lead() {
    let job = job().created_at(ago("1d")).completed_at(ahead("90s"));
    let verdict = decide(&job, &week(), now());
    assert_eq!(
        verdict.reason(now()),
        "finish time is 1m 30s ahead of the run's clock (the API server's, or --now), a clock skew; kept until then"
    );
}

#[test]
fn rule_of_every_keep_reason() {
    let cases = [
        (
            KeepReason::Terminating {
                since: NOW.to_owned(),
                finalizers: vec![],
                stuck: false,
            },
            "terminating",
        ),
        (KeepReason::OptedOut, "keep-annotation"),
        (
            KeepReason::OwnedElsewhere(Owner::GitOps("Flux label x".to_owned())),
            "owned-elsewhere",
        ),
        (KeepReason::NotFinished { suspended: true }, "not-finished"),
        (
            KeepReason::UnknownCondition("Evicted".to_owned()),
            "unknown-condition",
        ),
        (
            KeepReason::MalformedCondition("no type".to_owned()),
            "malformed",
        ),
        (
            KeepReason::FinishTimeUnknown("none".to_owned()),
            "finish-time-unknown",
        ),
        (
            KeepReason::FinishedInFuture {
                ahead: SignedDuration::from_secs(5),
            },
            "clock-skew",
        ),
        (
            KeepReason::InvalidAnnotation {
                key: ANNOTATION_TTL.to_owned(),
                value: "x".to_owned(),
                problem: "is not a duration".to_owned(),
            },
            "invalid-annotation",
        ),
        (KeepReason::NotExpired { expires_at: None }, "ttl"),
        (
            KeepReason::KeepLast {
                rank: 1,
                keep_last: 3,
            },
            "keep-last",
        ),
        (KeepReason::Malformed("not JSON".to_owned()), "malformed"),
        (
            KeepReason::Recreated {
                new_uid: "u2".to_owned(),
            },
            "recreated",
        ),
    ];
    for (reason, rule) in cases {
        let verdict = Verdict::keep(Outcome::Unknown, reason.clone());
        assert_eq!(verdict.rule(), rule, "{reason:?}");
        assert!(!verdict.reason(now()).is_empty(), "{reason:?}");
    }
}

#[test]
fn rule_of_deletion_names_ttl_source() {
    let by_policy = decide(&expired(), &week(), now());
    assert_eq!(by_policy.rule(), "ttl");
    let by_annotation = decide(&expired().annotated(ANNOTATION_TTL, "1d"), &week(), now());
    assert_eq!(by_annotation.rule(), "ttl-annotation");
    let capped = decide(
        &expired().annotated(ANNOTATION_TTL, "30d"),
        &week().max_ttl("1d"),
        now(),
    );
    assert_eq!(capped.rule(), "ttl-annotation");
}

#[test]
fn terminating_for_long_is_stuck() {
    let recent = decide(&expired().deleting_since(ago("1m"), &["f"]), &week(), now());
    assert!(!recent.is_anomaly());
    let old = decide(&expired().deleting_since(ago("1h"), &["f"]), &week(), now());
    assert!(old.is_anomaly());
    let mut unreadable = expired();
    unreadable.deletion_timestamp = Some("soon".to_owned());
    assert!(decide(&unreadable, &week(), now()).is_anomaly());
}

#[test]
fn keep_last_counts_only_ttl_decisions() {
    let due = decide(&expired(), &week(), now());
    assert!(counts_for_keep_last(&due));
    let waiting = decide(&job().completed_at(ago("1d")), &week(), now());
    assert!(counts_for_keep_last(&waiting));
    let beyond = decide(&expired(), &Policy::test_ttl("10000y"), now());
    assert!(counts_for_keep_last(&beyond));
    let skewed = decide(
        &job().created_at(ago("1d")).completed_at(ahead("1h")),
        &week(),
        now(),
    );
    assert!(!counts_for_keep_last(&skewed));
    let opted_out = decide(
        &expired().annotated(ANNOTATION_KEEP, "true"),
        &week(),
        now(),
    );
    assert!(!counts_for_keep_last(&opted_out));
}

// The property: whatever the TrainJob, policy and clock, a deletion rests on a finish time the
// conditions state, every keep rule was passed, and the TTL that applies has run out.

const BASE_SECONDS: i64 = 1_773_100_800; // 2026-03-10T00:00:00Z
const SPREAD_SECONDS: i64 = 400 * 86_400;

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (-SPREAD_SECONDS..SPREAD_SECONDS)
        .prop_map(|offset| Timestamp::from_second(BASE_SECONDS + offset).expect("in range"))
}

fn time_text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => timestamp().prop_map(|time| Some(time.to_string())),
        1 => Just(None),
        1 => Just(Some(String::new())),
        1 => Just(Some("yesterday".to_owned())),
        1 => Just(Some("2026-03-10T00:00:00".to_owned())),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    let kind = prop_oneof![
        4 => Just(Some("Complete".to_owned())),
        4 => Just(Some("Failed".to_owned())),
        2 => Just(Some("Suspended".to_owned())),
        1 => Just(Some("Created".to_owned())),
        1 => Just(Some("Evicted".to_owned())),
        1 => Just(None),
    ];
    let status = prop_oneof![
        6 => Just(Some("True".to_owned())),
        2 => Just(Some("False".to_owned())),
        1 => Just(Some("Unknown".to_owned())),
        1 => Just(Some("true".to_owned())),
        1 => Just(None),
    ];
    (kind, status, time_text()).prop_map(|(type_, status, last_transition_time)| Condition {
        type_,
        status,
        reason: None,
        last_transition_time,
    })
}

fn optional(values: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        2 => proptest::sample::select(values).prop_map(|value| Some(value.to_owned())),
    ]
}

const TTL_VALUES: &[&str] = &[
    "0s", "1h", "1d", "7d", "30d", "10000y", "3600", "10ay", "-5m", "forever", "",
];

prop_compose! {
    fn trainjob()(
        conditions in proptest::collection::vec(condition(), 0..5),
        created in time_text(),
        deleting in proptest::option::weighted(0.15, time_text()),
        keep in optional(&["true", "false", "yes", "True", ""]),
        ttl in optional(TTL_VALUES),
        managed_by in optional(&["", TRAINER_MANAGER, KUEUE_MANAGER]),
        multikueue in proptest::bool::weighted(0.15),
        controller in proptest::bool::weighted(0.15),
        argo_annotation in proptest::bool::weighted(0.1),
        argo_label in proptest::bool::weighted(0.1),
        flux_label in proptest::bool::weighted(0.1),
    ) -> TrainJob {
        let mut job = TrainJob::test("generated");
        job.conditions = conditions;
        job.creation_timestamp = created;
        if let Some(since) = deleting {
            job.deletion_timestamp = Some(since.unwrap_or_else(|| NOW.to_owned()));
        }
        if let Some(keep) = keep {
            job.annotations.insert(ANNOTATION_KEEP.to_owned(), keep);
        }
        if let Some(ttl) = ttl {
            job.annotations.insert(ANNOTATION_TTL.to_owned(), ttl);
        }
        job.managed_by = managed_by;
        if multikueue {
            job.labels.insert(LABEL_MULTIKUEUE_ORIGIN.to_owned(), "manager".to_owned());
        }
        if controller {
            job.controller_owner = Some(ControllerOwner { kind: "Workflow".to_owned(), name: "w".to_owned() });
        }
        if argo_annotation {
            job.annotations.insert(ANNOTATION_ARGOCD_TRACKING.to_owned(), "app".to_owned());
        }
        if argo_label {
            job.labels.insert(LABEL_ARGOCD_INSTANCE.to_owned(), "app".to_owned());
        }
        if flux_label {
            job.labels.insert(FLUX_KUSTOMIZE.to_owned(), "jobs".to_owned());
        }
        job
    }
}

fn ttl_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        (0u64..90 * 86_400).prop_map(Duration::from_secs),
        Just(span("10000y")),
    ]
}

prop_compose! {
    fn policy()(
        delete_on_completion in proptest::bool::weighted(0.2),
        succeeded in ttl_duration(),
        failed in ttl_duration(),
        max_ttl in proptest::option::of(ttl_duration()),
        use_policy in any::<bool>(),
        include in any::<[bool; 4]>(),
    ) -> Policy {
        let mut policy = if delete_on_completion {
            Policy::test_delete_on_completion()
        } else {
            let mut policy = Policy::test_ttl("0s");
            policy.ttl_succeeded.duration = succeeded;
            policy.ttl_failed.duration = failed;
            policy
        };
        policy.max_ttl = max_ttl;
        if use_policy {
            policy.invalid_annotation = InvalidAnnotation::Policy;
        }
        policy.include = Include {
            managed_by: include[0],
            multikueue_copy: include[1],
            owned: include[2],
            gitops: include[3],
        };
        policy
    }
}

/// Lists the owner kinds of a TrainJob by `TRAINJOB_GC_INCLUDE` name, read straight from its
/// fields.
fn owner_kinds(job: &TrainJob) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if job
        .managed_by
        .as_deref()
        .is_some_and(|manager| !manager.is_empty() && manager != TRAINER_MANAGER)
    {
        kinds.push("managed-by");
    }
    if job.labels.contains_key(LABEL_MULTIKUEUE_ORIGIN) {
        kinds.push("multikueue-copy");
    }
    if job.controller_owner.is_some() {
        kinds.push("owned");
    }
    if job.annotations.contains_key(ANNOTATION_ARGOCD_TRACKING)
        || job.labels.contains_key(LABEL_ARGOCD_INSTANCE)
        || job.labels.contains_key(FLUX_KUSTOMIZE)
    {
        kinds.push("gitops");
    }
    kinds
}

fn included(policy: &Policy, kind: &str) -> bool {
    match kind {
        "managed-by" => policy.include.managed_by,
        "multikueue-copy" => policy.include.multikueue_copy,
        "owned" => policy.include.owned,
        _ => policy.include.gitops,
    }
}

/// Reads the finish time the conditions state: the later `lastTransitionTime` of the True `Complete`
/// and `Failed` conditions, `Failed` on a tie, with the outcome and whether both are True. The time
/// is `None` when one of them is unreadable, and the whole is `None` when neither is True.
fn stated_finish(job: &TrainJob) -> Option<(Outcome, Option<Timestamp>, bool)> {
    let mut terminal = Vec::new();
    for condition in &job.conditions {
        let outcome = match (condition.type_.as_deref(), condition.status.as_deref()) {
            (Some("Complete"), Some("True")) => Outcome::Succeeded,
            (Some("Failed"), Some("True")) => Outcome::Failed,
            _ => continue,
        };
        let time = condition
            .last_transition_time
            .as_deref()
            .and_then(|text| text.parse::<Timestamp>().ok());
        terminal.push((outcome, time));
    }
    let both = terminal.len() == 2;
    if let Some(&(outcome, None)) = terminal.iter().find(|(_, time)| time.is_none()) {
        return Some((outcome, None, both));
    }
    terminal
        .into_iter()
        .max_by_key(|&(outcome, time)| (time, outcome == Outcome::Failed))
        .map(|(outcome, time)| (outcome, time, both))
}

/// The TTL that must have run out for a deletion: the longer policy TTL when both conditions
/// are True.
fn expected_ttl(job: &TrainJob, policy: &Policy, outcome: Outcome, both: bool) -> Duration {
    let policy_ttl = match outcome {
        _ if both => policy
            .ttl_succeeded
            .duration
            .max(policy.ttl_failed.duration),
        Outcome::Succeeded => policy.ttl_succeeded.duration,
        _ => policy.ttl_failed.duration,
    };
    let annotation = job
        .annotations
        .get(ANNOTATION_TTL)
        .and_then(|value| crate::duration::parse_duration(value).ok());
    match (annotation, policy.max_ttl) {
        (Some(requested), Some(max)) => requested.min(max),
        (Some(requested), None) => requested,
        (None, _) => policy_ttl,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn deletion_only_when_every_rule_allows(
        job in trainjob(),
        policy in policy(),
        now in timestamp(),
    ) {
        let verdict = decide(&job, &policy, now);
        let reason = verdict.reason(now);
        prop_assert!(!reason.is_empty());
        if counts_for_keep_last(&verdict) {
            prop_assert!(verdict.finished_at.is_some());
        }
        if !verdict.is_delete() {
            return Ok(());
        }

        prop_assert!(job.deletion_timestamp.is_none(), "being deleted: {reason}");
        let keep = job.annotations.get(ANNOTATION_KEEP).map(String::as_str);
        prop_assert_ne!(keep, Some("true"), "opted out: {}", reason);
        if !matches!(keep, None | Some("false")) {
            prop_assert_eq!(policy.invalid_annotation, InvalidAnnotation::Policy);
        }
        for kind in owner_kinds(&job) {
            prop_assert!(included(&policy, kind), "owned elsewhere ({kind}) and not included: {reason}");
        }

        let Some((outcome, stated, both)) = stated_finish(&job) else {
            return Err(TestCaseError::fail(format!("unfinished job deleted: {reason}")));
        };
        let Some(stated) = stated else {
            return Err(TestCaseError::fail(format!("deleted without a finish time: {reason}")));
        };
        prop_assert_eq!(verdict.outcome, outcome);
        prop_assert!(stated <= now, "finished in the future: {reason}");
        let created = job.creation_timestamp.as_deref().and_then(|text| text.parse::<Timestamp>().ok());
        let Some(created) = created else {
            return Err(TestCaseError::fail(format!("deleted without a creation time: {reason}")));
        };
        prop_assert!(
            stated >= created - FINISH_BEFORE_CREATION_TOLERANCE,
            "finished long before creation: {reason}"
        );
        // A finish just before the creation counts from the creation.
        let finished = stated.max(created);
        prop_assert_eq!(verdict.finished_at, Some(finished));

        let ttl = verdict.ttl.expect("a deletion has a TTL").duration;
        prop_assert_eq!(ttl, expected_ttl(&job, &policy, outcome, both));
        let expires_at = finished.checked_add(SignedDuration::try_from(ttl).expect("fits"));
        prop_assert!(expires_at.is_ok_and(|expires_at| expires_at <= now), "not yet expired: {reason}");
        prop_assert!(verdict.overdue_seconds(now).is_some_and(|overdue| overdue >= 0));
    }
}

#[test]
fn kubernetes_times_must_be_rfc3339() {
    let accepted = [
        "2026-12-04T21:01:18Z",
        "2026-12-04T21:01:18.5Z",
        "2026-12-04T23:01:18+02:00",
        "2026-12-04t21:01:18z",
    ];
    for text in accepted {
        assert!(parse_time(text).is_ok(), "{text} was rejected");
    }
    let rejected = [
        "20261204T210118Z",
        "2026-12-04T21:01:18Z[UTC]",
        "+002026-12-04T21:01:18Z",
        "2026-12-04T21:01:18+00",
        "2026-12-04T21:01:18+0000",
        "2026-12-04T21:01:18,5Z",
        "2026-12-04 21:01:18Z",
        "2026-12-04T21:01:18",
        "yesterday",
    ];
    for text in rejected {
        assert!(parse_time(text).is_err(), "{text} was accepted");
    }
}
