//! Exit codes. The README's table lists the same codes: keep them in step.

use std::process::ExitCode;

/// Why the process exits, from the most to the least severe of the run-level outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything went as planned, including when there was nothing to do.
    Success = 0,
    /// Some deletions failed or were denied; the others went on.
    DeletionsFailed = 1,
    /// Invalid configuration; nothing was sent to the API server or nothing was deleted.
    InvalidConfig = 2,
    /// The API server could not be reached, authenticated against, or listed.
    ApiUnavailable = 3,
    /// The TrainJob CRD is not installed.
    CrdMissing = 4,
    /// The policy ConfigMap is missing or may not be read.
    ConfigMapUnavailable = 5,
    /// A permission the run needs is missing; a real run stopped before any change.
    PermissionMissing = 6,
    /// The deadline passed or a signal arrived before the run finished.
    Interrupted = 7,
    /// `MAX_DELETIONS` left due TrainJobs for a later run.
    Backlog = 8,
    /// More TrainJobs were due than `ABORT_ABOVE` allows, so none was deleted.
    BreakerTripped = 9,
    /// The report or its summary could not be written completely.
    ReportFailed = 10,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Precedence when a run ends with several outcomes: the breaker, then an interruption, then
    /// failures, then a report not written, then backlog. The other codes end a run on their
    /// own and are never replaced.
    pub fn rank(self) -> u8 {
        match self {
            Exit::BreakerTripped => 5,
            Exit::Interrupted => 4,
            Exit::DeletionsFailed => 3,
            Exit::ReportFailed => 2,
            Exit::Backlog => 1,
            _ => 0,
        }
    }

    /// Returns this exit, or `other` when `other` takes precedence. A code outside the ranked ones
    /// (such as 3) stays, and a success gives way to any ranked code.
    pub fn or_worse(self, other: Exit) -> Exit {
        let replaceable = self == Exit::Success || self.rank() > 0;
        if replaceable && other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit::*;

    #[test]
    fn precedence_of_run_outcomes() {
        assert_eq!(Success.or_worse(ReportFailed), ReportFailed);
        assert_eq!(Backlog.or_worse(ReportFailed), ReportFailed);
        assert_eq!(DeletionsFailed.or_worse(ReportFailed), DeletionsFailed);
        assert_eq!(ReportFailed.or_worse(Interrupted), Interrupted);
        assert_eq!(BreakerTripped.or_worse(Interrupted), BreakerTripped);
        assert_eq!(Success.or_worse(Success), Success);
        // A code that ends the run on its own is kept.
        assert_eq!(ApiUnavailable.or_worse(ReportFailed), ApiUnavailable);
        assert_eq!(
            PermissionMissing.or_worse(DeletionsFailed),
            PermissionMissing
        );
    }
}
