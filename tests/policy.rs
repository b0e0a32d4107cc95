//! Retention rules on a real API server: the ConfigMap, per-outcome TTLs, KEEP_LAST, the
//! annotations, lifecycles owned elsewhere and the audit report.

mod support;

use std::collections::BTreeSet;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use support::{Cluster, set, trainjob, wait_past_creation};

fn real_run<'a>(namespace: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut settings = vec![
        ("TRAINJOB_GC_NAMESPACES", namespace),
        ("TRAINJOB_GC_DRY_RUN", "false"),
    ];
    settings.extend_from_slice(extra);
    settings
}

async fn create_configmap(cluster: &Cluster, namespace: &str, name: &str, data: serde_json::Value) {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"));
    let api: Api<DynamicObject> =
        Api::namespaced_with(cluster.client.clone(), namespace, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data
    }))
    .unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .expect("create the ConfigMap");
}

#[tokio::test]
async fn configmap_policy_applies_and_environment_overrides_it() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("cm-policy").await;
    create_configmap(
        &cluster,
        &ns,
        "policy",
        json!({"TRAINJOB_GC_TTL": "1h", "TRAINJOB_GC_TTL_FAILED": "1s"}),
    )
    .await;
    let job = cluster
        .create(&trainjob(&ns, "completed").completed(0))
        .await;
    cluster.create(&trainjob(&ns, "failed").failed(0)).await;
    wait_past_creation(&job, 2).await;
    let configmap = format!("{ns}/policy");

    let first = cluster.run(
        &real_run(&ns, &[("TRAINJOB_GC_CONFIGMAP", &configmap)]),
        &[],
    );
    first.assert_code(0);
    assert_eq!(
        cluster.remaining(&ns).await,
        set(&["completed"]),
        "{}",
        first.explain()
    );
    assert_eq!(
        first.record("failed")["ttlSource"],
        "TRAINJOB_GC_TTL_FAILED"
    );
    assert!(
        first.stderr.contains(&format!("ConfigMap {configmap}")),
        "effective settings do not name the ConfigMap:\n{}",
        first.explain()
    );

    let second = cluster.run(
        &real_run(
            &ns,
            &[
                ("TRAINJOB_GC_CONFIGMAP", &configmap),
                ("TRAINJOB_GC_TTL", "1s"),
            ],
        ),
        &[],
    );
    second.assert_code(0);
    assert!(
        cluster.remaining(&ns).await.is_empty(),
        "{}",
        second.explain()
    );
}

#[tokio::test]
async fn configmap_flag_overrides_environment() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("cm-flag").await;
    create_configmap(&cluster, &ns, "good", json!({"TRAINJOB_GC_TTL": "1h"})).await;
    let flag = format!("{ns}/good");

    let run = cluster.run(
        &[
            ("TRAINJOB_GC_CONFIGMAP", "nowhere/missing"),
            ("TRAINJOB_GC_NAMESPACES", &ns),
        ],
        &["--configmap", &flag],
    );

    run.assert_code(0);
}

#[tokio::test]
async fn missing_configmap_exits_5() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("cm-missing").await;
    let configmap = format!("{ns}/absent");

    let run = cluster.run(
        &[
            ("TRAINJOB_GC_CONFIGMAP", &configmap),
            ("TRAINJOB_GC_TTL", "1h"),
        ],
        &[],
    );

    run.assert_code(5);
    assert!(
        run.stderr.contains("not found") && run.stderr.contains(&configmap),
        "{}",
        run.explain()
    );
}

#[tokio::test]
async fn forbidden_configmap_exits_5() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("cm-forbidden").await;
    create_configmap(&cluster, &ns, "policy", json!({"TRAINJOB_GC_TTL": "1h"})).await;
    let configmap = format!("{ns}/policy");
    let limited = std::path::PathBuf::from(support::env_var("TEST_LIMITED_KUBECONFIG"));

    let run = cluster.run_as(&limited, &[("TRAINJOB_GC_CONFIGMAP", &configmap)], &[]);

    run.assert_code(5);
    assert!(
        run.stderr.contains("may not read") && run.stderr.contains("grant get"),
        "{}",
        run.explain()
    );
}

#[tokio::test]
async fn invalid_configmap_values_are_configuration_errors() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("cm-invalid").await;
    let cases = [
        (
            "bad-ttl",
            json!({"TRAINJOB_GC_TTL": "10ay"}),
            "TRAINJOB_GC_TTL=\"10ay\"",
        ),
        (
            "dry-run",
            json!({"TRAINJOB_GC_TTL": "1h", "TRAINJOB_GC_DRY_RUN": "false"}),
            "TRAINJOB_GC_DRY_RUN=\"false\"",
        ),
        (
            "unknown",
            json!({"TRAINJOB_GC_TTL": "1h", "TRAINJOB_GC_KEEP_LATEST": "3"}),
            "did you mean TRAINJOB_GC_KEEP_LAST",
        ),
        (
            "contradiction",
            json!({"TRAINJOB_GC_POLICY": "delete_on_completion", "TRAINJOB_GC_TTL": "1h"}),
            "contradicts",
        ),
        // An unknown key does not hide a bad value next to it.
        (
            "typo-and-bad-value",
            json!({"TRAINJOB_GC_TTL": "10ay", "TRAINJOB_GC_KEEP_LATEST": "3"}),
            "(2 problems)",
        ),
    ];
    for (name, data, expected) in cases {
        create_configmap(&cluster, &ns, name, data).await;
        let configmap = format!("{ns}/{name}");
        let run = cluster.run(
            &[
                ("TRAINJOB_GC_CONFIGMAP", &configmap),
                ("TRAINJOB_GC_NAMESPACES", &ns),
            ],
            &[],
        );
        assert_eq!(run.code, 2, "case {name}\n{}", run.explain());
        assert!(
            run.log().contains(expected),
            "case {name}: no {expected:?} in\n{}",
            run.explain()
        );
        assert!(
            run.log().contains(&format!("ConfigMap {configmap}")),
            "case {name}: source not named\n{}",
            run.explain()
        );
    }
}

#[tokio::test]
async fn per_outcome_ttls() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("outcome-ttl").await;
    let job = cluster
        .create(&trainjob(&ns, "succeeded").completed(0))
        .await;
    cluster.create(&trainjob(&ns, "failed").failed(0)).await;
    wait_past_creation(&job, 2).await;

    let run = cluster.run(
        &real_run(
            &ns,
            &[
                ("TRAINJOB_GC_TTL_SUCCEEDED", "0s"),
                ("TRAINJOB_GC_TTL_FAILED", "7d"),
            ],
        ),
        &[],
    );

    run.assert_code(0);
    assert_eq!(
        cluster.remaining(&ns).await,
        set(&["failed"]),
        "{}",
        run.explain()
    );
    assert_eq!(run.record("failed")["ttlSeconds"], 7 * 86400);
    assert!(run.record("failed")["overdueSeconds"].as_i64().unwrap() < 0);
}

#[tokio::test]
async fn keep_last_orders_by_finish_time_not_creation() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("keep-last").await;
    // Created first but finished last: KEEP_LAST must keep it.
    let old = cluster
        .create(&trainjob(&ns, "created-first-finished-last").completed(4))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    cluster
        .create(&trainjob(&ns, "created-last-finished-first").completed(0))
        .await;
    cluster.create(&trainjob(&ns, "running")).await;
    cluster
        .create(
            &trainjob(&ns, "opted-out")
                .completed(0)
                .annotation("trainjob-gc/keep", "true"),
        )
        .await;
    wait_past_creation(&old, 6).await;

    let run = cluster.run(
        &real_run(
            &ns,
            &[("TRAINJOB_GC_TTL", "1s"), ("TRAINJOB_GC_KEEP_LAST", "1")],
        ),
        &[],
    );

    run.assert_code(0);
    assert_eq!(
        cluster.remaining(&ns).await,
        set(&["created-first-finished-last", "running", "opted-out"]),
        "{}",
        run.explain()
    );
    assert_eq!(
        run.record("created-first-finished-last")["rule"],
        "keep-last"
    );
}

#[tokio::test]
async fn annotations_and_their_precedence() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("annotations").await;
    let first = cluster
        .create(
            &trainjob(&ns, "shorter-than-policy")
                .completed(0)
                .annotation("trainjob-gc/ttl", "1s"),
        )
        .await;
    cluster
        .create(
            &trainjob(&ns, "longer-than-policy")
                .completed(0)
                .annotation("trainjob-gc/ttl", "1h"),
        )
        .await;
    cluster
        .create(
            &trainjob(&ns, "keep-wins")
                .completed(0)
                .annotation("trainjob-gc/ttl", "1s")
                .annotation("trainjob-gc/keep", "true"),
        )
        .await;
    cluster
        .create(
            &trainjob(&ns, "invalid")
                .completed(0)
                .annotation("trainjob-gc/ttl", "10ay"),
        )
        .await;
    cluster
        .create(
            &trainjob(&ns, "negative")
                .completed(0)
                .annotation("trainjob-gc/ttl", "-5m"),
        )
        .await;
    cluster
        .create(
            &trainjob(&ns, "keep-typo")
                .completed(0)
                .annotation("trainjob-gc/keep", "True"),
        )
        .await;
    wait_past_creation(&first, 3).await;

    // The policy TTL is 2s, so "longer-than-policy" would go without its annotation.
    let run = cluster.run(&real_run(&ns, &[("TRAINJOB_GC_TTL", "2s")]), &[]);

    run.assert_code(0);
    assert_eq!(
        cluster.remaining(&ns).await,
        set(&[
            "longer-than-policy",
            "keep-wins",
            "invalid",
            "negative",
            "keep-typo"
        ]),
        "{}",
        run.explain()
    );
    assert_eq!(run.record("invalid")["rule"], "invalid-annotation");
    assert_eq!(run.record("keep-wins")["rule"], "keep-annotation");
    assert_eq!(run.record("keep-typo")["rule"], "invalid-annotation");
    assert_eq!(run.record("longer-than-policy")["rule"], "ttl-annotation");
    assert_eq!(run.summary()["invalidAnnotations"], 3);
    assert!(
        run.stderr.contains("10ay"),
        "the invalid value is not logged:\n{}",
        run.explain()
    );

    // Under INVALID_ANNOTATION=policy an unreadable ttl falls back to the policy, but an
    // unreadable keep annotation still keeps.
    let policy = cluster.run(
        &real_run(
            &ns,
            &[
                ("TRAINJOB_GC_TTL", "2s"),
                ("TRAINJOB_GC_INVALID_ANNOTATION", "policy"),
            ],
        ),
        &[],
    );
    policy.assert_code(0);
    assert_eq!(
        cluster.remaining(&ns).await,
        set(&["longer-than-policy", "keep-wins", "keep-typo"]),
        "{}",
        policy.explain()
    );
}

#[tokio::test]
async fn max_ttl_caps_a_longer_annotation() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("max-ttl").await;
    let first = cluster
        .create(
            &trainjob(&ns, "asks-a-month")
                .completed(0)
                .annotation("trainjob-gc/ttl", "30d"),
        )
        .await;
    cluster
        .create(
            &trainjob(&ns, "asks-an-hour")
                .completed(0)
                .annotation("trainjob-gc/ttl", "1h"),
        )
        .await;
    wait_past_creation(&first, 3).await;

    let run = cluster.run(
        &real_run(
            &ns,
            &[("TRAINJOB_GC_TTL", "1s"), ("TRAINJOB_GC_MAX_TTL", "2s")],
        ),
        &[],
    );

    run.assert_code(0);
    assert!(cluster.remaining(&ns).await.is_empty(), "{}", run.explain());
    assert_eq!(
        run.record("asks-a-month")["ttlSource"],
        "trainjob-gc/ttl capped by TRAINJOB_GC_MAX_TTL"
    );

    let below = cluster.run(
        &real_run(
            &ns,
            &[("TRAINJOB_GC_TTL", "7d"), ("TRAINJOB_GC_MAX_TTL", "1m")],
        ),
        &[],
    );
    below.assert_code(2);
    assert!(
        below.log().contains("TRAINJOB_GC_MAX_TTL=\"1m\""),
        "{}",
        below.explain()
    );
}

#[tokio::test]
async fn lifecycles_owned_elsewhere_are_kept_unless_included() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("owned").await;
    let jobs = [
        trainjob(&ns, "managed-by").managed_by("kueue.x-k8s.io/multikueue"),
        trainjob(&ns, "multikueue-copy").label("kueue.x-k8s.io/multikueue-origin", "manager-1"),
        trainjob(&ns, "owned").owned_by("Workflow", "pipeline-7"),
        trainjob(&ns, "argocd-annotation").annotation(
            "argocd.argoproj.io/tracking-id",
            "app:trainer.kubeflow.org/TrainJob:ns/x",
        ),
        trainjob(&ns, "argocd-label").label("app.kubernetes.io/instance", "training-app"),
        trainjob(&ns, "flux").label("kustomize.toolkit.fluxcd.io/name", "training"),
        trainjob(&ns, "plain"),
    ];
    let mut first = None;
    for job in jobs {
        let created = cluster.create(&job.completed(0)).await;
        first.get_or_insert(created);
    }
    wait_past_creation(first.as_ref().unwrap(), 2).await;

    let kept = cluster.run(&real_run(&ns, &[("TRAINJOB_GC_TTL", "1s")]), &[]);
    kept.assert_code(0);
    let owned_elsewhere: BTreeSet<String> = [
        "managed-by",
        "multikueue-copy",
        "owned",
        "argocd-annotation",
        "argocd-label",
        "flux",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        cluster.remaining(&ns).await,
        owned_elsewhere,
        "{}",
        kept.explain()
    );
    for name in &owned_elsewhere {
        assert_eq!(kept.record(name)["rule"], "owned-elsewhere", "{name}");
    }

    let included = cluster.run(
        &real_run(
            &ns,
            &[
                ("TRAINJOB_GC_TTL", "1s"),
                (
                    "TRAINJOB_GC_INCLUDE",
                    "managed-by,multikueue-copy,owned,gitops",
                ),
            ],
        ),
        &[],
    );
    included.assert_code(0);
    assert!(
        cluster.remaining(&ns).await.is_empty(),
        "{}",
        included.explain()
    );
}

#[tokio::test]
async fn audit_of_dry_run_equals_what_the_real_run_deletes() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("audit").await;
    let first = cluster.create(&trainjob(&ns, "a-old").completed(0)).await;
    cluster.create(&trainjob(&ns, "b-old").failed(0)).await;
    cluster
        .create(&trainjob(&ns, "c-newest").completed(2))
        .await;
    cluster
        .create(
            &trainjob(&ns, "d-annotated")
                .completed(0)
                .annotation("trainjob-gc/ttl", "1h"),
        )
        .await;
    cluster.create(&trainjob(&ns, "e-running")).await;
    wait_past_creation(&first, 4).await;
    let settings = [("TRAINJOB_GC_TTL", "1s"), ("TRAINJOB_GC_KEEP_LAST", "1")];

    let report = tempfile::NamedTempFile::new().unwrap();
    let report_path = report.path().to_str().unwrap().to_owned();
    let dry = cluster.run(
        &[
            ("TRAINJOB_GC_NAMESPACES", &ns),
            settings[0],
            settings[1],
            ("TRAINJOB_GC_REPORT", &report_path),
        ],
        &[],
    );
    dry.assert_code(0);
    let audit = std::fs::read_to_string(report.path()).unwrap();
    let mut would_delete = BTreeSet::new();
    let keys = [
        "namespace",
        "name",
        "uid",
        "resourceVersion",
        "outcome",
        "decision",
        "reason",
        "rule",
        "finishedAt",
        "ttlSeconds",
        "ttlSource",
        "expiresAt",
        "overdueSeconds",
        "result",
    ];
    for line in audit.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        if record.get("summary").is_some() {
            continue;
        }
        let found: BTreeSet<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            found,
            keys.iter().copied().collect::<BTreeSet<_>>(),
            "report keys"
        );
        if record["decision"] == "delete" {
            assert_eq!(record["result"], "would-delete");
            would_delete.insert(record["uid"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(would_delete.len(), 2, "{audit}");

    let real = cluster.run(&real_run(&ns, &settings), &[]);
    real.assert_code(0);
    let deleted: BTreeSet<String> = real
        .records()
        .iter()
        .filter(|r| r["result"] == "deleted")
        .map(|r| r["uid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deleted, would_delete, "{}", real.explain());
    assert_eq!(
        cluster.remaining(&ns).await,
        set(&["c-newest", "d-annotated", "e-running"])
    );
}

#[tokio::test]
async fn now_flag_audits_a_later_time_in_dry_run_only() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("now-flag").await;
    cluster
        .create(&trainjob(&ns, "finished").completed(0))
        .await;
    let monday = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(72)).to_string();

    let today = cluster.run(
        &[("TRAINJOB_GC_NAMESPACES", &ns), ("TRAINJOB_GC_TTL", "2d")],
        &[],
    );
    today.assert_code(0);
    assert_eq!(today.record("finished")["result"], "kept");

    let later = cluster.run(
        &[("TRAINJOB_GC_NAMESPACES", &ns), ("TRAINJOB_GC_TTL", "2d")],
        &["--now", &monday],
    );
    later.assert_code(0);
    assert_eq!(
        later.record("finished")["result"],
        "would-delete",
        "{}",
        later.explain()
    );

    let refused = cluster.run(
        &real_run(&ns, &[("TRAINJOB_GC_TTL", "2d")]),
        &["--now", &monday],
    );
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("dry-run only"),
        "{}",
        refused.explain()
    );
    assert_eq!(cluster.remaining(&ns).await, set(&["finished"]));
}

#[tokio::test]
async fn configmap_value_resolves_a_conflict_between_settings() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("cm-resolves").await;
    create_configmap(
        &cluster,
        &ns,
        "policy",
        json!({"TRAINJOB_GC_TTL": "1h", "TRAINJOB_GC_RETRY_BACKOFF_MAX": "2m"}),
    )
    .await;
    let configmap = format!("{ns}/policy");

    // RETRY_BACKOFF=1m alone is longer than the default maximum of 30s; the ConfigMap raises it.
    let run = cluster.run(
        &[
            ("TRAINJOB_GC_CONFIGMAP", &configmap),
            ("TRAINJOB_GC_RETRY_BACKOFF", "1m"),
            ("TRAINJOB_GC_NAMESPACES", &ns),
        ],
        &[],
    );

    run.assert_code(0);
}
