//! The permission check before listing: may this identity list and delete TrainJobs in its scope?

use tracing::warn;

use crate::api::{Api, RequestError};
use crate::config::Settings;
use crate::constants::*;
use crate::exit::Exit;
use crate::run::Fatal;

/// Asks the API server, with SelfSubjectAccessReviews, whether the run may list and delete
/// TrainJobs in every namespace of its scope (cluster-wide when the scope is every namespace).
///
/// A missing permission stops a real run before any change. In dry-run it is a warning that a
/// real run would be refused. When the review itself is refused, the check is skipped with a
/// warning, because the list and the deletions will still report what is missing. When the API
/// server sends no response within the retry limits, the run stops with exit code 3.
pub async fn check(api: &Api, settings: &Settings, namespaces: &[&str]) -> Result<(), Fatal> {
    let scopes: Vec<Option<&str>> = if settings.scope.namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().copied().map(Some).collect()
    };
    let mut missing = Vec::new();
    for scope in scopes {
        for verb in ["list", "delete"] {
            let answer = match api.may(verb, scope).await {
                Ok(answer) => answer,
                // The run stops before listing; a warning about permissions would mislead.
                Err(RequestError::Cancelled { .. } | RequestError::Abandoned { .. }) => {
                    return Ok(());
                }
                // The API server sent no response within the retry limits. The list would wait
                // through them a second time before failing the same way.
                Err(err @ (RequestError::GaveUp { .. } | RequestError::BudgetSpent { .. })) => {
                    return Err(Fatal::new(
                        Exit::ApiUnavailable,
                        format!("the API server did not answer the permission check: {err}"),
                    ));
                }
                Err(err) => {
                    warn!(error = %err, "could not check permissions with a SelfSubjectAccessReview; going on");
                    return Ok(());
                }
            };
            match answer {
                None if api.credentials_rejected() => {
                    return Err(Fatal::new(
                        Exit::ApiUnavailable,
                        format!(
                            "the API server rejected the credentials (HTTP 401) at the permission \
                             check; {RENEW_CREDENTIALS}"
                        ),
                    ));
                }
                None => {
                    warn!("the API server refused the SelfSubjectAccessReview, so permissions could not be checked; going on");
                    return Ok(());
                }
                Some(access) if access.allowed => {}
                Some(_) => missing.push(match scope {
                    Some(namespace) => format!("{verb} on {TRAINJOB_PLURAL}.{TRAINJOB_GROUP} in namespace {namespace}"),
                    None => format!("{verb} on {TRAINJOB_PLURAL}.{TRAINJOB_GROUP} in all namespaces (a ClusterRole)"),
                }),
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join("; ");
    if settings.dry_run {
        warn!(missing = %list, "missing permission: a real run would be refused (exit code 6); grant {list}");
        return Ok(());
    }
    Err(Fatal::new(
        Exit::PermissionMissing,
        format!("missing permission: {list}; grant it to this identity, nothing was deleted"),
    ))
}
