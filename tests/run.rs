//! The first real run: the binary against a real kube-apiserver, checking what remains.

mod support;

use support::{Cluster, set, trainjob, wait_past_creation};

const TTL_1S: [(&str, &str); 3] = [
    ("TRAINJOB_GC_POLICY", "ttl"),
    ("TRAINJOB_GC_TTL", "1s"),
    ("TRAINJOB_GC_DRY_RUN", "false"),
];

fn settings_for<'a>(namespace: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut settings = vec![("TRAINJOB_GC_NAMESPACES", namespace)];
    settings.extend_from_slice(extra);
    settings
}

#[tokio::test]
async fn expired_kept_and_unfinished_in_one_namespace() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("mixed").await;
    let done = cluster
        .create(&trainjob(&ns, "completed-past-ttl").completed(0))
        .await;
    cluster
        .create(&trainjob(&ns, "failed-past-ttl").failed(0))
        .await;
    cluster
        .create(
            &trainjob(&ns, "completed-within-ttl")
                .completed(0)
                .annotation("trainjob-gc/ttl", "1h"),
        )
        .await;
    cluster.create(&trainjob(&ns, "no-status")).await;
    cluster
        .create(&trainjob(&ns, "running").condition("Suspended", "False", 0))
        .await;
    cluster
        .create(&trainjob(&ns, "suspended").suspended())
        .await;
    cluster
        .create(
            &trainjob(&ns, "multikueue")
                .managed_by("kueue.x-k8s.io/multikueue")
                .completed(0),
        )
        .await;
    wait_past_creation(&done, 2).await;

    let run = cluster.run(&settings_for(&ns, &TTL_1S), &[]);

    run.assert_code(0);
    assert_eq!(
        cluster.remaining(&ns).await,
        set(&[
            "completed-within-ttl",
            "no-status",
            "running",
            "suspended",
            "multikueue"
        ]),
        "{}",
        run.explain()
    );
    assert_eq!(
        run.with_result("deleted"),
        set(&["completed-past-ttl", "failed-past-ttl"])
    );
    assert_eq!(run.record("failed-past-ttl")["outcome"], "failed");
    assert_eq!(run.record("multikueue")["rule"], "owned-elsewhere");
    assert_eq!(run.record("suspended")["outcome"], "unfinished");
    assert_eq!(run.record("no-status")["rule"], "not-finished");
    let summary = run.summary();
    assert_eq!(summary["deleted"], 2);
    assert_eq!(summary["listed"], 7);
}

#[tokio::test]
async fn delete_on_completion_deletes_every_finished() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("on-completion").await;
    cluster
        .create(&trainjob(&ns, "completed").completed(0))
        .await;
    cluster.create(&trainjob(&ns, "failed").failed(0)).await;
    cluster.create(&trainjob(&ns, "running")).await;
    cluster
        .create(&trainjob(&ns, "suspended").suspended())
        .await;

    let run = cluster.run(
        &settings_for(
            &ns,
            &[
                ("TRAINJOB_GC_POLICY", "delete_on_completion"),
                ("TRAINJOB_GC_DRY_RUN", "false"),
            ],
        ),
        &[],
    );

    run.assert_code(0);
    assert_eq!(
        cluster.remaining(&ns).await,
        set(&["running", "suspended"]),
        "{}",
        run.explain()
    );
}

#[tokio::test]
async fn dry_run_deletes_nothing_and_reports_what_a_real_run_deletes() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("dry-run").await;
    let first = cluster.create(&trainjob(&ns, "old-a").completed(0)).await;
    cluster.create(&trainjob(&ns, "old-b").failed(0)).await;
    cluster
        .create(
            &trainjob(&ns, "young")
                .completed(0)
                .annotation("trainjob-gc/ttl", "2h"),
        )
        .await;
    cluster.create(&trainjob(&ns, "running")).await;
    wait_past_creation(&first, 2).await;
    let all = set(&["old-a", "old-b", "young", "running"]);

    let dry = cluster.run(&settings_for(&ns, &[("TRAINJOB_GC_TTL", "1s")]), &[]);
    dry.assert_code(0);
    assert_eq!(
        cluster.remaining(&ns).await,
        all,
        "a dry-run deleted something:\n{}",
        dry.explain()
    );
    assert_eq!(dry.with_result("would-delete"), set(&["old-a", "old-b"]));
    assert!(
        dry.stderr.contains("dry-run"),
        "the start line does not say dry-run:\n{}",
        dry.explain()
    );

    let real = cluster.run(&settings_for(&ns, &TTL_1S), &[]);
    real.assert_code(0);
    assert_eq!(real.with_result("deleted"), dry.with_result("would-delete"));
    let decisions = |run: &support::Run| -> Vec<(String, String)> {
        let mut pairs: Vec<_> = run
            .records()
            .iter()
            .map(|r| {
                (
                    r["uid"].as_str().unwrap().to_owned(),
                    r["decision"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        pairs.sort();
        pairs
    };
    assert_eq!(
        decisions(&dry),
        decisions(&real),
        "dry-run and real run disagree"
    );
    assert_eq!(cluster.remaining(&ns).await, set(&["young", "running"]));
}

#[tokio::test]
async fn label_selector_and_namespaces_limit_the_scope() {
    let cluster = Cluster::connect().await;
    let inside = cluster.namespace("scope-in").await;
    let outside = cluster.namespace("scope-out").await;
    let first = cluster
        .create(
            &trainjob(&inside, "selected")
                .completed(0)
                .label("team", "research"),
        )
        .await;
    cluster
        .create(
            &trainjob(&inside, "other-team")
                .completed(0)
                .label("team", "vision"),
        )
        .await;
    cluster
        .create(&trainjob(&inside, "unlabelled").completed(0))
        .await;
    cluster
        .create(
            &trainjob(&outside, "selected-elsewhere")
                .completed(0)
                .label("team", "research"),
        )
        .await;
    wait_past_creation(&first, 2).await;

    let run = cluster.run(
        &settings_for(
            &inside,
            &[
                TTL_1S[0],
                TTL_1S[1],
                TTL_1S[2],
                ("TRAINJOB_GC_LABEL_SELECTOR", "team=research"),
            ],
        ),
        &[],
    );

    run.assert_code(0);
    assert_eq!(
        cluster.remaining(&inside).await,
        set(&["other-team", "unlabelled"]),
        "{}",
        run.explain()
    );
    assert_eq!(
        cluster.remaining(&outside).await,
        set(&["selected-elsewhere"])
    );
}

#[tokio::test]
async fn cluster_wide_run_honours_excluded_namespaces() {
    let cluster = Cluster::connect().await;
    let a = cluster.namespace("wide-a").await;
    let b = cluster.namespace("wide-b").await;
    let marker = support::unique("wide");
    let first = cluster
        .create(&trainjob(&a, "done").completed(0).label("run", &marker))
        .await;
    cluster
        .create(&trainjob(&b, "done").completed(0).label("run", &marker))
        .await;
    wait_past_creation(&first, 2).await;
    let selector = format!("run={marker}");

    let run = cluster.run(
        &[
            TTL_1S[0],
            TTL_1S[1],
            TTL_1S[2],
            ("TRAINJOB_GC_LABEL_SELECTOR", &selector),
            ("TRAINJOB_GC_EXCLUDE_NAMESPACES", &b),
        ],
        &[],
    );

    run.assert_code(0);
    assert!(cluster.remaining(&a).await.is_empty(), "{}", run.explain());
    assert_eq!(cluster.remaining(&b).await, set(&["done"]));
}

#[tokio::test]
async fn more_trainjobs_than_one_page() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("paging").await;
    let mut first = None;
    for i in 0..12 {
        let job = if i % 2 == 0 {
            trainjob(&ns, &format!("done-{i:02}")).completed(0)
        } else {
            trainjob(&ns, &format!("running-{i:02}"))
        };
        let created = cluster.create(&job).await;
        first.get_or_insert(created);
    }
    wait_past_creation(first.as_ref().unwrap(), 2).await;

    let run = cluster.run(
        &settings_for(
            &ns,
            &[
                TTL_1S[0],
                TTL_1S[1],
                TTL_1S[2],
                ("TRAINJOB_GC_PAGE_SIZE", "5"),
            ],
        ),
        &[],
    );

    run.assert_code(0);
    let remaining = cluster.remaining(&ns).await;
    assert_eq!(remaining.len(), 6, "{}", run.explain());
    assert!(remaining.iter().all(|name| name.starts_with("running-")));
    assert_eq!(run.summary()["listed"], 12);
    assert_eq!(run.with_result("deleted").len(), 6);
}

#[tokio::test]
async fn terminating_trainjob_is_reported_not_deleted_again() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("terminating").await;
    let job = cluster
        .create(
            &trainjob(&ns, "held")
                .completed(0)
                .finalizer("example.com/hold"),
        )
        .await;
    cluster
        .trainjobs(&ns)
        .delete("held", &Default::default())
        .await
        .expect("delete held");
    wait_past_creation(&job, 2).await;

    let run = cluster.run(&settings_for(&ns, &TTL_1S), &[]);

    run.assert_code(0);
    let record = run.record("held");
    assert_eq!(record["rule"], "terminating", "{}", run.explain());
    assert_eq!(record["result"], "kept");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("example.com/hold"),
        "{record}"
    );
    assert_eq!(cluster.remaining(&ns).await, set(&["held"]));

    cluster.release_finalizers(&ns, "held").await;
}

#[tokio::test]
async fn missing_namespace_is_warned_about() {
    let cluster = Cluster::connect().await;
    let missing = support::unique("does-not-exist");

    let run = cluster.run(
        &[
            ("TRAINJOB_GC_TTL", "1h"),
            ("TRAINJOB_GC_NAMESPACES", &missing),
        ],
        &[],
    );

    run.assert_code(0);
    assert!(run.stderr.contains("does not exist"), "{}", run.explain());
}

#[tokio::test]
async fn rejected_label_selector_is_a_configuration_error() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("bad-selector").await;
    let job = cluster.create(&trainjob(&ns, "done").completed(0)).await;
    wait_past_creation(&job, 2).await;

    let run = cluster.run(
        &settings_for(
            &ns,
            &[
                TTL_1S[0],
                TTL_1S[1],
                TTL_1S[2],
                ("TRAINJOB_GC_LABEL_SELECTOR", "team in (a"),
            ],
        ),
        &[],
    );

    run.assert_code(2);
    assert!(
        run.stderr.contains("TRAINJOB_GC_LABEL_SELECTOR"),
        "{}",
        run.explain()
    );
    assert_eq!(cluster.remaining(&ns).await, set(&["done"]));
}

#[tokio::test]
async fn unreachable_server_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // Port 9 (discard) on loopback has no listener here, so the connection is refused.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n\
         users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_trainjob-gc"))
        .env_clear()
        .env("KUBECONFIG", &kubeconfig)
        .env("TRAINJOB_GC_TTL", "1h")
        .env("TRAINJOB_GC_RETRY_LIMIT", "1")
        .env("TRAINJOB_GC_RETRY_BACKOFF", "10ms")
        .output()
        .unwrap();
    let run = support::Run::from(output);
    run.assert_code(3);
    assert!(run.stderr.contains("127.0.0.1:9"), "{}", run.explain());
}

#[tokio::test]
async fn invalid_value_stops_before_any_api_call() {
    let cluster = Cluster::connect().await;
    let run = cluster.run(&[("TRAINJOB_GC_TTL", "3600")], &[]);
    run.assert_code(2);
    assert!(
        run.log().contains("TRAINJOB_GC_TTL=\"3600\""),
        "{}",
        run.explain()
    );
    assert!(run.stderr.contains("3600s"), "{}", run.explain());
    assert!(
        !run.stdout.contains("summary"),
        "a report was written:\n{}",
        run.explain()
    );
}

#[tokio::test]
async fn unwritable_report_exits_10() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("full-disk").await;
    let done = cluster.create(&trainjob(&ns, "done").completed(0)).await;
    cluster.create(&trainjob(&ns, "running")).await;
    wait_past_creation(&done, 2).await;

    // Every write to /dev/full fails with "no space left on device".
    let run = cluster.run(
        &settings_for(
            &ns,
            &[
                TTL_1S[0],
                TTL_1S[1],
                TTL_1S[2],
                ("TRAINJOB_GC_REPORT", "/dev/full"),
            ],
        ),
        &[],
    );

    run.assert_code(10);
    assert_eq!(cluster.remaining(&ns).await, set(&["running"]));
    let log = run.log();
    assert_eq!(
        log.matches("failed to write the report").count(),
        1,
        "one error, not one per line\n{}",
        run.explain()
    );
    assert!(log.contains("exit_code=10"), "{}", run.explain());
}

#[tokio::test]
async fn bad_context_or_kubeconfig_exits_2() {
    let cluster = Cluster::connect().await;
    let policy = [("TRAINJOB_GC_TTL", "1d")];

    let run = cluster.run(&policy, &["--context", "prod-typo"]);
    run.assert_code(2);
    let log = run.log();
    assert!(
        log.contains("\"prod-typo\" is not in the kubeconfig") && log.contains("--context"),
        "{}",
        run.explain()
    );

    let missing = std::env::temp_dir().join(support::unique("no-such-kubeconfig"));
    let path = missing.to_str().unwrap();
    let run = cluster.run(&policy, &["--kubeconfig", path]);
    run.assert_code(2);
    assert!(
        run.log()
            .contains(&format!("failed to read the kubeconfig {path}")),
        "{}",
        run.explain()
    );
}

#[tokio::test]
async fn table_with_stdout_report_exits_2() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("two-outputs").await;
    cluster.create(&trainjob(&ns, "done").completed(0)).await;

    // The runner writes the report to standard output.
    let run = cluster.run(&settings_for(&ns, &TTL_1S), &["--table"]);

    run.assert_code(2);
    assert!(
        run.log().contains("--table and TRAINJOB_GC_REPORT=-"),
        "{}",
        run.explain()
    );
    assert!(run.stdout.is_empty(), "{}", run.explain());
    assert_eq!(cluster.remaining(&ns).await, set(&["done"]));
}

#[tokio::test]
async fn empty_rust_log_keeps_the_log() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("rust-log").await;

    let run = cluster.run(
        &settings_for(&ns, &[("TRAINJOB_GC_TTL", "1d"), ("RUST_LOG", "")]),
        &[],
    );

    run.assert_code(0);
    let log = run.log();
    assert!(log.contains("trainjob-gc starting"), "{}", run.explain());
    assert!(log.contains("summary: completed"), "{}", run.explain());
}

#[tokio::test]
async fn rust_log_adds_to_the_level() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("rust-log-kube").await;

    // A directive for another target leaves trainjob-gc's own lines in place.
    let run = cluster.run(
        &settings_for(
            &ns,
            &[("TRAINJOB_GC_TTL", "1d"), ("RUST_LOG", "hyper=warn")],
        ),
        &[],
    );

    run.assert_code(0);
    assert!(
        run.log().contains("summary: completed"),
        "{}",
        run.explain()
    );
}

#[tokio::test]
async fn blocked_report_still_stops() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("fifo-report").await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report");
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(mkfifo.success());

    // Opening a FIFO without a reader blocks, but the deadline must still end the run.
    let run = cluster.run(
        &settings_for(
            &ns,
            &[
                ("TRAINJOB_GC_TTL", "1d"),
                ("TRAINJOB_GC_DEADLINE", "1s"),
                ("TRAINJOB_GC_REPORT", fifo.to_str().unwrap()),
            ],
        ),
        &[],
    );

    run.assert_code(7);
    assert!(
        run.log().contains("did not stop within"),
        "{}",
        run.explain()
    );
}

#[tokio::test]
async fn finalizer_held_deletion_is_noted() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("held").await;
    let done = cluster
        .create(
            &trainjob(&ns, "held")
                .completed(0)
                .finalizer("example.com/archive"),
        )
        .await;
    wait_past_creation(&done, 2).await;

    let run = cluster.run(&settings_for(&ns, &TTL_1S), &[]);

    run.assert_code(0);
    let record = run.record("held");
    assert_eq!(record["result"], "deleted", "{record}");
    let reason = record["reason"].as_str().unwrap();
    assert!(
        reason.contains("finalizers example.com/archive hold the TrainJob"),
        "{record}"
    );
    // The API server keeps it, marked for deletion, until the finalizer goes.
    assert_eq!(cluster.remaining(&ns).await, set(&["held"]));

    cluster.release_finalizers(&ns, "held").await;
}

#[tokio::test]
async fn kubeconfig_list_skips_missing_files() {
    let cluster = Cluster::connect().await;
    let ns = cluster.namespace("kubeconfig-list").await;
    let missing = std::env::temp_dir().join(support::unique("no-such-kubeconfig"));
    let list = format!("{}:{}", missing.display(), cluster.kubeconfig.display());

    let run = cluster.run(
        &settings_for(&ns, &[("TRAINJOB_GC_TTL", "1d"), ("KUBECONFIG", &list)]),
        &[],
    );
    run.assert_code(0);

    let run = cluster.run(
        &settings_for(
            &ns,
            &[
                ("TRAINJOB_GC_TTL", "1d"),
                ("KUBECONFIG", missing.to_str().unwrap()),
            ],
        ),
        &[],
    );
    run.assert_code(2);
    assert!(
        run.log()
            .contains("none of the files listed in KUBECONFIG exists"),
        "{}",
        run.explain()
    );
}
