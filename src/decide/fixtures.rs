//! Builders for TrainJobs and policies in tests, so that a case reads like a sentence:
//! `TrainJob::test("a").created_at(ago("9d")).failed_at(ago("8d"))`.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::config::{Include, InvalidAnnotation, Policy, PolicyKind, Ttl};
use crate::constants::{CONDITION_COMPLETE, CONDITION_FAILED, CONDITION_SUSPENDED};
use crate::duration::parse_duration;
use crate::trainjob::{Condition, ControllerOwner, TrainJob};

/// The clock of every test: the time the decision is made.
pub(crate) const NOW: &str = "2026-03-10T00:00:00Z";

/// Parses an RFC 3339 time.
pub(crate) fn at(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|err| panic!("test time {text:?}: {err}"))
}

/// Returns [`NOW`] as a timestamp.
pub(crate) fn now() -> Timestamp {
    at(NOW)
}

/// Parses a duration of the settings grammar, such as `7d`.
pub(crate) fn span(text: &str) -> Duration {
    parse_duration(text).unwrap_or_else(|err| panic!("test duration {text:?} {err}"))
}

/// Returns the time that lies `text` (such as `8d`) before [`NOW`].
pub(crate) fn ago(text: &str) -> Timestamp {
    now() - SignedDuration::try_from(span(text)).expect("test durations fit")
}

/// Returns the time that lies `text` (such as `1h`) after [`NOW`].
pub(crate) fn ahead(text: &str) -> Timestamp {
    now() + SignedDuration::try_from(span(text)).expect("test durations fit")
}

impl TrainJob {
    /// Builds a TrainJob named `name` in namespace `team-a`, created 30 days before [`NOW`],
    /// with no status.
    pub(crate) fn test(name: &str) -> TrainJob {
        TrainJob {
            namespace: "team-a".to_owned(),
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            resource_version: "1".to_owned(),
            creation_timestamp: Some(ago("30d").to_string()),
            ..TrainJob::default()
        }
    }

    pub(crate) fn created_at(mut self, time: Timestamp) -> TrainJob {
        self.creation_timestamp = Some(time.to_string());
        self
    }

    /// Sets `creationTimestamp` to any text, readable or not.
    pub(crate) fn created_at_text(mut self, text: &str) -> TrainJob {
        self.creation_timestamp = Some(text.to_owned());
        self
    }

    /// Adds a condition. `time` is the raw `lastTransitionTime`, `None` when it is absent.
    pub(crate) fn condition(mut self, kind: &str, status: &str, time: Option<&str>) -> TrainJob {
        self.conditions.push(Condition {
            type_: Some(kind.to_owned()),
            status: Some(status.to_owned()),
            reason: None,
            last_transition_time: time.map(str::to_owned),
        });
        self
    }

    /// Adds a condition exactly as given, including one without a type or status.
    pub(crate) fn raw_condition(mut self, condition: Condition) -> TrainJob {
        self.conditions.push(condition);
        self
    }

    pub(crate) fn completed_at(self, time: Timestamp) -> TrainJob {
        self.condition(CONDITION_COMPLETE, "True", Some(&time.to_string()))
    }

    pub(crate) fn failed_at(self, time: Timestamp) -> TrainJob {
        self.condition(CONDITION_FAILED, "True", Some(&time.to_string()))
    }

    pub(crate) fn suspended(self) -> TrainJob {
        self.condition(CONDITION_SUSPENDED, "True", Some(&ago("1d").to_string()))
    }

    pub(crate) fn annotated(mut self, key: &str, value: &str) -> TrainJob {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }

    pub(crate) fn labelled(mut self, key: &str, value: &str) -> TrainJob {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    pub(crate) fn managed_by(mut self, manager: &str) -> TrainJob {
        self.managed_by = Some(manager.to_owned());
        self
    }

    /// Adds a controller owner reference.
    pub(crate) fn owned_by(mut self, kind: &str, name: &str) -> TrainJob {
        self.controller_owner = Some(ControllerOwner {
            kind: kind.to_owned(),
            name: name.to_owned(),
        });
        self
    }

    pub(crate) fn deleting_since(mut self, time: Timestamp, finalizers: &[&str]) -> TrainJob {
        self.deletion_timestamp = Some(time.to_string());
        self.finalizers = finalizers.iter().map(|f| (*f).to_owned()).collect();
        self
    }
}

impl Policy {
    /// Builds the `ttl` policy with one TTL, from `TRAINJOB_GC_TTL`, for both outcomes.
    pub(crate) fn test_ttl(ttl: &str) -> Policy {
        let ttl = Ttl {
            duration: span(ttl),
            source: "TRAINJOB_GC_TTL",
        };
        Policy {
            kind: PolicyKind::Ttl,
            ttl_succeeded: ttl,
            ttl_failed: ttl,
            max_ttl: None,
            keep_last: 0,
            invalid_annotation: InvalidAnnotation::Keep,
            include: Include::default(),
        }
    }

    /// Builds the `delete_on_completion` policy.
    pub(crate) fn test_delete_on_completion() -> Policy {
        let zero = Ttl {
            duration: Duration::ZERO,
            source: "TRAINJOB_GC_POLICY=delete_on_completion",
        };
        Policy {
            kind: PolicyKind::DeleteOnCompletion,
            ttl_succeeded: zero,
            ttl_failed: zero,
            ..Policy::test_ttl("0s")
        }
    }

    pub(crate) fn ttl_succeeded(mut self, ttl: &str) -> Policy {
        self.ttl_succeeded = Ttl {
            duration: span(ttl),
            source: "TRAINJOB_GC_TTL_SUCCEEDED",
        };
        self
    }

    pub(crate) fn ttl_failed(mut self, ttl: &str) -> Policy {
        self.ttl_failed = Ttl {
            duration: span(ttl),
            source: "TRAINJOB_GC_TTL_FAILED",
        };
        self
    }

    pub(crate) fn max_ttl(mut self, max: &str) -> Policy {
        self.max_ttl = Some(span(max));
        self
    }

    /// Sets `INVALID_ANNOTATION=policy`.
    pub(crate) fn on_invalid_annotation_use_policy(mut self) -> Policy {
        self.invalid_annotation = InvalidAnnotation::Policy;
        self
    }

    /// Adds kinds of owned-elsewhere TrainJobs to delete, as `TRAINJOB_GC_INCLUDE` names them.
    pub(crate) fn including(mut self, kinds: &[&str]) -> Policy {
        for kind in kinds {
            match *kind {
                "managed-by" => self.include.managed_by = true,
                "multikueue-copy" => self.include.multikueue_copy = true,
                "owned" => self.include.owned = true,
                "gitops" => self.include.gitops = true,
                other => panic!("unknown INCLUDE kind {other:?} in a test"),
            }
        }
        self
    }
}
