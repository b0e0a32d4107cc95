//! The fault matrix: the real binary against the local kube-apiserver, through a proxy that
//! injects one fault per test, checking what remains, what the proxy saw, the log and the exit
//! code.
//!
//! Run with `hack/with-cluster.sh --controller-manager -- cargo test --release --test faults`.
//! Two tests start a kube-apiserver of their own with `hack/cluster.sh`, so that stopping it or
//! leaving out the CRD does not disturb the others.

#[path = "faults/harness.rs"]
mod harness;
#[path = "faults/own_cluster.rs"]
mod own_cluster;
#[path = "faults/proxy.rs"]
mod proxy;
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use harness::{assert_logged, logs, retried_faults, run, start};
use http::Method;
use kube::api::{Patch, PatchParams};
use proxy::{Action, Exchange, Proxy, Rule};
use serde_json::json;
use support::{Cluster, Fixture, set, trainjob, wait_past_creation};
use tokio::time::Instant;

/// TTL of the test runs. A finish time at the creation with a TTL of zero is due as soon as the
/// API server's clock, read from the `Date` of a response sent after the creation, is past the
/// creation second, so no test waits for a TTL to pass.
const TTL_ZERO: (&str, &str) = ("TRAINJOB_GC_TTL", "0s");

/// One namespace of TrainJobs and a proxy in front of the API server.
struct Scene {
    cluster: Cluster,
    ns: String,
    proxy: Proxy,
}

impl Scene {
    async fn new(prefix: &str) -> Scene {
        let cluster = Cluster::connect().await;
        let ns = cluster.namespace(prefix).await;
        Scene {
            cluster,
            ns,
            proxy: Proxy::start().await,
        }
    }

    /// Settings that scope the run to this namespace with a TTL of zero, then `extra`, which
    /// may override them.
    fn settings<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut settings = vec![("TRAINJOB_GC_NAMESPACES", self.ns.as_str()), TTL_ZERO];
        settings.extend_from_slice(extra);
        settings
    }

    async fn run(&self, extra: &[(&str, &str)]) -> support::Run {
        run(&self.proxy.kubeconfig(), &self.settings(extra)).await
    }

    /// Creates TrainJobs that completed at their creation, so that they are due at once.
    async fn due(&self, names: &[&str]) {
        let jobs: Vec<Fixture> = names
            .iter()
            .map(|name| trainjob(&self.ns, name).completed(0))
            .collect();
        self.create_all(&jobs).await;
    }

    /// Creates TrainJobs that completed but keep a TTL of one hour by annotation.
    async fn young(&self, names: &[&str]) {
        let jobs: Vec<Fixture> = names
            .iter()
            .map(|name| {
                trainjob(&self.ns, name)
                    .completed(0)
                    .annotation("trainjob-gc/ttl", "1h")
            })
            .collect();
        self.create_all(&jobs).await;
    }

    async fn create_all(&self, jobs: &[Fixture]) {
        futures::stream::iter(jobs)
            .for_each_concurrent(16, |job| async move {
                self.cluster.create(job).await;
            })
            .await;
    }

    async fn remaining(&self) -> BTreeSet<String> {
        self.cluster.remaining(&self.ns).await
    }
}

/// Milliseconds between consecutive requests that match `predicate`.
fn gaps_ms(exchanges: &[Exchange], predicate: impl Fn(&Exchange) -> bool) -> Vec<u128> {
    let times: Vec<Instant> = exchanges
        .iter()
        .filter(|e| predicate(e))
        .map(|e| e.arrived)
        .collect();
    times
        .windows(2)
        .map(|pair| pair[1].duration_since(pair[0]).as_millis())
        .collect()
}

fn names(run: &support::Run, result: &str) -> BTreeSet<String> {
    run.with_result(result)
}

// --- transient failures are retried -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_passes_a_clean_run_through() {
    let scene = Scene::new("clean").await;
    scene.due(&["done-a", "done-b"]).await;
    scene.young(&["young"]).await;

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert_eq!(
        scene.remaining().await,
        set(&["young"]),
        "{}",
        run.explain()
    );
    assert_eq!(names(&run, "deleted"), set(&["done-a", "done-b"]));
    assert_eq!(scene.proxy.deletes(), 2, "{}", scene.proxy.describe());
    assert_eq!(scene.proxy.lists(), 1, "{}", scene.proxy.describe());
    assert_eq!(run.summary()["retries"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_429_without_retry_after_is_retried() {
    let scene = Scene::new("list-429").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::list_trainjobs().times(2).then(Action::status(429)));

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    assert_eq!(scene.proxy.lists(), 3, "{}", scene.proxy.describe());
    assert_eq!(run.summary()["retries"], 2);
    let faults = retried_faults(&run);
    assert_eq!(faults.len(), 2, "{}", run.explain());
    assert!(faults.iter().all(|f| f.contains("429")), "{faults:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_429_retry_after_is_honoured() {
    let scene = Scene::new("retry-after").await;
    scene.due(&["done"]).await;
    scene.proxy.add(
        Rule::list_trainjobs()
            .times(1)
            .then(Action::status_with_headers(
                429,
                "too many requests, please try again later",
                &[("Retry-After", "1")],
            )),
    );

    // The backoff of 10 ms alone would retry at once: only Retry-After makes the wait 1 s.
    let run = scene.run(&[("TRAINJOB_GC_RETRY_BACKOFF_MAX", "5s")]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    let gaps = gaps_ms(&scene.proxy.exchanges(), Exchange::is_trainjob_list);
    assert_eq!(gaps.len(), 1, "{}", scene.proxy.describe());
    assert!(
        gaps[0] >= 1000,
        "retried after {} ms, before Retry-After: 1",
        gaps[0]
    );
    assert!(gaps[0] < 2000, "retried after {} ms", gaps[0]);
    assert_logged(&run, "request failed, retrying", "\"retry_in_ms\":1000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_retry_after_gives_up() {
    let scene = Scene::new("retry-after-long").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::list_trainjobs().then(Action::status_with_headers(
            429,
            "too many requests",
            &[("Retry-After", "120")],
        )));

    let run = scene.run(&[]).await;

    run.assert_code(3);
    assert_eq!(scene.remaining().await, set(&["done"]));
    assert_eq!(scene.proxy.lists(), 1, "{}", scene.proxy.describe());
    assert_logged(&run, "TRAINJOB_GC_RETRY_BACKOFF_MAX", "retry after 2m");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_5xx_is_retried_once_each() {
    let scene = Scene::new("delete-5xx").await;
    let codes = [500u16, 502, 503, 504];
    let jobs: Vec<String> = codes.iter().map(|code| format!("http-{code}")).collect();
    let job_names: Vec<&str> = jobs.iter().map(String::as_str).collect();
    scene.due(&job_names).await;
    for (code, name) in codes.iter().zip(&job_names) {
        scene.proxy.add(
            Rule::delete_trainjob()
                .named(name)
                .times(1)
                .then(Action::status(*code)),
        );
    }

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    assert_eq!(names(&run, "deleted").len(), 4, "{}", run.explain());
    assert_eq!(scene.proxy.deletes(), 8, "{}", scene.proxy.describe());
    assert_eq!(run.summary()["retries"], 4);
    let faults = retried_faults(&run);
    for code in codes {
        assert!(
            faults.iter().any(|f| f.contains(&code.to_string())),
            "no retry names HTTP {code}: {faults:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_is_retried() {
    let scene = Scene::new("reset").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::list_trainjobs().times(1).then(Action::Reset));
    scene
        .proxy
        .add(Rule::delete_trainjob().times(1).then(Action::Reset));

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    assert_eq!(scene.proxy.lists(), 2, "{}", scene.proxy.describe());
    assert_eq!(scene.proxy.deletes(), 2, "{}", scene.proxy.describe());
    let faults = retried_faults(&run);
    assert_eq!(faults.len(), 2, "{}", run.explain());
    assert!(
        faults.iter().all(|f| f.contains("connection failed")),
        "{faults:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_is_retried() {
    let scene = Scene::new("timeout").await;
    scene.due(&["done"]).await;
    // A stalled request is never forwarded, so only the retry reaches the server.
    scene.proxy.add(
        Rule::list_trainjobs()
            .times(1)
            .then(Action::Stall(Duration::from_secs(20))),
    );
    scene.proxy.add(
        Rule::delete_trainjob()
            .times(1)
            .then(Action::Stall(Duration::from_secs(20))),
    );

    let started = Instant::now();
    let run = scene.run(&[("TRAINJOB_GC_REQUEST_TIMEOUT", "300ms")]).await;
    let took = started.elapsed();

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    assert_eq!(names(&run, "deleted"), set(&["done"]));
    assert_eq!(scene.proxy.lists(), 2, "{}", scene.proxy.describe());
    assert_eq!(scene.proxy.deletes(), 2, "{}", scene.proxy.describe());
    let faults = retried_faults(&run);
    assert_eq!(faults.len(), 2, "{}", run.explain());
    // Either the client's read timeout or the timeout around the request ends it first.
    assert!(
        faults
            .iter()
            .all(|f| f.contains(" timed out ") && f.contains("TRAINJOB_GC_REQUEST_TIMEOUT")),
        "{faults:?}"
    );
    assert!(took < Duration::from_secs(3), "the run took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_503_stops_at_retry_limit() {
    let scene = Scene::new("retry-limit").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::list_trainjobs().then(Action::status(503)));

    let run = scene
        .run(&[
            ("TRAINJOB_GC_RETRY_LIMIT", "6"),
            ("TRAINJOB_GC_RETRY_BACKOFF", "50ms"),
            ("TRAINJOB_GC_RETRY_BACKOFF_MAX", "200ms"),
        ])
        .await;

    run.assert_code(3);
    assert_eq!(scene.remaining().await, set(&["done"]));
    assert_eq!(scene.proxy.lists(), 7, "{}", scene.proxy.describe());
    assert_logged(&run, "failed after 7 attempts", "503");
    // Waits double from 50 ms up to the cap of 200 ms, each jittered down to half at most:
    // 25-50, 50-100, then 100-200 ms. Uncapped, the last would be 800-1600 ms.
    let gaps = gaps_ms(&scene.proxy.exchanges(), Exchange::is_trainjob_list);
    let lowest = [25u128, 50, 100, 100, 100, 100];
    for (i, (gap, low)) in gaps.iter().zip(lowest).enumerate() {
        assert!(
            *gap + 5 >= low,
            "wait {i} was {gap} ms, shorter than {low} ms: {gaps:?}"
        );
        assert!(
            *gap < 400,
            "wait {i} was {gap} ms, beyond the 200 ms cap: {gaps:?}"
        );
    }
    let waits = retried_faults(&run);
    assert_eq!(waits.len(), 6, "{}", run.explain());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_limit_zero_sends_once() {
    // kube's own retry layer is off: with our limit at zero, a failure is one request.
    for (fault, action) in [("503", Action::status(503)), ("reset", Action::Reset)] {
        let scene = Scene::new("no-retry").await;
        scene.due(&["done"]).await;
        scene.proxy.add(Rule::list_trainjobs().then(action));

        let run = scene.run(&[("TRAINJOB_GC_RETRY_LIMIT", "0")]).await;

        run.assert_code(3);
        assert_eq!(
            scene.proxy.lists(),
            1,
            "{fault}: {}",
            scene.proxy.describe()
        );
        assert_eq!(run.summary()["retries"], 0, "{fault}");
        assert_logged(&run, "failed after 1 attempts", "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_budget_bounds_the_whole_run() {
    let scene = Scene::new("budget").await;
    scene.due(&["a", "b", "c", "d"]).await;
    scene
        .proxy
        .add(Rule::delete_trainjob().then(Action::status(503)));

    let run = scene
        .run(&[
            ("TRAINJOB_GC_RETRY_BUDGET", "2"),
            ("TRAINJOB_GC_CONCURRENCY", "1"),
        ])
        .await;

    run.assert_code(1);
    assert_eq!(scene.remaining().await, set(&["a", "b", "c", "d"]));
    assert_eq!(scene.proxy.deletes(), 4 + 2, "{}", scene.proxy.describe());
    assert_eq!(run.summary()["retries"], 2);
    assert_eq!(run.summary()["failed"], 4);
    let failed = run.records();
    let spent = failed
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .is_some_and(|reason| reason.contains("TRAINJOB_GC_RETRY_BUDGET"))
        })
        .count();
    assert!(
        spent >= 2,
        "no report line names the budget\n{}",
        run.explain()
    );
}

// --- permanent failures are not retried -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_list_errors_are_not_retried() {
    let cases: [(u16, i32, &str); 5] = [
        (400, 3, "HTTP 400"),
        (401, 3, "rejected the credentials"),
        (403, 6, "grant list on trainjobs.trainer.kubeflow.org"),
        (404, 4, "is not installed"),
        (422, 3, "HTTP 422"),
    ];
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("permanent").await;
    cluster.create(&trainjob(&ns, "done").completed(0)).await;
    for (code, exit, message) in cases {
        let proxy = Proxy::start().await;
        proxy.add(Rule::list_trainjobs().then(Action::status(code)));

        let run = run(
            &proxy.kubeconfig(),
            &[("TRAINJOB_GC_NAMESPACES", &ns), TTL_ZERO],
        )
        .await;

        assert_eq!(run.code, exit, "HTTP {code}\n{}", run.explain());
        assert_eq!(proxy.lists(), 1, "HTTP {code}: {}", proxy.describe());
        assert_eq!(proxy.deletes(), 0, "HTTP {code}");
        assert_eq!(run.summary()["retries"], 0, "HTTP {code}");
        assert_logged(&run, message, "");
    }
    assert_eq!(cluster.remaining(&ns).await, set(&["done"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstructured_404_on_list_means_crd_missing() {
    let scene = Scene::new("plain-404").await;
    scene
        .proxy
        .add(Rule::list_trainjobs().then(Action::text(404, "404 page not found")));

    let run = scene.run(&[]).await;

    run.assert_code(4);
    assert_eq!(scene.proxy.lists(), 1, "{}", scene.proxy.describe());
    assert_logged(&run, "trainjobs.trainer.kubeflow.org", "404 page not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_denials_are_reported_per_trainjob() {
    let scene = Scene::new("denied").await;
    scene.due(&["guarded", "invalid", "free-a", "free-b"]).await;
    let webhook = "admission webhook \"protect.example.com\" denied the request: TrainJob guarded is under legal hold";
    let policy = "ValidatingAdmissionPolicy 'keep-audited' with binding 'keep-audited' denied request: audited TrainJobs stay";
    scene.proxy.add(
        Rule::delete_trainjob()
            .named("guarded")
            .then(Action::status_message(403, webhook)),
    );
    scene.proxy.add(
        Rule::delete_trainjob()
            .named("invalid")
            .then(Action::status_message(422, policy)),
    );

    let run = scene.run(&[]).await;

    run.assert_code(1);
    assert_eq!(scene.remaining().await, set(&["guarded", "invalid"]));
    assert_eq!(names(&run, "denied"), set(&["guarded", "invalid"]));
    assert_eq!(names(&run, "deleted"), set(&["free-a", "free-b"]));
    assert_eq!(scene.proxy.deletes(), 4, "{}", scene.proxy.describe());
    assert_eq!(run.summary()["retries"], 0);
    let guarded = run.record("guarded");
    assert!(
        guarded["reason"].as_str().unwrap().contains(webhook),
        "{guarded}"
    );
    let invalid = run.record("invalid");
    assert!(
        invalid["reason"].as_str().unwrap().contains(policy),
        "{invalid}"
    );
    assert_logged(&run, "delete denied", "protect.example.com");
    assert_logged(&run, "delete denied", "keep-audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_stop_deletions() {
    let scene = Scene::new("unauthorized").await;
    let all = ["a", "b", "c", "d", "e"];
    scene.due(&all).await;
    // The token expires after the first deletion.
    scene
        .proxy
        .add(Rule::delete_trainjob().after(1).then(Action::status(401)));

    let run = scene.run(&[("TRAINJOB_GC_CONCURRENCY", "1")]).await;

    run.assert_code(3);
    assert_eq!(scene.proxy.deletes(), 2, "{}", scene.proxy.describe());
    assert_eq!(names(&run, "deleted").len(), 1, "{}", run.explain());
    assert_eq!(names(&run, "failed").len(), 4, "{}", run.explain());
    assert_eq!(scene.remaining().await.len(), 4);
    let not_attempted = run
        .records()
        .into_iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .unwrap_or("")
                .starts_with("not attempted")
        })
        .count();
    assert_eq!(not_attempted, 3, "{}", run.explain());
    assert_eq!(run.summary()["exitCode"], 3, "{}", run.explain());
    assert_logged(&run, "rejected the credentials", "renew");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_delete_response_counts_as_deleted() {
    let scene = Scene::new("lost").await;
    scene.due(&["lost", "plain"]).await;
    scene.proxy.add(
        Rule::delete_trainjob()
            .named("lost")
            .times(1)
            .then(Action::LoseResponse),
    );

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert_eq!(scene.remaining().await, set(&[]));
    assert_eq!(
        names(&run, "deleted"),
        set(&["lost", "plain"]),
        "{}",
        run.explain()
    );
    assert_eq!(scene.proxy.deletes(), 3, "{}", scene.proxy.describe());
    let lost = run.record("lost");
    assert!(
        lost["reason"]
            .as_str()
            .unwrap()
            .contains("response was lost"),
        "{lost}"
    );
    assert_eq!(run.summary()["deleted"], 2);
    assert_eq!(run.summary()["alreadyGone"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_trainjob_is_already_gone() {
    let scene = Scene::new("gone").await;
    scene.due(&["vanishing", "done"]).await;
    let api = scene.cluster.trainjobs(&scene.ns);
    scene.proxy.add(
        Rule::delete_trainjob()
            .named("vanishing")
            .times(1)
            .then(Action::before(move || {
                let api = api.clone();
                async move {
                    api.delete("vanishing", &Default::default())
                        .await
                        .expect("delete vanishing");
                }
            })),
    );

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    assert_eq!(names(&run, "already-gone"), set(&["vanishing"]));
    assert_eq!(names(&run, "deleted"), set(&["done"]));
    assert_eq!(scene.proxy.deletes(), 2, "{}", scene.proxy.describe());
    assert_logged(&run, "already gone", "vanishing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_faults_exit_5_or_3() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("configmap-faults").await;
    let cases: [(&str, Action, i32, &str); 4] = [
        ("404", Action::status(404), 5, "was not found"),
        (
            "403",
            Action::status(403),
            5,
            "grant get on configmaps named policy",
        ),
        ("401", Action::status(401), 3, "rejected the credentials"),
        ("503", Action::status(503), 3, "failed after 3 attempts"),
    ];
    let configmap = format!("{ns}/policy");
    for (fault, action, exit, message) in cases {
        let proxy = Proxy::start().await;
        proxy.add(Rule::request(Method::GET, "/configmaps/policy").then(action));

        let run = run(
            &proxy.kubeconfig(),
            &[
                ("TRAINJOB_GC_CONFIGMAP", &configmap),
                ("TRAINJOB_GC_RETRY_LIMIT", "2"),
            ],
        )
        .await;

        assert_eq!(run.code, exit, "HTTP {fault}\n{}", run.explain());
        // JSON and the retry limit of the environment apply although the TTL is not set there.
        assert_logged(&run, message, "");
        assert!(
            proxy.writes().is_empty(),
            "HTTP {fault}: {}",
            proxy.describe()
        );
        assert_eq!(proxy.lists(), 0, "HTTP {fault}: {}", proxy.describe());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_bounds_the_configmap_read() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("configmap-deadline").await;
    let proxy = Proxy::start().await;
    proxy.add(
        Rule::request(Method::GET, "/configmaps/policy")
            .then(Action::Stall(Duration::from_secs(60))),
    );
    let configmap = format!("{ns}/policy");

    let run = run(
        &proxy.kubeconfig(),
        &[
            ("TRAINJOB_GC_CONFIGMAP", &configmap),
            ("TRAINJOB_GC_DEADLINE", "1s"),
        ],
    )
    .await;

    // Without the deadline the stalled read would be retried and end with exit 3.
    run.assert_code(7);
    assert_logged(
        &run,
        "stopped the run while it read the policy ConfigMap",
        "",
    );
    assert_eq!(proxy.lists(), 0, "{}", proxy.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_access_review_exits_6_before_any_delete() {
    let scene = Scene::new("no-delete-right").await;
    scene.due(&["done"]).await;
    scene.proxy.add(
        Rule::request(Method::POST, "/selfsubjectaccessreviews").then(Action::rewrite(|review| {
            if review["spec"]["resourceAttributes"]["verb"] == "delete" {
                review["status"] = json!({"allowed": false, "reason": "no RBAC policy matched"});
            }
        })),
    );

    let run = scene.run(&[]).await;

    run.assert_code(6);
    assert_eq!(scene.remaining().await, set(&["done"]));
    assert_eq!(scene.proxy.deletes(), 0, "{}", scene.proxy.describe());
    assert_eq!(scene.proxy.lists(), 0, "{}", scene.proxy.describe());
    assert_logged(
        &run,
        "missing permission",
        "delete on trainjobs.trainer.kubeflow.org",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_access_review_exits_3() {
    let scene = Scene::new("review-unanswered").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::request(Method::POST, "/selfsubjectaccessreviews").then(Action::status(503)));

    let run = scene.run(&[("TRAINJOB_GC_RETRY_LIMIT", "2")]).await;

    run.assert_code(3);
    assert_eq!(scene.remaining().await, set(&["done"]));
    let reviews = scene
        .proxy
        .count(|e| e.path.ends_with("/selfsubjectaccessreviews"));
    assert_eq!(reviews, 3, "{}", scene.proxy.describe());
    assert_eq!(scene.proxy.lists(), 0, "{}", scene.proxy.describe());
    assert_logged(&run, "did not answer the permission check", "503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_access_review_exits_3() {
    let scene = Scene::new("review-401").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::request(Method::POST, "/selfsubjectaccessreviews").then(Action::status(401)));

    let run = scene.run(&[]).await;

    run.assert_code(3);
    assert_eq!(scene.remaining().await, set(&["done"]));
    assert_eq!(scene.proxy.lists(), 0, "{}", scene.proxy.describe());
    assert_logged(
        &run,
        "rejected the credentials (HTTP 401) at the permission check",
        "",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_access_review_is_skipped() {
    let scene = Scene::new("review-refused").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::request(Method::POST, "/selfsubjectaccessreviews").then(Action::status(403)));

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    // The first refusal ends the check; the list and the deletions then go ahead.
    let reviews = scene
        .proxy
        .count(|e| e.path.ends_with("/selfsubjectaccessreviews"));
    assert_eq!(reviews, 1, "{}", scene.proxy.describe());
    assert_logged(&run, "refused the SelfSubjectAccessReview", "");
}

// --- client-side rate limit and concurrency ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qps_and_burst_bound_the_request_rate() {
    let scene = Scene::new("qps").await;
    scene.due(&["a", "b", "c", "d", "e"]).await;

    let run = scene
        .run(&[
            ("TRAINJOB_GC_QPS", "5"),
            ("TRAINJOB_GC_BURST", "3"),
            ("TRAINJOB_GC_CONCURRENCY", "5"),
        ])
        .await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    // A namespace check, two access reviews, one list and five deletions.
    let exchanges = scene.proxy.exchanges();
    assert_eq!(exchanges.len(), 9, "{}", scene.proxy.describe());
    // In any stretch of time t, at most BURST + t * QPS requests start.
    for i in 0..exchanges.len() {
        for j in i + 1..exchanges.len() {
            let seconds = exchanges[j]
                .arrived
                .duration_since(exchanges[i].arrived)
                .as_secs_f64();
            let allowed = 3.0 + seconds * 5.0 + 0.5;
            let sent = (j - i + 1) as f64;
            assert!(
                sent <= allowed,
                "{sent} requests in {seconds:.3} s\n{}",
                scene.proxy.describe()
            );
        }
    }
    let span = exchanges
        .last()
        .unwrap()
        .arrived
        .duration_since(exchanges[0].arrived);
    assert!(
        span >= Duration::from_millis(1100),
        "9 requests at 5 per second after a burst of 3 took {span:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_deletions_in_flight() {
    let scene = Scene::new("concurrency").await;
    let jobs: Vec<String> = (0..9).map(|i| format!("job-{i}")).collect();
    let job_names: Vec<&str> = jobs.iter().map(String::as_str).collect();
    scene.due(&job_names).await;
    scene
        .proxy
        .add(Rule::delete_trainjob().then(Action::Delay(Duration::from_millis(200))));

    let run = scene.run(&[("TRAINJOB_GC_CONCURRENCY", "3")]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    assert_eq!(scene.proxy.max_in_flight(&Method::DELETE), 3);
}

// --- an expired continue token ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_continue_token_restarts_the_listing() {
    let scene = Scene::new("expired-token").await;
    scene.due(&["due-1", "due-2", "due-3", "due-4"]).await;
    scene.young(&["young-1", "young-2", "young-3"]).await;
    // Sorted first, so it is on the first page, which is listed twice. Without a uid, only its
    // text identifies it as seen before.
    scene.due(&["a-no-uid"]).await;
    scene
        .proxy
        .add(Rule::list_trainjobs().query("continue=").times(1).then(
        Action::status_message(
            410,
            "The provided continue parameter is too old to display a consistent list result.",
        ),
    ));
    scene
        .proxy
        .add(Rule::list_trainjobs().then(Action::rewrite(|list| {
            for item in list["items"].as_array_mut().unwrap() {
                if item["metadata"]["name"] == "a-no-uid" {
                    item["metadata"].as_object_mut().unwrap().remove("uid");
                }
            }
        })));

    let run = scene.run(&[("TRAINJOB_GC_PAGE_SIZE", "2")]).await;

    run.assert_code(0);
    assert_eq!(
        scene.remaining().await,
        set(&["a-no-uid", "young-1", "young-2", "young-3"]),
        "{}",
        run.explain()
    );
    // Page 1, the expired page 2, then pages 1 to 4 again.
    assert_eq!(scene.proxy.lists(), 6, "{}", scene.proxy.describe());
    assert_eq!(scene.proxy.deletes(), 4, "{}", scene.proxy.describe());
    let records = run.records();
    assert_eq!(
        records.len(),
        8,
        "a TrainJob was reported twice or not at all\n{}",
        run.explain()
    );
    let reported: BTreeSet<_> = records.iter().map(|r| r["name"].to_string()).collect();
    assert_eq!(reported.len(), 8, "{}", run.explain());
    assert_eq!(run.record("a-no-uid")["rule"], "malformed");
    assert_eq!(run.summary()["listed"], 8);
    assert_logged(&run, "continue token expired", "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_token_that_always_expires_gives_up() {
    let scene = Scene::new("always-expired").await;
    scene.due(&["due-1", "due-2", "due-3"]).await;
    scene.proxy.add(
        Rule::list_trainjobs()
            .query("continue=")
            .then(Action::status(410)),
    );

    let run = scene.run(&[("TRAINJOB_GC_PAGE_SIZE", "2")]).await;

    run.assert_code(3);
    assert_eq!(scene.remaining().await.len(), 3);
    assert_eq!(scene.proxy.deletes(), 0);
    // The first page and its expired continuation, once and then after each of 3 restarts.
    assert_eq!(scene.proxy.lists(), 8, "{}", scene.proxy.describe());
    assert_logged(&run, "failed to list TrainJobs", "410");
}

// --- 409: the TrainJob changed between the list and the delete --------------------------------

/// Builds a rule that runs `patch` on the TrainJob `name` before its first `times` deletions reach the
/// server, so that each of them carries a stale resourceVersion.
fn patch_before_delete(
    scene: &Scene,
    name: &'static str,
    times: u32,
    patch: impl Fn(u32) -> serde_json::Value + Send + Sync + 'static,
) -> Rule {
    let api = scene.cluster.trainjobs(&scene.ns);
    let patch = Arc::new(patch);
    let count = Arc::new(AtomicU32::new(0));
    Rule::delete_trainjob()
        .named(name)
        .times(times)
        .then(Action::before(move || {
            let api = api.clone();
            let body = patch(count.fetch_add(1, Ordering::SeqCst));
            async move {
                api.patch(name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .unwrap_or_else(|err| panic!("patch {name}: {err}"));
            }
        }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_then_opted_out_is_kept() {
    let scene = Scene::new("conflict-keep").await;
    scene.due(&["opted-out", "done"]).await;
    scene.proxy.add(patch_before_delete(
        &scene,
        "opted-out",
        1,
        |_| json!({"metadata": {"annotations": {"trainjob-gc/keep": "true"}}}),
    ));

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert_eq!(
        scene.remaining().await,
        set(&["opted-out"]),
        "{}",
        run.explain()
    );
    let record = run.record("opted-out");
    assert_eq!(record["result"], "conflict", "{record}");
    assert_eq!(record["rule"], "keep-annotation", "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("changed since listed"),
        "{record}"
    );
    assert_eq!(scene.proxy.deletes(), 2, "{}", scene.proxy.describe());
    assert_eq!(
        scene
            .proxy
            .count(|e| e.method == Method::GET && e.path.ends_with("/trainjobs/opted-out")),
        1,
        "{}",
        scene.proxy.describe()
    );
    assert_eq!(run.summary()["conflicts"], 1);
    assert_logged(&run, "kept after a conflict", "opted-out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_still_due_is_deleted() {
    let scene = Scene::new("conflict-due").await;
    scene.due(&["relabelled"]).await;
    scene.proxy.add(patch_before_delete(
        &scene,
        "relabelled",
        1,
        |_| json!({"metadata": {"labels": {"touched": "yes"}}}),
    ));

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    assert_eq!(names(&run, "deleted"), set(&["relabelled"]));
    let deletes: Vec<_> = scene
        .proxy
        .exchanges()
        .into_iter()
        .filter(Exchange::is_trainjob_delete)
        .collect();
    assert_eq!(deletes.len(), 2, "{}", scene.proxy.describe());
    assert_eq!(deletes[0].status, Some(409));
    assert_eq!(deletes[1].status, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_leaving_selector_is_kept() {
    let scene = Scene::new("conflict-selector").await;
    let jobs: Vec<Fixture> = ["moved", "stays"]
        .iter()
        .map(|name| {
            trainjob(&scene.ns, name)
                .completed(0)
                .label("team", "research")
        })
        .collect();
    scene.create_all(&jobs).await;
    // The team label changes between the list and the DELETE.
    scene.proxy.add(patch_before_delete(
        &scene,
        "moved",
        1,
        |_| json!({"metadata": {"labels": {"team": "other"}}}),
    ));

    let run = scene
        .run(&[("TRAINJOB_GC_LABEL_SELECTOR", "team=research")])
        .await;

    run.assert_code(0);
    assert_eq!(
        scene.remaining().await,
        set(&["moved"]),
        "{}",
        run.explain()
    );
    assert_eq!(names(&run, "deleted"), set(&["stays"]));
    let record = run.record("moved");
    assert_eq!(record["result"], "conflict", "{record}");
    assert_eq!(record["rule"], "out-of-scope", "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("no longer matches TRAINJOB_GC_LABEL_SELECTOR=\"team=research\""),
        "{record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_conflict_is_left_for_later() {
    let scene = Scene::new("conflict-twice").await;
    scene.due(&["busy"]).await;
    scene.proxy.add(patch_before_delete(
        &scene,
        "busy",
        2,
        |n| json!({"metadata": {"labels": {"touched": n.to_string()}}}),
    ));

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert_eq!(scene.remaining().await, set(&["busy"]));
    let record = run.record("busy");
    assert_eq!(record["result"], "conflict", "{record}");
    assert!(
        record["reason"].as_str().unwrap().contains("changed twice"),
        "{record}"
    );
    assert_eq!(scene.proxy.deletes(), 2, "{}", scene.proxy.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreated_trainjob_is_kept() {
    let scene = Scene::new("conflict-new").await;
    scene.due(&["reborn"]).await;
    let cluster = Arc::new(Cluster::connect().await);
    let ns = scene.ns.clone();
    scene.proxy.add(
        Rule::delete_trainjob()
            .named("reborn")
            .times(1)
            .then(Action::before(move || {
                let cluster = Arc::clone(&cluster);
                let ns = ns.clone();
                async move {
                    cluster
                        .trainjobs(&ns)
                        .delete("reborn", &Default::default())
                        .await
                        .expect("delete reborn");
                    cluster.create(&trainjob(&ns, "reborn")).await;
                }
            })),
    );

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert_eq!(scene.remaining().await, set(&["reborn"]));
    let record = run.record("reborn");
    assert_eq!(record["result"], "conflict", "{record}");
    assert_eq!(record["rule"], "recreated", "{record}");
    let new = scene
        .cluster
        .trainjobs(&scene.ns)
        .get("reborn")
        .await
        .unwrap();
    let new_uid = new.metadata.uid.unwrap();
    assert_ne!(record["uid"], new_uid.as_str());
    assert!(
        record["reason"].as_str().unwrap().contains(&new_uid),
        "{record}"
    );
    assert_eq!(scene.proxy.deletes(), 1, "{}", scene.proxy.describe());
}

// --- limits applied before the first deletion -------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_deletions_takes_most_overdue_first() {
    let scene = Scene::new("max-deletions").await;
    // The names sort against the overdue order, so that a tie-break by name would fail.
    scene.due(&["z-old-1", "z-old-2"]).await;
    let jobs = [
        trainjob(&scene.ns, "a-recent-1").completed(2),
        trainjob(&scene.ns, "a-recent-2").completed(2),
    ];
    scene.create_all(&jobs[..1]).await;
    let last = scene.cluster.create(&jobs[1]).await;
    wait_past_creation(&last, 3).await;

    let run = scene.run(&[("TRAINJOB_GC_MAX_DELETIONS", "2")]).await;

    run.assert_code(8);
    assert_eq!(
        scene.remaining().await,
        set(&["a-recent-1", "a-recent-2"]),
        "{}",
        run.explain()
    );
    assert_eq!(names(&run, "backlog"), set(&["a-recent-1", "a-recent-2"]));
    assert_eq!(names(&run, "deleted"), set(&["z-old-1", "z-old-2"]));
    assert_eq!(scene.proxy.deletes(), 2);
    assert_eq!(run.summary()["backlog"], 2);
    assert_logged(&run, "TRAINJOB_GC_MAX_DELETIONS", "\"backlog\":2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_above_deletes_none() {
    let scene = Scene::new("abort-above").await;
    scene.due(&["a", "b", "c"]).await;
    scene.young(&["young"]).await;

    let tripped = scene.run(&[("TRAINJOB_GC_ABORT_ABOVE", "2")]).await;

    tripped.assert_code(9);
    assert_eq!(scene.remaining().await, set(&["a", "b", "c", "young"]));
    assert_eq!(names(&tripped, "aborted"), set(&["a", "b", "c"]));
    assert_eq!(scene.proxy.deletes(), 0, "{}", scene.proxy.describe());
    assert_logged(&tripped, "TRAINJOB_GC_ABORT_ABOVE=2", "\"due\":3");

    // Exactly as many as the limit is not more than it.
    let at_limit = scene.run(&[("TRAINJOB_GC_ABORT_ABOVE", "3")]).await;

    at_limit.assert_code(0);
    assert_eq!(scene.remaining().await, set(&["young"]));
}

// --- deadline and signals ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_stops_new_deletions() {
    let scene = Scene::new("deadline").await;
    let jobs: Vec<String> = (0..8).map(|i| format!("job-{i}")).collect();
    let job_names: Vec<&str> = jobs.iter().map(String::as_str).collect();
    scene.due(&job_names).await;
    scene
        .proxy
        .add(Rule::delete_trainjob().then(Action::Delay(Duration::from_millis(300))));

    let started = Instant::now();
    let run = scene
        .run(&[
            ("TRAINJOB_GC_DEADLINE", "1s"),
            ("TRAINJOB_GC_CONCURRENCY", "1"),
        ])
        .await;
    let took = started.elapsed();

    run.assert_code(7);
    let deleted = names(&run, "deleted");
    let interrupted = names(&run, "interrupted");
    assert!(!deleted.is_empty(), "{}", run.explain());
    assert!(!interrupted.is_empty(), "{}", run.explain());
    assert_eq!(deleted.len() + interrupted.len(), 8, "{}", run.explain());
    assert_eq!(scene.remaining().await, interrupted);
    assert_eq!(scene.proxy.deletes(), deleted.len());
    assert_eq!(run.summary()["exitCode"], 7);
    assert!(took < Duration::from_secs(2), "the run took {took:?}");
    assert_logged(&run, "deadline reached", "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_exits_7() {
    let scene = Scene::new("sigterm").await;
    let jobs: Vec<String> = (0..300).map(|i| format!("job-{i:03}")).collect();
    let job_names: Vec<&str> = jobs.iter().map(String::as_str).collect();
    scene.due(&job_names).await;
    scene
        .proxy
        .add(Rule::delete_trainjob().then(Action::Delay(Duration::from_millis(50))));
    let settings = scene.settings(&[("TRAINJOB_GC_CONCURRENCY", "4")]);

    let running = start(&scene.proxy.kubeconfig(), &settings);
    while scene.proxy.deletes() < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.signal("TERM").await;
    let signalled = Instant::now();
    let (run, ended) = running.finish(Duration::from_secs(10)).await;

    run.assert_code(7);
    let took = ended.duration_since(signalled);
    assert!(took < Duration::from_secs(2), "exit {took:?} after SIGTERM");
    let summary = run.summary();
    assert_eq!(summary["exitCode"], 7);
    assert_eq!(summary["listed"], 300);
    let deleted = names(&run, "deleted");
    let interrupted = names(&run, "interrupted");
    assert_eq!(deleted.len() + interrupted.len(), 300, "{}", run.explain());
    assert!(interrupted.len() > 200, "{} interrupted", interrupted.len());
    assert_eq!(scene.remaining().await, interrupted);
    // Only deletions already started when the signal came may reach the server after it.
    let late: Vec<_> = scene
        .proxy
        .exchanges()
        .into_iter()
        .filter(|e| e.is_trainjob_delete() && e.arrived > signalled)
        .collect();
    assert!(late.len() <= 4, "{} deletions after SIGTERM", late.len());
    assert!(
        late.iter()
            .all(|e| e.arrived.duration_since(signalled) < Duration::from_millis(100)),
        "a deletion started well after SIGTERM"
    );
    assert_eq!(scene.proxy.deletes(), deleted.len());
    assert_logged(&run, "signal received", "SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_listing_deletes_nothing() {
    let scene = Scene::new("sigint").await;
    scene.due(&["a", "b", "c"]).await;
    scene
        .proxy
        .add(Rule::list_trainjobs().then(Action::Delay(Duration::from_millis(500))));
    let settings = scene.settings(&[]);

    let running = start(&scene.proxy.kubeconfig(), &settings);
    while scene.proxy.lists() < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.signal("INT").await;
    let (run, _) = running.finish(Duration::from_secs(10)).await;

    run.assert_code(7);
    assert_eq!(scene.remaining().await, set(&["a", "b", "c"]));
    assert_eq!(names(&run, "interrupted"), set(&["a", "b", "c"]));
    assert_eq!(scene.proxy.deletes(), 0);
    assert_logged(&run, "signal received", "SIGINT");
}

/// Starts a run whose only DELETE stalls, and returns once that DELETE has reached the proxy.
/// The default request timeout is 30 s, as long as a pod's default grace period.
async fn start_with_stalled_delete(scene: &Scene) -> harness::Running {
    scene.due(&["stuck"]).await;
    scene
        .proxy
        .add(Rule::delete_trainjob().then(Action::Stall(Duration::from_secs(120))));
    let running = start(&scene.proxy.kubeconfig(), &scene.settings(&[]));
    while scene.proxy.deletes() < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stalled_delete_exits_within_grace() {
    let scene = Scene::new("stalled").await;
    let running = start_with_stalled_delete(&scene).await;

    running.signal("TERM").await;
    let signalled = Instant::now();
    let (run, ended) = running.finish(Duration::from_secs(40)).await;

    run.assert_code(7);
    let took = ended.duration_since(signalled);
    assert!(
        took < Duration::from_secs(12),
        "exit {took:?} after SIGTERM"
    );
    assert_eq!(names(&run, "interrupted"), set(&["stuck"]));
    assert_eq!(run.summary()["exitCode"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_signal_exits_at_once() {
    let scene = Scene::new("two-signals").await;
    let running = start_with_stalled_delete(&scene).await;

    running.signal("TERM").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.signal("INT").await;
    let (run, _) = running.finish(Duration::from_secs(40)).await;

    run.assert_code(7);
    assert_logged(&run, "second signal received", "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_configmap_read_exits_7() {
    let scene = Scene::new("sigterm-configmap").await;
    scene.proxy.add(
        Rule::request(Method::GET, "/configmaps/").then(Action::Stall(Duration::from_secs(120))),
    );
    let configmap = format!("{}/policy", scene.ns);
    let settings = scene.settings(&[("TRAINJOB_GC_CONFIGMAP", &configmap)]);

    let running = start(&scene.proxy.kubeconfig(), &settings);
    while scene.proxy.count(|e| e.path.contains("/configmaps/")) < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.signal("TERM").await;
    let signalled = Instant::now();
    let (run, ended) = running.finish(Duration::from_secs(40)).await;

    run.assert_code(7);
    let took = ended.duration_since(signalled);
    assert!(
        took < Duration::from_secs(12),
        "exit {took:?} after SIGTERM"
    );
    assert!(
        scene.proxy.writes().is_empty(),
        "{}",
        scene.proxy.describe()
    );
}

// --- the API server's clock -------------------------------------------------------------------

/// Builds a rule that sets every response's `Date` to the local time plus `offset_seconds`.
fn shift_date(offset_seconds: i64) -> Rule {
    Rule::any().then(Action::edit_headers(move |headers| {
        let shifted = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(offset_seconds))
            .unwrap();
        let text = shifted.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        headers.insert(http::header::DATE, text.parse().unwrap());
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_clock_behind_keeps_future_finish() {
    let scene = Scene::new("clock-behind").await;
    scene.due(&["just-finished"]).await;
    scene.proxy.add(shift_date(-3600));

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert_eq!(scene.remaining().await, set(&["just-finished"]));
    let record = run.record("just-finished");
    assert_eq!(record["rule"], "clock-skew", "{record}");
    assert_logged(
        &run,
        "the local clock differs from the API server's",
        "skew_seconds",
    );
    let skew = logs(&run)
        .iter()
        .find_map(|e| e["skew_seconds"].as_u64())
        .unwrap();
    assert!((3595..=3605).contains(&skew), "skew of {skew} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_clock_ahead_is_used() {
    let scene = Scene::new("clock-ahead").await;
    scene.due(&["done"]).await;
    scene.proxy.add(shift_date(7200));

    let run = scene.run(&[("TRAINJOB_GC_TTL", "1h")]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    assert_logged(
        &run,
        "the local clock differs from the API server's",
        "skew_seconds",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_date_uses_local_clock() {
    let scene = Scene::new("no-date").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::any().then(Action::edit_headers(|headers| {
            headers.remove(http::header::DATE);
        })));

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert!(scene.remaining().await.is_empty(), "{}", run.explain());
    assert_logged(&run, "sent no Date header", "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_finish_time_is_kept() {
    let scene = Scene::new("future-finish").await;
    scene
        .create_all(&[trainjob(&scene.ns, "ahead").completed(3600)])
        .await;

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert_eq!(scene.remaining().await, set(&["ahead"]));
    assert_eq!(run.record("ahead")["rule"], "clock-skew");
    assert_eq!(scene.proxy.deletes(), 0);
}

// --- a broken list ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_without_item_array_exits_3() {
    let scene = Scene::new("not-a-list").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::list_trainjobs().then(Action::rewrite(|list| {
            list["items"] = json!({"not": "an array"});
        })));

    let run = scene.run(&[]).await;

    run.assert_code(3);
    assert_eq!(scene.remaining().await, set(&["done"]));
    assert_logged(&run, "not a readable list", "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_list_items_are_empty_page() {
    let scene = Scene::new("null-items").await;
    scene.due(&["done"]).await;
    scene
        .proxy
        .add(Rule::list_trainjobs().then(Action::rewrite(|list| {
            list["items"] = serde_json::Value::Null;
        })));

    let run = scene.run(&[]).await;

    run.assert_code(0);
    assert_eq!(scene.remaining().await, set(&["done"]));
    assert_eq!(run.summary()["listed"], 0);
}

// --- an API server of its own -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_restart_is_survived() {
    let own = own_cluster::OwnCluster::start(&[]).await;
    let ns = own.cluster.namespace("restart").await;
    let jobs: Vec<Fixture> = (0..20)
        .map(|i| trainjob(&ns, &format!("job-{i:02}")).completed(0))
        .chain([trainjob(&ns, "running")])
        .collect();
    futures::stream::iter(&jobs)
        .for_each_concurrent(8, |job| async {
            own.cluster.create(job).await;
        })
        .await;
    let kubeconfig = own.cluster.kubeconfig.clone();
    let settings = [
        ("TRAINJOB_GC_NAMESPACES", ns.as_str()),
        TTL_ZERO,
        ("TRAINJOB_GC_QPS", "5"),
        ("TRAINJOB_GC_BURST", "1"),
        ("TRAINJOB_GC_RETRY_LIMIT", "40"),
        ("TRAINJOB_GC_RETRY_BACKOFF", "100ms"),
        // A kube-apiserver that is starting returns 503 with Retry-After: 5 until its paths are
        // installed; a maximum below 5 s would give those requests up.
        ("TRAINJOB_GC_RETRY_BACKOFF_MAX", "6s"),
        ("TRAINJOB_GC_RETRY_BUDGET", "1000"),
        ("TRAINJOB_GC_REQUEST_TIMEOUT", "5s"),
    ];

    let running = start(&kubeconfig, &settings);
    while own.cluster.remaining(&ns).await.len() > 18 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    own.stop_apiserver().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    own.start_apiserver().await;
    let (run, _) = running.finish(Duration::from_secs(60)).await;

    run.assert_code(0);
    assert_eq!(own.cluster.remaining(&ns).await, set(&["running"]));
    let summary = run.summary();
    let gone = summary["deleted"].as_u64().unwrap() + summary["alreadyGone"].as_u64().unwrap();
    assert_eq!(gone, 20, "{}", run.explain());
    assert!(
        summary["retries"].as_u64().unwrap() > 0,
        "{}",
        run.explain()
    );
    assert!(
        retried_faults(&run)
            .iter()
            .any(|f| f.contains("connection failed")),
        "{}",
        run.explain()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_crd_exits_4() {
    let own = own_cluster::OwnCluster::start(&["--no-crd"]).await;

    let run = run(&own.cluster.kubeconfig, &[("TRAINJOB_GC_TTL", "7d")]).await;

    run.assert_code(4);
    assert_logged(&run, "trainjobs.trainer.kubeflow.org", "is not installed");
}
