//! The one module that talks to the API server.
//!
//! Every request goes through [`Api::execute`], which applies the client-side rate limit, the
//! request timeout and our own retry rules. kube's built-in retry layer is switched off, so the
//! bounds in the configuration are the only ones.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::StatusCode;
use http_body_util::BodyExt;
use jiff::Timestamp;
use kube::api::{DeleteParams, GetParams, ListParams, Preconditions, PropagationPolicy};
use kube::client::Body;
use kube::core::Request;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::Limits;
use crate::constants::*;

/// An answer of the API server, with the status code that the caller interprets.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
    /// Number of attempts the request took, 1 when the first got a response. After a lost
    /// response the server may have applied an earlier attempt.
    pub attempts: u32,
}

impl Answer {
    /// The `message` of a `Status` body, or the start of the body when it is not one.
    pub fn message(&self) -> String {
        #[derive(Deserialize)]
        struct Status {
            message: Option<String>,
        }
        match serde_json::from_slice::<Status>(&self.body) {
            Ok(Status {
                message: Some(message),
            }) => message,
            _ => {
                let text = String::from_utf8_lossy(&self.body);
                let text = text.trim();
                if text.is_empty() {
                    format!("HTTP {} with an empty body", self.status.as_u16())
                } else {
                    text.chars().take(300).collect()
                }
            }
        }
    }
}

/// A request that got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{what} failed after {attempts} attempts: {last}")]
    GaveUp {
        what: String,
        attempts: u32,
        last: String,
    },
    #[error(
        "{what} was not retried because the run's retry budget (TRAINJOB_GC_RETRY_BUDGET) is spent: {last}"
    )]
    BudgetSpent { what: String, last: String },
    #[error("{what} was stopped by the run's deadline or a signal")]
    Cancelled { what: String },
    #[error(
        "{what} got no response within {} after the run's deadline or a signal, so it was abandoned; the server may still apply it",
        humantime::format_duration(IN_FLIGHT_GRACE)
    )]
    Abandoned { what: String },
    #[error("failed to build the request for {what}: {source}")]
    Build {
        what: String,
        #[source]
        source: kube::core::request::Error,
    },
    #[error("{what} failed: {source}")]
    Client {
        what: String,
        #[source]
        source: kube::Error,
    },
}

/// Time a request already sent may still take once the deadline has passed or a signal has
/// arrived, unless `REQUEST_TIMEOUT` ends it sooner. Kubernetes waits 30 s between SIGTERM and
/// SIGKILL by default, as long as the default `REQUEST_TIMEOUT`. This bound leaves time to write
/// the summary and the report before the kill.
pub const IN_FLIGHT_GRACE: Duration = Duration::from_secs(5);

/// The transient failure of one attempt.
struct Transient {
    description: String,
    retry_after: Option<Duration>,
}

/// The client, its limits and the counters of one run.
pub struct Api {
    client: kube::Client,
    limiter: DefaultDirectRateLimiter,
    limits: Limits,
    retries: AtomicU32,
    /// Set once any response is 401 Unauthorized, because the credentials expired or were revoked.
    credentials_rejected: AtomicBool,
    cancel: CancellationToken,
    /// The API server's `Date` of the first answer that had one, and when it arrived.
    server_clock: Mutex<Option<(Timestamp, Instant)>>,
}

/// One page of a TrainJob list; the items stay raw so that each is decoded on its own.
#[derive(Deserialize)]
pub struct Page<'a> {
    #[serde(default)]
    pub metadata: ListMeta,
    /// `null` is read as no items, as client-go reads it.
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
}

impl<'a> Page<'a> {
    pub fn items(&self) -> &[&'a RawValue] {
        self.items.as_deref().unwrap_or_default()
    }
}

#[derive(Deserialize, Default)]
pub struct ListMeta {
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

pub fn trainjobs_path(namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!(
            "/apis/{TRAINJOB_GROUP}/{TRAINJOB_VERSION}/namespaces/{namespace}/{TRAINJOB_PLURAL}"
        ),
        None => format!("/apis/{TRAINJOB_GROUP}/{TRAINJOB_VERSION}/{TRAINJOB_PLURAL}"),
    }
}

fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn date_header(headers: &http::HeaderMap) -> Option<Timestamp> {
    let value = headers.get(http::header::DATE)?.to_str().ok()?;
    let time = httpdate_to_system_time(value)?;
    Timestamp::try_from(time).ok()
}

/// Parses an HTTP `Date` header (RFC 9110 IMF-fixdate), the only form API servers send.
fn httpdate_to_system_time(value: &str) -> Option<std::time::SystemTime> {
    let parsed = jiff::fmt::rfc2822::parse(value).ok()?;
    Some(parsed.timestamp().into())
}

impl Api {
    pub fn new(client: kube::Client, limits: Limits, cancel: CancellationToken) -> Api {
        // QPS is at least 0.1 and BURST at least 1, both checked by the configuration.
        let period = Duration::from_secs_f64(1.0 / limits.qps);
        let burst = std::num::NonZeroU32::new(limits.burst).unwrap_or(std::num::NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .expect("period is positive")
            .allow_burst(burst);
        Api {
            client,
            limiter: RateLimiter::direct(quota),
            limits,
            retries: AtomicU32::new(0),
            credentials_rejected: AtomicBool::new(false),
            cancel,
            server_clock: Mutex::new(None),
        }
    }

    /// Retries made in this run so far.
    pub fn retries(&self) -> u32 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Returns true once the API server sent 401 Unauthorized to any request of this run.
    pub fn credentials_rejected(&self) -> bool {
        self.credentials_rejected.load(Ordering::Relaxed)
    }

    /// The API server's current time, from the `Date` of an earlier answer plus the time since.
    pub fn server_now(&self) -> Option<Timestamp> {
        let clock = self.server_clock.lock().expect("clock lock");
        let (date, at) = (*clock)?;
        let elapsed = jiff::SignedDuration::try_from(at.elapsed()).ok()?;
        date.checked_add(elapsed).ok()
    }

    /// Sends a request, retrying transient failures, and returns the first answer that is not
    /// transient (any status code) for the caller to interpret.
    ///
    /// Transient: 429, 500, 502, 503, 504, a failed connection and a timeout. They are retried up
    /// to `RETRY_LIMIT` times with capped exponential backoff and jitter, never sooner than a
    /// `Retry-After`, while the run's `RETRY_BUDGET` lasts. A `Retry-After` longer than
    /// `RETRY_BACKOFF_MAX` gives the request up instead of waiting.
    pub async fn execute(
        &self,
        what: &str,
        request: impl Fn() -> Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<Answer, RequestError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let request = request().map_err(|source| RequestError::Build {
                what: what.to_owned(),
                source,
            })?;
            // Once the run is stopped no request starts. One already sent may finish, time out,
            // or be abandoned IN_FLIGHT_GRACE after the stop (see `attempt`).
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(RequestError::Cancelled { what: what.to_owned() }),
                _ = self.limiter.until_ready() => {}
            }
            let transient = match self.attempt(request).await {
                Ok(mut answer) => {
                    answer.attempts = attempt;
                    if answer.status == http::StatusCode::UNAUTHORIZED {
                        self.credentials_rejected.store(true, Ordering::Relaxed);
                    }
                    return Ok(answer);
                }
                Err(AttemptError::Abandoned) => {
                    return Err(RequestError::Abandoned {
                        what: what.to_owned(),
                    });
                }
                Err(AttemptError::Permanent(source)) => {
                    return Err(RequestError::Client {
                        what: what.to_owned(),
                        source,
                    });
                }
                Err(AttemptError::Transient(transient)) => transient,
            };

            if attempt > self.limits.retry_limit {
                return Err(RequestError::GaveUp {
                    what: what.to_owned(),
                    attempts: attempt,
                    last: transient.description,
                });
            }
            let backoff = self.backoff(attempt);
            let wait = match transient.retry_after {
                Some(asked) if asked > self.limits.retry_backoff_max => {
                    return Err(RequestError::GaveUp {
                        what: what.to_owned(),
                        attempts: attempt,
                        last: format!(
                            "{}; the server asked to retry after {}, longer than TRAINJOB_GC_RETRY_BACKOFF_MAX ({})",
                            transient.description,
                            humantime::format_duration(asked),
                            humantime::format_duration(self.limits.retry_backoff_max)
                        ),
                    });
                }
                Some(asked) => asked.max(backoff),
                None => backoff,
            };
            let budget = self.limits.retry_budget;
            let taken = self
                .retries
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                    (used < budget).then_some(used + 1)
                });
            if taken.is_err() {
                return Err(RequestError::BudgetSpent {
                    what: what.to_owned(),
                    last: transient.description,
                });
            }
            warn!(
                request = what,
                fault = %transient.description,
                attempt,
                retry_in_ms = wait.as_millis() as u64,
                "request failed, retrying"
            );
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(RequestError::Cancelled { what: what.to_owned() }),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Exponential backoff from `RETRY_BACKOFF`, capped at `RETRY_BACKOFF_MAX`, with full jitter
    /// over its upper half so that many clients spread out without retrying at once.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.limits.retry_backoff.as_secs_f64();
        let cap = self.limits.retry_backoff_max.as_secs_f64();
        let exponential = (base * 2f64.powi(attempt.saturating_sub(1).min(30) as i32)).min(cap);
        let jittered = exponential * (0.5 + rand::random::<f64>() * 0.5);
        Duration::from_secs_f64(jittered)
    }

    async fn attempt(&self, request: http::Request<Vec<u8>>) -> Result<Answer, AttemptError> {
        let timeout = self.limits.request_timeout;
        let method = request.method().clone();
        let uri = request.uri().clone();

        let send = tokio::time::timeout(timeout, async {
            let response = self.client.send(request.map(Body::from)).await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok::<_, kube::Error>((parts, body))
        });
        // Once the run is stopped, a request in flight gets IN_FLIGHT_GRACE more at most.
        let grace_over = async {
            self.cancel.cancelled().await;
            tokio::time::sleep(IN_FLIGHT_GRACE).await;
        };
        let result = tokio::select! {
            result = send => result,
            () = grace_over => return Err(AttemptError::Abandoned),
        };

        let (parts, body) = match result {
            Err(_) => {
                return Err(AttemptError::Transient(Transient {
                    description: format!(
                        "{method} {} timed out after {} (TRAINJOB_GC_REQUEST_TIMEOUT)",
                        uri.path(),
                        humantime::format_duration(timeout)
                    ),
                    retry_after: None,
                }));
            }
            Ok(Err(err)) => return Err(classify_client_error(err, &method, &uri, timeout)),
            Ok(Ok(answer)) => answer,
        };

        debug!(method = %method, path = uri.path(), status = parts.status.as_u16(), "answer");
        if let Some(date) = date_header(&parts.headers) {
            let mut clock = self.server_clock.lock().expect("clock lock");
            if clock.is_none() {
                *clock = Some((date, Instant::now()));
            }
        }

        let answer = Answer {
            status: parts.status,
            body,
            attempts: 1,
        };
        if is_transient_status(parts.status) {
            return Err(AttemptError::Transient(Transient {
                description: format!(
                    "{method} {} answered {}: {}",
                    uri.path(),
                    parts.status,
                    answer.message()
                ),
                retry_after: retry_after(&parts.headers),
            }));
        }
        Ok(answer)
    }

    /// Lists one page of TrainJobs.
    pub async fn list_page(
        &self,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
        continue_token: Option<&str>,
    ) -> Result<Answer, RequestError> {
        let params = ListParams {
            label_selector: label_selector.map(str::to_owned),
            field_selector: field_selector.map(str::to_owned),
            limit: Some(self.limits.page_size),
            continue_token: continue_token.map(str::to_owned),
            ..ListParams::default()
        };
        let path = trainjobs_path(namespace);
        let what = match namespace {
            Some(namespace) => format!("list of TrainJobs in namespace {namespace}"),
            None => "list of TrainJobs in all namespaces".to_owned(),
        };
        self.execute(&what, || Request::new(&path).list(&params))
            .await
    }

    /// Reads one TrainJob.
    pub async fn get_trainjob(&self, namespace: &str, name: &str) -> Result<Answer, RequestError> {
        let path = trainjobs_path(Some(namespace));
        let what = format!("get of TrainJob {namespace}/{name}");
        self.execute(&what, || {
            Request::new(&path).get(name, &GetParams::default())
        })
        .await
    }

    /// Deletes one TrainJob with Background propagation and preconditions on the uid and
    /// resourceVersion that were evaluated.
    ///
    /// Background lets the garbage collector remove the JobSet, Jobs, Pods, ConfigMaps and
    /// Secrets the TrainJob owns, and the TrainJob itself goes at once. The preconditions make
    /// the server answer 409 instead of deleting a TrainJob that was re-created under the same
    /// name or changed since it was read.
    pub async fn delete_trainjob(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        resource_version: &str,
    ) -> Result<Answer, RequestError> {
        let path = trainjobs_path(Some(namespace));
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_owned()),
                resource_version: Some(resource_version.to_owned()),
            }),
            ..DeleteParams::default()
        };
        let what = format!("delete of TrainJob {namespace}/{name}");
        self.execute(&what, || Request::new(&path).delete(name, &params))
            .await
    }

    /// Reads a ConfigMap's data.
    pub async fn get_configmap(&self, namespace: &str, name: &str) -> Result<Answer, RequestError> {
        let path = format!("/api/v1/namespaces/{namespace}/configmaps");
        let what = format!("get of ConfigMap {namespace}/{name}");
        self.execute(&what, || {
            Request::new(&path).get(name, &GetParams::default())
        })
        .await
    }

    /// Reads a namespace, to warn about one that does not exist.
    pub async fn get_namespace(&self, name: &str) -> Result<Answer, RequestError> {
        let what = format!("get of namespace {name}");
        self.execute(&what, || {
            Request::new("/api/v1/namespaces").get(name, &GetParams::default())
        })
        .await
    }

    /// Asks the API server whether the caller may do `verb` on TrainJobs in `namespace` (all
    /// namespaces when `None`). `Ok(None)` means the review itself was refused or unreadable.
    pub async fn may(
        &self,
        verb: &str,
        namespace: Option<&str>,
    ) -> Result<Option<Access>, RequestError> {
        let review = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "group": TRAINJOB_GROUP,
                "resource": TRAINJOB_PLURAL,
                "verb": verb,
                "namespace": namespace.unwrap_or(""),
            }},
        });
        let body = serde_json::to_vec(&review).expect("a JSON literal serializes");
        let what = format!("access review of {verb} on TrainJobs");
        let answer = self
            .execute(&what, || {
                Request::new("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
                    .create(&Default::default(), body.clone())
            })
            .await?;
        if !answer.status.is_success() {
            debug!(status = answer.status.as_u16(), message = %answer.message(), "access review refused");
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct Review {
            status: Option<Access>,
        }
        Ok(serde_json::from_slice::<Review>(&answer.body)
            .ok()
            .and_then(|review| review.status))
    }
}

/// The answer of a SelfSubjectAccessReview.
#[derive(Debug, Deserialize)]
pub struct Access {
    #[serde(default)]
    pub allowed: bool,
    #[serde(default)]
    pub reason: Option<String>,
}

enum AttemptError {
    Transient(Transient),
    Permanent(kube::Error),
    /// No response within [`IN_FLIGHT_GRACE`] after the run was stopped.
    Abandoned,
}

/// Connection failures and timeouts are transient; errors of the client's own setup (loading
/// credentials, building TLS) are not, because a retry would fail the same way.
fn classify_client_error(
    err: kube::Error,
    method: &http::Method,
    uri: &http::Uri,
    timeout: Duration,
) -> AttemptError {
    match err {
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            // The client's read timeout is REQUEST_TIMEOUT too (see `cluster::client`), so it
            // may end a slow request before the timeout around the whole request does.
            let description = if is_timed_out(&err) {
                format!(
                    "{method} {} timed out ({}; TRAINJOB_GC_REQUEST_TIMEOUT is {})",
                    uri.path(),
                    error_chain(&err),
                    humantime::format_duration(timeout)
                )
            } else {
                format!("connection failed: {}", error_chain(&err))
            };
            AttemptError::Transient(Transient {
                description,
                retry_after: None,
            })
        }
        other => AttemptError::Permanent(other),
    }
}

/// True when an I/O error with kind `TimedOut` is among the error's sources.
fn is_timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(cause) = current {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        current = cause.source();
    }
    false
}

/// Joins an error and its sources, for errors whose top-level message hides the cause.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Reads the `data` of a ConfigMap answer.
pub fn configmap_data(body: &[u8]) -> Result<BTreeMap<String, String>, serde_json::Error> {
    #[derive(Deserialize)]
    struct ConfigMap {
        #[serde(default)]
        data: Option<BTreeMap<String, String>>,
    }
    Ok(serde_json::from_slice::<ConfigMap>(body)?
        .data
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_header_parses_imf_fixdate() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::DATE,
            "Fri, 04 Dec 2026 21:01:18 GMT".parse().unwrap(),
        );
        assert_eq!(
            date_header(&headers),
            Some("2026-12-04T21:01:18Z".parse().unwrap())
        );
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
    }

    #[test]
    fn read_timeout_is_described_as_a_timeout() {
        let err =
            kube::Error::Service(Box::new(std::io::Error::from(std::io::ErrorKind::TimedOut)));
        let uri: http::Uri = "/apis/trainer.kubeflow.org/v1alpha1/trainjobs"
            .parse()
            .unwrap();
        let AttemptError::Transient(transient) =
            classify_client_error(err, &http::Method::GET, &uri, Duration::from_millis(300))
        else {
            panic!("a timeout must be transient");
        };
        assert!(
            transient
                .description
                .starts_with("GET /apis/trainer.kubeflow.org/v1alpha1/trainjobs timed out"),
            "{}",
            transient.description
        );
        assert!(
            transient
                .description
                .ends_with("TRAINJOB_GC_REQUEST_TIMEOUT is 300ms)"),
            "{}",
            transient.description
        );
    }

    #[test]
    fn refused_connection_is_not_a_timeout() {
        let err = kube::Error::Service(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        let AttemptError::Transient(transient) = classify_client_error(
            err,
            &http::Method::GET,
            &"/api".parse().unwrap(),
            Duration::from_secs(30),
        ) else {
            panic!("a refused connection must be transient");
        };
        assert!(
            transient.description.starts_with("connection failed"),
            "{}",
            transient.description
        );
    }

    #[test]
    fn status_message_is_extracted() {
        let answer = Answer {
            status: StatusCode::CONFLICT,
            body: Bytes::from_static(br#"{"kind":"Status","message":"precondition failed"}"#),
            attempts: 1,
        };
        assert_eq!(answer.message(), "precondition failed");
    }
}
