//! Malformed input through the real binary: TrainJob list items of the wrong shape, and invalid
//! configuration values.
//!
//! Run with `hack/with-cluster.sh -- cargo test --release --test malformed`. A proxy between the
//! binary and the API server rewrites list items and counts every request.

#[path = "faults/harness.rs"]
mod harness;
#[path = "faults/proxy.rs"]
mod proxy;
mod support;

use std::collections::BTreeMap;

use harness::{logs, run, run_with_args};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use proxy::{Action, Proxy, Rule};
use serde_json::{Value, json};
use support::{Cluster, set, trainjob};

// --- malformed TrainJobs ----------------------------------------------------------------------

/// What the report line of a malformed item can name.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Identity {
    /// Namespace, name and uid.
    Full,
    /// Namespace and name; the uid is missing.
    NoUid,
    /// Namespace and uid; the name is not a string.
    NoName,
    /// Nothing: the item is not an object with metadata.
    Nothing,
}

/// One malformed shape: the TrainJob it replaces, how, and the rule it is kept by.
struct Shape {
    name: &'static str,
    edit: fn(&mut Value),
    rule: &'static str,
    identity: Identity,
}

fn condition(item: &mut Value) -> &mut Value {
    &mut item["status"]["conditions"][0]
}

fn metadata(item: &mut Value) -> &mut serde_json::Map<String, Value> {
    item["metadata"].as_object_mut().unwrap()
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "status-string",
        edit: |item| item["status"] = json!("Complete"),
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "conditions-object",
        edit: |item| {
            item["status"]["conditions"] = json!({"type": "Complete", "status": "True"});
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "condition-status-integer",
        edit: |item| condition(item)["status"] = json!(1),
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "condition-status-boolean",
        edit: |item| condition(item)["status"] = json!(true),
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "condition-status-yes",
        edit: |item| condition(item)["status"] = json!("Yes"),
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "condition-type-null",
        edit: |item| condition(item)["type"] = Value::Null,
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "condition-without-type",
        edit: |item| {
            condition(item).as_object_mut().unwrap().remove("type");
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "condition-not-an-object",
        edit: |item| item["status"]["conditions"] = json!([42]),
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "complete-twice",
        edit: |item| {
            let first = condition(item).clone();
            item["status"]["conditions"]
                .as_array_mut()
                .unwrap()
                .push(first);
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "unknown-condition-type",
        edit: |item| {
            item["status"]["conditions"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "Evicted", "status": "True",
                             "lastTransitionTime": "2026-01-01T00:00:00Z"}));
        },
        rule: "unknown-condition",
        identity: Identity::Full,
    },
    Shape {
        name: "time-yesterday",
        edit: |item| condition(item)["lastTransitionTime"] = json!("yesterday"),
        rule: "finish-time-unknown",
        identity: Identity::Full,
    },
    Shape {
        name: "time-empty",
        edit: |item| condition(item)["lastTransitionTime"] = json!(""),
        rule: "finish-time-unknown",
        identity: Identity::Full,
    },
    Shape {
        name: "time-number",
        edit: |item| condition(item)["lastTransitionTime"] = json!(1_767_225_600),
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "time-year-99999",
        edit: |item| condition(item)["lastTransitionTime"] = json!("99999-01-01T00:00:00Z"),
        rule: "finish-time-unknown",
        identity: Identity::Full,
    },
    Shape {
        name: "time-before-creation",
        edit: |item| condition(item)["lastTransitionTime"] = json!("2000-01-01T00:00:00Z"),
        rule: "finish-time-unknown",
        identity: Identity::Full,
    },
    Shape {
        name: "null-conditions",
        edit: |item| item["status"]["conditions"] = Value::Null,
        rule: "not-finished",
        identity: Identity::Full,
    },
    Shape {
        name: "no-uid",
        edit: |item| {
            metadata(item).remove("uid");
        },
        rule: "malformed",
        identity: Identity::NoUid,
    },
    Shape {
        name: "uid-number",
        edit: |item| {
            metadata(item).insert("uid".into(), json!(12345));
        },
        rule: "malformed",
        identity: Identity::NoUid,
    },
    Shape {
        name: "no-resource-version",
        edit: |item| {
            metadata(item).remove("resourceVersion");
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "name-number",
        edit: |item| {
            metadata(item).insert("name".into(), json!(42));
        },
        rule: "malformed",
        identity: Identity::NoName,
    },
    Shape {
        name: "labels-array",
        edit: |item| {
            metadata(item).insert("labels".into(), json!(["team", "research"]));
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "annotation-number",
        edit: |item| {
            metadata(item).insert("annotations".into(), json!({"trainjob-gc/ttl": 5}));
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "ttl-annotation-forever",
        edit: |item| {
            metadata(item).insert("annotations".into(), json!({"trainjob-gc/ttl": "forever"}));
        },
        rule: "invalid-annotation",
        identity: Identity::Full,
    },
    Shape {
        name: "owner-references-object",
        edit: |item| {
            metadata(item).insert(
                "ownerReferences".into(),
                json!({"kind": "Workflow", "name": "w", "controller": true}),
            );
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "finalizers-string",
        edit: |item| {
            metadata(item).insert("finalizers".into(), json!("example.com/hold"));
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "creation-number",
        edit: |item| {
            metadata(item).insert("creationTimestamp".into(), json!(1_767_225_600));
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "no-namespace",
        edit: |item| {
            metadata(item).remove("namespace");
        },
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "deletion-timestamp-garbage",
        edit: |item| {
            metadata(item).insert("deletionTimestamp".into(), json!("soon"));
        },
        rule: "terminating",
        identity: Identity::Full,
    },
    Shape {
        name: "managed-by-number",
        edit: |item| item["spec"]["managedBy"] = json!(7),
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "spec-array",
        edit: |item| item["spec"] = json!([1, 2]),
        rule: "malformed",
        identity: Identity::Full,
    },
    Shape {
        name: "metadata-string",
        edit: |item| item["metadata"] = json!("metadata"),
        rule: "malformed",
        identity: Identity::Nothing,
    },
    Shape {
        name: "no-metadata",
        edit: |item| {
            item.as_object_mut().unwrap().remove("metadata");
        },
        rule: "malformed",
        identity: Identity::Nothing,
    },
    Shape {
        name: "json-array",
        edit: |item| *item = json!([1, 2, 3]),
        rule: "malformed",
        identity: Identity::Nothing,
    },
    Shape {
        name: "json-string",
        edit: |item| *item = json!("TrainJob"),
        rule: "malformed",
        identity: Identity::Nothing,
    },
    Shape {
        name: "json-null",
        edit: |item| *item = Value::Null,
        rule: "malformed",
        identity: Identity::Nothing,
    },
    Shape {
        name: "json-number",
        edit: |item| *item = json!(7),
        rule: "malformed",
        identity: Identity::Nothing,
    },
    Shape {
        name: "empty-object",
        edit: |item| *item = json!({}),
        rule: "malformed",
        identity: Identity::Nothing,
    },
];

/// Replaces each list item named like a shape by that shape.
fn apply_shapes(list: &mut Value) {
    let Some(items) = list["items"].as_array_mut() else {
        return;
    };
    for item in items {
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        if let Some(shape) = SHAPES.iter().find(|shape| shape.name == name) {
            (shape.edit)(item);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_items_kept_valid_one_deleted() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("malformed").await;
    let mut uids = BTreeMap::new();
    for name in SHAPES.iter().map(|shape| shape.name).chain(["valid"]) {
        let created = cluster.create(&trainjob(&ns, name).completed(0)).await;
        uids.insert(name, created.metadata.uid.unwrap());
    }
    let proxy = Proxy::start().await;
    proxy.add(Rule::list_trainjobs().then(Action::rewrite(apply_shapes)));

    // Pages of 5, so that malformed items sit on several pages next to valid ones.
    let run = run(
        &proxy.kubeconfig(),
        &[
            ("TRAINJOB_GC_NAMESPACES", &ns),
            ("TRAINJOB_GC_TTL", "0s"),
            ("TRAINJOB_GC_PAGE_SIZE", "5"),
        ],
    )
    .await;

    run.assert_code(0);
    assert_eq!(run.with_result("deleted"), set(&["valid"]));
    assert_eq!(proxy.deletes(), 1, "{}", proxy.describe());
    let remaining = cluster.remaining(&ns).await;
    assert_eq!(remaining.len(), SHAPES.len(), "{}", run.explain());
    assert!(!remaining.contains("valid"));

    let records = run.records();
    assert_eq!(records.len(), SHAPES.len() + 1, "{}", run.explain());
    let mut anonymous = 0;
    for shape in SHAPES {
        let uid = uids[shape.name].as_str();
        let record = match shape.identity {
            Identity::Nothing => {
                anonymous += 1;
                continue;
            }
            Identity::Full | Identity::NoUid => records
                .iter()
                .find(|r| r["name"] == shape.name)
                .unwrap_or_else(|| panic!("no report line for {}\n{}", shape.name, run.explain())),
            Identity::NoName => records
                .iter()
                .find(|r| r["uid"] == uid)
                .unwrap_or_else(|| panic!("no report line for {}\n{}", shape.name, run.explain())),
        };
        let context = format!("{}: {record}", shape.name);
        assert_eq!(record["result"], "kept", "{context}");
        assert_eq!(record["rule"], shape.rule, "{context}");
        assert_eq!(record["namespace"], ns.as_str(), "{context}");
        match shape.identity {
            Identity::Full | Identity::NoName => assert_eq!(record["uid"], uid, "{context}"),
            Identity::NoUid => assert_ne!(record["uid"], uid, "{context}"),
            Identity::Nothing => unreachable!(),
        }
    }
    let nameless: Vec<_> = records
        .iter()
        .filter(|r| r["name"] == "" && r["uid"] == "")
        .collect();
    assert_eq!(nameless.len(), anonymous, "{}", run.explain());
    assert!(
        nameless
            .iter()
            .all(|r| r["result"] == "kept" && r["rule"] == "malformed")
    );

    // Each one is warned about with the identity it has; only not-finished is no anomaly.
    let events = logs(&run);
    for shape in SHAPES {
        if shape.rule == "not-finished"
            || matches!(shape.identity, Identity::Nothing | Identity::NoName)
        {
            continue;
        }
        let warned = events.iter().any(|e| {
            e["level"] == "WARN"
                && e["name"] == shape.name
                && e["namespace"] == ns.as_str()
                && (shape.identity != Identity::Full || e["uid"] == uids[shape.name].as_str())
        });
        assert!(warned, "no warning names {}\n{}", shape.name, run.explain());
    }
    let malformed = SHAPES.iter().filter(|s| s.rule == "malformed").count();
    assert_eq!(run.summary()["malformed"], malformed as u64);
}

/// Runs the binary on one namespace whose list items `edit` changes; returns the run and the
/// proxy.
async fn run_with_edited_items(
    ns: &str,
    edit: impl Fn(&mut Value) + Send + Sync + 'static,
) -> (support::Run, Proxy) {
    let proxy = Proxy::start().await;
    proxy.add(Rule::list_trainjobs().then(Action::rewrite(move |list| {
        for item in list["items"].as_array_mut().unwrap() {
            edit(item);
        }
    })));
    let run = run(
        &proxy.kubeconfig(),
        &[("TRAINJOB_GC_NAMESPACES", ns), ("TRAINJOB_GC_TTL", "0s")],
    )
    .await;
    (run, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_from_another_namespace_is_kept() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("elsewhere").await;
    cluster.create(&trainjob(&ns, "moved").completed(0)).await;
    cluster.create(&trainjob(&ns, "valid").completed(0)).await;

    let (run, proxy) = run_with_edited_items(&ns, |item| {
        if item["metadata"]["name"] == "moved" {
            item["metadata"]["namespace"] = json!("kube-system");
        }
    })
    .await;

    run.assert_code(0);
    assert_eq!(cluster.remaining(&ns).await, set(&["moved"]));
    let record = run.record("moved");
    assert_eq!(record["result"], "kept", "{record}");
    assert_eq!(record["rule"], "malformed", "{record}");
    assert_eq!(record["namespace"], "kube-system", "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("but the list was of namespace"),
        "{record}"
    );
    assert!(
        proxy
            .exchanges()
            .iter()
            .all(|e| !e.path.contains("kube-system")),
        "{}",
        proxy.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_creation_timestamp_is_kept() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("bad-creation").await;
    cluster.create(&trainjob(&ns, "garbled").completed(0)).await;

    let (run, proxy) = run_with_edited_items(&ns, |item| {
        item["metadata"]["creationTimestamp"] = json!("not a time");
    })
    .await;

    run.assert_code(0);
    assert_eq!(cluster.remaining(&ns).await, set(&["garbled"]));
    let record = run.record("garbled");
    assert_eq!(record["result"], "kept");
    assert_eq!(record["rule"], "finish-time-unknown", "{record}");
    assert_eq!(proxy.deletes(), 0, "{}", proxy.describe());
}

// --- invalid configuration --------------------------------------------------------------------

/// Returns the error message of a run that stopped on its configuration.
fn error_message(run: &support::Run) -> String {
    logs(run)
        .iter()
        .find(|event| event["level"] == "ERROR")
        .and_then(|event| event["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| run.stderr.clone())
}

/// Settings as `(name, value)` pairs.
type Pairs = Vec<(&'static str, &'static str)>;

/// Invalid values in the environment: the settings, then texts the error must contain.
fn invalid_environments() -> Vec<(Pairs, Vec<&'static str>)> {
    let ttl = ("TRAINJOB_GC_TTL", "7d");
    let case = |key: &'static str, value: &'static str| (vec![ttl, (key, value)], vec![key, value]);
    vec![
        (
            vec![("TRAINJOB_GC_TTL", "3600")],
            vec!["TRAINJOB_GC_TTL=\"3600\"", "3600s"],
        ),
        (
            vec![("TRAINJOB_GC_TTL", "-1h")],
            vec!["TRAINJOB_GC_TTL=\"-1h\"", "negative"],
        ),
        (
            vec![("TRAINJOB_GC_TTL", "7 days")],
            vec!["TRAINJOB_GC_TTL=\"7 days\""],
        ),
        (
            vec![("TRAINJOB_GC_TTL", "1.5h")],
            vec!["TRAINJOB_GC_TTL=\"1.5h\"", "fraction"],
        ),
        (
            vec![("TRAINJOB_GC_TTL", "7D")],
            vec!["TRAINJOB_GC_TTL=\"7D\"", "unknown unit"],
        ),
        (
            vec![("TRAINJOB_GC_TTL_SUCCEEDED", "abc")],
            vec!["TRAINJOB_GC_TTL_SUCCEEDED=\"abc\""],
        ),
        (
            vec![("TRAINJOB_GC_TTL_FAILED", "2x")],
            vec!["TRAINJOB_GC_TTL_FAILED=\"2x\""],
        ),
        (
            vec![("TRAINJOB_GC_TTL_SUCCEEDED", "1d")],
            vec!["TRAINJOB_GC_TTL", "missing", "failed TrainJobs"],
        ),
        (vec![], vec!["TRAINJOB_GC_TTL", "missing"]),
        case("TRAINJOB_GC_MAX_TTL", "forever"),
        case("TRAINJOB_GC_POLICY", "never"),
        (
            vec![("TRAINJOB_GC_POLICY", "delete_on_completion"), ttl],
            vec!["TRAINJOB_GC_TTL=\"7d\"", "contradicts"],
        ),
        case("TRAINJOB_GC_KEEP_LAST", "-1"),
        case("TRAINJOB_GC_KEEP_LAST", "five"),
        case("TRAINJOB_GC_INVALID_ANNOTATION", "ignore"),
        case("TRAINJOB_GC_INCLUDE", "everything"),
        case("TRAINJOB_GC_DRY_RUN", "yes"),
        case("TRAINJOB_GC_CONFIGMAP", "no-slash"),
        case("TRAINJOB_GC_CONFIGMAP", "Bad_NS/policy"),
        case("TRAINJOB_GC_NAMESPACES", "Team_A"),
        case("TRAINJOB_GC_EXCLUDE_NAMESPACES", "-bad"),
        case("TRAINJOB_GC_PAGE_SIZE", "0"),
        case("TRAINJOB_GC_PAGE_SIZE", "10001"),
        case("TRAINJOB_GC_LOG_FORMAT", "yaml"),
        case("TRAINJOB_GC_LOG_LEVEL", "verbose"),
        case("TRAINJOB_GC_QPS", "0"),
        case("TRAINJOB_GC_QPS", "NaN"),
        case("TRAINJOB_GC_QPS", "inf"),
        case("TRAINJOB_GC_BURST", "0"),
        case("TRAINJOB_GC_CONCURRENCY", "0"),
        case("TRAINJOB_GC_CONCURRENCY", "1000"),
        case("TRAINJOB_GC_DEADLINE", "0s"),
        case("TRAINJOB_GC_DEADLINE", "10"),
        case("TRAINJOB_GC_MAX_DELETIONS", "0"),
        case("TRAINJOB_GC_ABORT_ABOVE", "-5"),
        case("TRAINJOB_GC_REQUEST_TIMEOUT", "0s"),
        case("TRAINJOB_GC_RETRY_LIMIT", "101"),
        case("TRAINJOB_GC_RETRY_BUDGET", "lots"),
        case("TRAINJOB_GC_RETRY_BACKOFF_MAX", "1x"),
        case("TRAINJOB_GC_CLOCK_SKEW_WARN", "soon"),
        (
            vec![
                ttl,
                ("TRAINJOB_GC_RETRY_BACKOFF", "1m"),
                ("TRAINJOB_GC_RETRY_BACKOFF_MAX", "30s"),
            ],
            vec![
                "TRAINJOB_GC_RETRY_BACKOFF=\"1m\"",
                "TRAINJOB_GC_RETRY_BACKOFF_MAX",
            ],
        ),
        (
            vec![ttl, ("TRAINJOB_GC_TTLL", "1h")],
            vec!["TRAINJOB_GC_TTLL=\"1h\"", "did you mean TRAINJOB_GC_TTL?"],
        ),
        (
            vec![
                ttl,
                ("TRAINJOB_GC_REPORT", "/nonexistent-folder/audit.jsonl"),
            ],
            vec!["TRAINJOB_GC_REPORT", "/nonexistent-folder/audit.jsonl"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_environment_exits_2_before_any_write() {
    let cases = invalid_environments();
    assert!(cases.len() >= 30);
    let proxy = Proxy::start().await;
    for (settings, expected) in cases {
        let before = proxy.exchanges().len();

        let run = run(&proxy.kubeconfig(), &settings).await;

        let context = format!("{settings:?}\n{}", run.explain());
        assert_eq!(run.code, 2, "{context}");
        let message = error_message(&run);
        for text in &expected {
            assert!(
                message.contains(text),
                "the error does not name {text:?}: {context}"
            );
        }
        assert!(
            !run.stdout.contains("summary"),
            "a report was written: {context}"
        );
        let sent = &proxy.exchanges()[before..];
        assert!(
            sent.iter().all(|e| e.method == http::Method::GET),
            "a write reached the API server: {context}\n{}",
            proxy.describe()
        );
    }
    // Values are checked before the client connects: no request at all.
    assert!(proxy.exchanges().is_empty(), "{}", proxy.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_setting_exits_2() {
    use std::os::unix::ffi::OsStrExt;

    let proxy = Proxy::start().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_trainjob-gc"))
        .env_clear()
        .env("KUBECONFIG", proxy.kubeconfig())
        .env("TRAINJOB_GC_LOG_FORMAT", "json")
        .env("TRAINJOB_GC_TTL", std::ffi::OsStr::from_bytes(b"7\xffd"))
        .env("NOT_OURS", std::ffi::OsStr::from_bytes(b"\xfe"))
        .output()
        .expect("start trainjob-gc");
    let run = support::Run::from(output);

    run.assert_code(2);
    let message = error_message(&run);
    assert!(
        message.contains("TRAINJOB_GC_TTL") && message.contains("not valid UTF-8"),
        "{}",
        run.explain()
    );
    assert!(!message.contains("is missing"), "{}", run.explain());
    assert!(!run.stderr.contains("panicked"), "{}", run.explain());
    assert!(proxy.exchanges().is_empty(), "{}", proxy.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_now_flag_exits_2() {
    let proxy = Proxy::start().await;
    for (args, settings, expected) in [
        (
            vec!["--now", "2026-12-07T09:00:00Z"],
            vec![("TRAINJOB_GC_TTL", "7d")],
            "allowed in dry-run only",
        ),
        (
            vec!["--now", "next tuesday"],
            vec![("TRAINJOB_GC_TTL", "7d"), ("TRAINJOB_GC_DRY_RUN", "true")],
            "not an RFC 3339 time",
        ),
        (
            vec!["--now", "2026-12-05 01:00:00Z"],
            vec![("TRAINJOB_GC_TTL", "7d"), ("TRAINJOB_GC_DRY_RUN", "true")],
            "not an RFC 3339 time",
        ),
        (
            vec!["--now", "9999-12-31T23:59:59Z"],
            vec![("TRAINJOB_GC_TTL", "7d"), ("TRAINJOB_GC_DRY_RUN", "true")],
            "out of range",
        ),
    ] {
        let run = run_with_args(&proxy.kubeconfig(), &settings, &args).await;

        run.assert_code(2);
        assert!(error_message(&run).contains(expected), "{}", run.explain());
    }
    assert!(proxy.writes().is_empty(), "{}", proxy.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configmap_values_exit_2() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("bad-configmap").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), &ns);
    // The ConfigMap's name, its data, then texts the error must contain.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case; 7] = [
        (
            "ttl-no-unit",
            &[("TRAINJOB_GC_TTL", "3600")],
            &["TRAINJOB_GC_TTL=\"3600\"", "from ConfigMap"],
        ),
        (
            "dry-run",
            &[("TRAINJOB_GC_TTL", "1d"), ("TRAINJOB_GC_DRY_RUN", "false")],
            &[
                "TRAINJOB_GC_DRY_RUN=\"false\"",
                "not allowed in a ConfigMap",
            ],
        ),
        (
            "configmap",
            &[("TRAINJOB_GC_TTL", "1d"), ("TRAINJOB_GC_CONFIGMAP", "a/b")],
            &[
                "TRAINJOB_GC_CONFIGMAP=\"a/b\"",
                "not allowed in a ConfigMap",
            ],
        ),
        (
            "typo",
            &[("TRAINJOB_GC_TTLL", "1d")],
            &["TRAINJOB_GC_TTLL=\"1d\"", "did you mean"],
        ),
        (
            "no-prefix",
            &[("ttl", "7d")],
            &["ttl=\"7d\"", "unknown ConfigMap key"],
        ),
        (
            "negative-qps",
            &[("TRAINJOB_GC_TTL", "1d"), ("TRAINJOB_GC_QPS", "-3")],
            &["TRAINJOB_GC_QPS=\"-3\""],
        ),
        (
            "zero-concurrency",
            &[("TRAINJOB_GC_TTL", "1d"), ("TRAINJOB_GC_CONCURRENCY", "0")],
            &["TRAINJOB_GC_CONCURRENCY=\"0\""],
        ),
    ];
    for (name, data, expected) in cases {
        let data: BTreeMap<String, String> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let object = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            data: Some(data),
            ..Default::default()
        };
        configmaps
            .create(&PostParams::default(), &object)
            .await
            .expect("create the ConfigMap");
        let proxy = Proxy::start().await;
        let reference = format!("{ns}/{name}");

        let run = run(
            &proxy.kubeconfig(),
            &[("TRAINJOB_GC_CONFIGMAP", &reference)],
        )
        .await;

        let context = format!("{name}\n{}", run.explain());
        assert_eq!(run.code, 2, "{context}");
        let message = error_message(&run);
        for text in expected {
            assert!(
                message.contains(text),
                "the error does not name {text:?}: {context}"
            );
        }
        assert!(proxy.writes().is_empty(), "{context}\n{}", proxy.describe());
        assert_eq!(
            proxy.count(|e| e.path.ends_with(&format!("/configmaps/{name}"))),
            1,
            "{}",
            proxy.describe()
        );
    }
}
