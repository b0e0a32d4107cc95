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
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Precedence when a run ends with several outcomes: the breaker, then an interruption, then
    /// failures, then backlog.
    pub fn rank(self) -> u8 {
        match self {
            Exit::BreakerTripped => 4,
            Exit::Interrupted => 3,
            Exit::DeletionsFailed => 2,
            Exit::Backlog => 1,
            _ => 0,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
