//! Tests of what ships for a cluster: the kustomize trees under `manifests/`, and the binary
//! running with exactly the rights they grant.
//!
//! Every test needs `TEST_KUBECTL` for kustomize, and most need the test cluster:
//! `hack/with-cluster.sh --controller-manager -- cargo test --test deploy`. Tests share that
//! cluster, so each one renames the manifests' namespaces and cluster-scoped objects with a
//! suffix of its own (see `manifests::isolate`) and deletes them when it ends.

#[path = "deploy/cluster.rs"]
mod cluster;
#[path = "deploy/manifests.rs"]
mod manifests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cluster::{Cluster, TrainJobState, User, wait_until};
use manifests::{
    bindings, cronjob_container, env_value, isolate, kind, manifests_dir, name, namespace, only,
    parse_documents, pod_environment, pod_spec, render, roles, strings, text, trainjob_rules,
};
use serde_yaml::Value;

/// The kustomize trees under `manifests/`.
const TREES: [&str; 3] = ["base", "overlays/namespaced", "overlays/audit"];

/// Name of the ServiceAccount, CronJob, ClusterRole and Roles in every tree.
const GC: &str = "trainjob-gc";

/// Name of the policy ConfigMap in every tree.
const POLICY: &str = "trainjob-gc-policy";

/// `TRAINJOB_GC_TTL_SUCCEEDED` of the test runs, in place of the policy's 7 days, because a
/// TrainJob cannot be created with a finish time in the past.
const SHORT_TTL: &str = "1s";

/// Time the tests wait after the last TrainJob finished, so that [`SHORT_TTL`] has passed.
const PAST_SHORT_TTL: Duration = Duration::from_secs(2);

const DELETE_TRAINJOBS: &str = "delete trainjobs.trainer.kubeflow.org";
const LIST_TRAINJOBS: &str = "list trainjobs.trainer.kubeflow.org";

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn yaml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, found);
        } else if path
            .extension()
            .is_some_and(|extension| extension == "yaml")
        {
            found.push(path);
        }
    }
}

/// Returns the namespace of an install's CronJob, where its ServiceAccount and policy are too.
fn home_namespace(objects: &[Value]) -> String {
    namespace(only(objects, "CronJob")).to_owned()
}

/// Returns the user name of the install's ServiceAccount in `home`, for impersonation.
fn service_account(home: &str) -> String {
    format!("system:serviceaccount:{home}:{GC}")
}

/// Returns what the CronJob's pod would see, restricted to `namespace` and with [`SHORT_TTL`].
fn pod_environment_for(objects: &[Value], namespace: &str) -> BTreeMap<String, String> {
    let mut environment = pod_environment(objects);
    environment.insert("TRAINJOB_GC_NAMESPACES".to_owned(), namespace.to_owned());
    environment.insert("TRAINJOB_GC_TTL_SUCCEEDED".to_owned(), SHORT_TTL.to_owned());
    environment
}

// ---------------------------------------------------------------------------------------------
// The rendered manifests, checked without a cluster.

#[test]
fn every_yaml_document_has_title() {
    let mut files = Vec::new();
    yaml_files(&manifests_dir(), &mut files);
    assert!(
        !files.is_empty(),
        "no YAML files under {}",
        manifests_dir().display()
    );

    for file in files {
        let content = std::fs::read_to_string(&file).unwrap();
        for (index, document) in content.split("\n---\n").enumerate() {
            let first_line = document.lines().next().unwrap_or("");
            assert!(
                first_line.starts_with("# ") && first_line.len() > 2,
                "document {index} of {} starts with {first_line:?}, not a `# Title` line",
                file.display()
            );
        }
    }
}

#[test]
fn every_object_has_name_label() {
    for tree in TREES {
        let objects = render(tree);
        assert!(!objects.is_empty(), "{tree} renders no objects");
        for object in &objects {
            let label = text(object, &["metadata", "labels", "app.kubernetes.io/name"]);
            assert_eq!(label, GC, "{tree}: {} {}", kind(object), name(object));
        }
    }
}

#[test]
fn base_grants_only_list_delete_get() {
    let objects = render("base");

    let cluster_role = only(&objects, "ClusterRole");
    let rules = cluster_role["rules"].as_sequence().unwrap();
    assert_eq!(
        rules.len(),
        1,
        "the ClusterRole must have one rule, on TrainJobs"
    );
    assert_eq!(
        strings(&rules[0]["apiGroups"]),
        set(&["trainer.kubeflow.org"])
    );
    assert_eq!(strings(&rules[0]["resources"]), set(&["trainjobs"]));
    assert_eq!(strings(&rules[0]["verbs"]), set(&["list", "delete", "get"]));

    let binding = only(&objects, "ClusterRoleBinding");
    assert_eq!(text(binding, &["roleRef", "name"]), name(cluster_role));

    let policy_reader = only(&objects, "Role");
    let rules = policy_reader["rules"].as_sequence().unwrap();
    assert_eq!(rules.len(), 1, "the policy reader must have one rule");
    assert_eq!(strings(&rules[0]["resources"]), set(&["configmaps"]));
    assert_eq!(strings(&rules[0]["resourceNames"]), set(&[POLICY]));
    assert_eq!(strings(&rules[0]["verbs"]), set(&["get"]));
    assert_eq!(
        namespace(policy_reader),
        namespace(only(&objects, "ConfigMap"))
    );
}

#[test]
fn base_cronjob_is_hardened() {
    let objects = render("base");
    let cronjob = only(&objects, "CronJob");
    let job = &cronjob["spec"]["jobTemplate"]["spec"];
    let pod = pod_spec(cronjob);
    let container = cronjob_container(cronjob);

    assert_eq!(text(cronjob, &["spec", "concurrencyPolicy"]), "Forbid");
    assert!(
        cronjob["spec"]["startingDeadlineSeconds"]
            .as_u64()
            .is_some()
    );
    assert!(
        cronjob["spec"]["successfulJobsHistoryLimit"]
            .as_u64()
            .is_some()
    );
    assert!(cronjob["spec"]["failedJobsHistoryLimit"].as_u64().is_some());
    assert_eq!(job["backoffLimit"].as_u64(), Some(0));
    assert_eq!(text(pod, &["restartPolicy"]), "Never");
    assert_eq!(pod["enableServiceLinks"].as_bool(), Some(false));
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(true));
    assert!(pod["terminationGracePeriodSeconds"].as_u64().is_some());

    let pod_security = &pod["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(pod_security["runAsUser"].as_u64(), Some(65532));
    assert_eq!(pod_security["runAsGroup"].as_u64(), Some(65532));
    assert_eq!(
        text(pod_security, &["seccompProfile", "type"]),
        "RuntimeDefault"
    );

    let container_security = &container["securityContext"];
    assert_eq!(
        container_security["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(
        container_security["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    assert_eq!(
        strings(&container_security["capabilities"]["drop"]),
        set(&["ALL"])
    );

    assert_ne!(text(container, &["resources", "requests", "cpu"]), "");
    assert_ne!(text(container, &["resources", "requests", "memory"]), "");
    assert_ne!(text(container, &["resources", "limits", "memory"]), "");
}

#[test]
fn base_turns_deletion_on_in_env_only() {
    let objects = render("base");
    let container = cronjob_container(only(&objects, "CronJob"));
    let policy = only(&objects, "ConfigMap");
    let data = policy["data"].as_mapping().unwrap();

    assert_eq!(env_value(container, "TRAINJOB_GC_DRY_RUN"), Some("false"));
    assert_eq!(
        text(&container["envFrom"][0], &["configMapRef", "name"]),
        name(policy)
    );
    assert_eq!(
        name(policy),
        POLICY,
        "the README and the Role name the policy ConfigMap"
    );
    // trainjob-gc rejects both keys when it reads the ConfigMap through the API.
    assert!(!data.contains_key("TRAINJOB_GC_DRY_RUN"));
    assert!(!data.contains_key("TRAINJOB_GC_CONFIGMAP"));
}

#[test]
fn base_deadline_is_below_job_deadline() {
    let objects = render("base");
    let cronjob = only(&objects, "CronJob");
    let environment = pod_environment(&objects);

    // trainjob-gc's own default is 10m.
    let deadline = environment
        .get("TRAINJOB_GC_DEADLINE")
        .map_or("10m", String::as_str);
    let deadline = humantime::parse_duration(deadline).unwrap();
    let job_deadline = &cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"];
    let job_deadline = Duration::from_secs(job_deadline.as_u64().unwrap());
    assert!(
        deadline < job_deadline,
        "TRAINJOB_GC_DEADLINE {deadline:?} is not below activeDeadlineSeconds {job_deadline:?}"
    );
}

#[test]
fn namespaced_overlay_is_namespace_scoped() {
    let objects = render("overlays/namespaced");
    let home = home_namespace(&objects);
    let environment = pod_environment(&objects);
    let listed: BTreeSet<String> = environment["TRAINJOB_GC_NAMESPACES"]
        .split(',')
        .map(str::to_owned)
        .collect();

    for object in &objects {
        let cluster_scoped = matches!(
            kind(object),
            "Namespace" | "ClusterRole" | "ClusterRoleBinding"
        );
        assert!(
            !cluster_scoped,
            "cluster-scoped {} {}",
            kind(object),
            name(object)
        );
        assert_ne!(
            namespace(object),
            "",
            "{} {} has no namespace",
            kind(object),
            name(object)
        );
    }

    let mut granted = BTreeSet::new();
    for role in roles(&objects) {
        for rule in trainjob_rules(role) {
            let verbs = strings(&rule["verbs"]);
            assert_eq!(
                verbs,
                set(&["list", "delete", "get"]),
                "Role in {}",
                namespace(role)
            );
            granted.insert(namespace(role).to_owned());
        }
    }
    assert_eq!(
        granted, listed,
        "Roles on TrainJobs must match TRAINJOB_GC_NAMESPACES"
    );
    assert!(
        listed.contains(&home),
        "the CronJob's namespace {home} is not cleaned"
    );
}

#[test]
fn audit_overlay_cannot_delete() {
    let objects = render("overlays/audit");
    let container = cronjob_container(only(&objects, "CronJob"));

    assert_eq!(env_value(container, "TRAINJOB_GC_DRY_RUN"), Some("true"));
    for role in roles(&objects) {
        for rule in role["rules"].as_sequence().unwrap() {
            let verbs = strings(&rule["verbs"]);
            assert!(
                !verbs.contains("delete"),
                "{} {} grants delete",
                kind(role),
                name(role)
            );
            assert!(
                !verbs.contains("*"),
                "{} {} grants every verb",
                kind(role),
                name(role)
            );
        }
    }
}

#[test]
fn bindings_name_cronjob_service_account() {
    for tree in TREES {
        let objects = render(tree);
        let cronjob = only(&objects, "CronJob");
        let account = text(pod_spec(cronjob), &["serviceAccountName"]);
        let expected = ("ServiceAccount", account, namespace(cronjob));

        for binding in bindings(&objects) {
            for subject in binding["subjects"].as_sequence().unwrap() {
                let actual = (
                    text(subject, &["kind"]),
                    text(subject, &["name"]),
                    text(subject, &["namespace"]),
                );
                assert_eq!(
                    actual,
                    expected,
                    "{tree}: {} {}",
                    kind(binding),
                    name(binding)
                );
            }
        }
    }
}

#[test]
fn isolate_renames_namespaces_and_cluster_objects() {
    let objects = parse_documents(
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: gc}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gc}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gc}
subjects: [{kind: ServiceAccount, name: gc, namespace: gc}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: gc}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: admin, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: admin}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: policy, namespace: gc}
data: {TRAINJOB_GC_NAMESPACES: "team-a,team-b", TRAINJOB_GC_TTL: 7d}
"#,
    );

    let isolated = isolate(&objects, "x1");

    let [
        namespace_object,
        binding,
        cluster_role,
        admin_binding,
        policy,
    ] = &isolated[..]
    else {
        panic!("isolate changed the number of objects: {}", isolated.len());
    };
    assert_eq!(name(namespace_object), "gc-x1");
    assert_eq!(name(binding), "gc-x1");
    assert_eq!(text(binding, &["roleRef", "name"]), "gc-x1");
    assert_eq!(text(&binding["subjects"][0], &["namespace"]), "gc-x1");
    assert_eq!(text(&binding["subjects"][0], &["name"]), "gc");
    assert_eq!(name(cluster_role), "gc-x1");
    assert_eq!(namespace(admin_binding), "team-a-x1");
    assert_eq!(
        text(admin_binding, &["roleRef", "name"]),
        "admin",
        "a built-in ClusterRole"
    );
    assert_eq!(namespace(policy), "gc-x1");
    assert_eq!(name(policy), "policy");
    assert_eq!(
        text(policy, &["data", "TRAINJOB_GC_NAMESPACES"]),
        "team-a-x1,team-b-x1"
    );
    assert_eq!(text(policy, &["data", "TRAINJOB_GC_TTL"]), "7d");
}

// ---------------------------------------------------------------------------------------------
// The manifests on the test cluster, and trainjob-gc running with the rights they grant.

#[test]
fn installs_pass_server_side_apply() {
    let mut cluster = Cluster::from_env();

    // The namespaced overlay deploys into namespaces that the team already has.
    cluster.namespace("team-a");
    cluster.namespace("team-b");
    for tree in TREES {
        let objects = cluster.prepare(tree);
        let outcome = cluster.apply(User::Admin, &objects);

        assert!(
            outcome.success(),
            "applying {tree} failed: {}",
            outcome.explain()
        );
        let applied = outcome
            .stdout
            .lines()
            .filter(|line| line.ends_with(" serverside-applied"));
        assert_eq!(
            applied.count(),
            objects.len(),
            "{tree}: {}",
            outcome.explain()
        );
    }
}

#[test]
fn audit_then_base_toggles_delete_verb() {
    let mut cluster = Cluster::from_env();
    let cluster_role = format!("clusterrole/{GC}-{}", cluster.suffix);
    let verbs = |cluster: &Cluster| {
        cluster.admin(&["get", &cluster_role, "-o", "jsonpath={.rules[0].verbs}"])
    };

    cluster.install("overlays/audit");
    assert_eq!(verbs(&cluster), r#"["list"]"#);

    // Server-side apply removes the fields that the same field manager no longer sends.
    cluster.install("base");
    assert_eq!(verbs(&cluster), r#"["list","delete","get"]"#);

    cluster.install("overlays/audit");
    assert_eq!(verbs(&cluster), r#"["list"]"#);
}

#[test]
fn service_account_deletes_expired_trainjob() {
    let mut cluster = Cluster::from_env();
    let objects = cluster.install("base");
    let home = home_namespace(&objects);
    let work = cluster.namespace("work");
    cluster.create_trainjob(&work, "expired", TrainJobState::Completed);
    cluster.create_trainjob(&work, "running", TrainJobState::Running);
    cluster.wait_until_allowed(&service_account(&home), DELETE_TRAINJOBS, &work);
    std::thread::sleep(PAST_SHORT_TTL);

    let kubeconfig = cluster.service_account_kubeconfig(User::Admin, &home, GC);
    let outcome = cluster.run_gc(&kubeconfig, &pod_environment_for(&objects, &work));

    assert_eq!(outcome.code, Some(0), "{}", outcome.explain());
    assert_eq!(
        cluster.trainjob_names(&work),
        set(&["running"]),
        "{}",
        outcome.explain()
    );
}

#[test]
fn missing_delete_verb_exits_6() {
    let mut cluster = Cluster::from_env();
    let objects = cluster.install("base");
    let home = home_namespace(&objects);
    let work = cluster.namespace("work");
    cluster.create_trainjob(&work, "expired", TrainJobState::Completed);

    let cluster_role = format!("clusterrole/{GC}-{}", cluster.suffix);
    let without_delete =
        r#"[{"op": "replace", "path": "/rules/0/verbs", "value": ["list", "get"]}]"#;
    cluster.admin(&["patch", &cluster_role, "--type=json", "-p", without_delete]);
    cluster.wait_until_denied(&service_account(&home), DELETE_TRAINJOBS, &work);
    std::thread::sleep(PAST_SHORT_TTL);

    let kubeconfig = cluster.service_account_kubeconfig(User::Admin, &home, GC);
    let outcome = cluster.run_gc(&kubeconfig, &pod_environment_for(&objects, &work));

    let explain = outcome.explain();
    assert_eq!(outcome.code, Some(6), "{explain}");
    assert!(
        outcome.stderr.contains("delete"),
        "the message must name the verb: {explain}"
    );
    assert!(
        outcome.stderr.contains("trainjobs"),
        "the message must name the resource: {explain}"
    );
    assert!(
        outcome.stderr.contains(&work),
        "the message must name the namespace: {explain}"
    );
    assert_eq!(
        cluster.trainjob_names(&work),
        set(&["expired"]),
        "{explain}"
    );
}

#[test]
fn audit_install_warns_and_keeps_all() {
    let mut cluster = Cluster::from_env();
    let objects = cluster.install("overlays/audit");
    let home = home_namespace(&objects);
    let work = cluster.namespace("work");
    cluster.create_trainjob(&work, "expired", TrainJobState::Completed);
    cluster.wait_until_allowed(&service_account(&home), LIST_TRAINJOBS, &work);
    std::thread::sleep(PAST_SHORT_TTL);

    let kubeconfig = cluster.service_account_kubeconfig(User::Admin, &home, GC);
    let outcome = cluster.run_gc(&kubeconfig, &pod_environment_for(&objects, &work));

    let explain = outcome.explain();
    assert_eq!(
        outcome.code,
        Some(0),
        "a dry run only warns about a missing verb: {explain}"
    );
    assert_eq!(
        cluster.trainjob_names(&work),
        set(&["expired"]),
        "{explain}"
    );
    assert!(
        outcome.stderr.contains("expired"),
        "the log must name the due TrainJob: {explain}"
    );
    let mut lines = outcome.stderr.lines();
    let warns = lines.any(|line| line.contains("WARN") && line.contains("delete"));
    assert!(warns, "no warning names the missing delete verb: {explain}");
}

#[test]
fn namespace_admin_installs_namespaced_overlay() {
    let mut cluster = Cluster::from_env();
    let team_a = cluster.namespace("team-a");
    let team_b = cluster.namespace("team-b");
    let elsewhere = cluster.namespace("elsewhere");
    let user = "limited";

    // `admin` gets its rules from the ClusterRoles labelled aggregate-to-admin (directly, and
    // through `edit` and `view`), which the clusterrole-aggregation controller of
    // kube-controller-manager copies into it. hack/cluster.sh does not run that controller, so
    // `admin` has no rules there, and the test binds the three roles it would contain as well.
    let admin_parts = [
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
    ];
    for namespace in [&team_a, &team_b] {
        cluster.bind(namespace, "admin", user);
        for role in admin_parts {
            cluster.bind(namespace, role, user);
        }
    }
    cluster.wait_until_allowed(user, "create roles.rbac.authorization.k8s.io", &team_b);
    let objects = cluster.prepare("overlays/namespaced");

    // `admin` covers a custom resource only when a ClusterRole aggregated into it names the
    // resource, and Kubeflow Trainer v2.3.0 aggregates its TrainJob roles only into Kubeflow's
    // own kubeflow-edit and kubeflow-admin. RBAC then stops a namespace admin from creating a
    // Role with rights on TrainJobs that the admin does not hold.
    let rejected = cluster.apply(User::Limited, &objects);
    assert!(
        !rejected.success(),
        "admin alone may not grant rights on TrainJobs"
    );
    let escalation = "attempting to grant RBAC permissions not currently held";
    assert!(
        rejected.stderr.contains(escalation),
        "{}",
        rejected.explain()
    );

    // Once the user has the rights on TrainJobs that the overlay grants, the install works.
    let editor = cluster.trainjob_cluster_role("trainjob-editor", &["list", "delete", "get"]);
    for namespace in [&team_a, &team_b] {
        cluster.bind(namespace, &editor, user);
        cluster.wait_until_allowed(user, DELETE_TRAINJOBS, namespace);
    }
    let installed = cluster.apply(User::Limited, &objects);
    assert!(installed.success(), "{}", installed.explain());

    let home = home_namespace(&objects);
    assert_eq!(home, team_a);
    cluster.create_trainjob(&team_a, "expired-a", TrainJobState::Completed);
    cluster.create_trainjob(&team_a, "running", TrainJobState::Running);
    cluster.create_trainjob(&team_b, "expired-b", TrainJobState::Completed);
    cluster.create_trainjob(&elsewhere, "expired-elsewhere", TrainJobState::Completed);
    cluster.wait_until_allowed(&service_account(&home), DELETE_TRAINJOBS, &team_b);
    std::thread::sleep(PAST_SHORT_TTL);

    // The team runs it from a laptop as the CronJob would: with the ServiceAccount's token and
    // the policy read from the ConfigMap through the API, which needs the policy reader Role.
    let kubeconfig = cluster.service_account_kubeconfig(User::Limited, &home, GC);
    let environment = BTreeMap::from([
        (
            "TRAINJOB_GC_CONFIGMAP".to_owned(),
            format!("{home}/{POLICY}"),
        ),
        ("TRAINJOB_GC_DRY_RUN".to_owned(), "false".to_owned()),
        ("TRAINJOB_GC_TTL_SUCCEEDED".to_owned(), SHORT_TTL.to_owned()),
    ]);
    let outcome = cluster.run_gc(&kubeconfig, &environment);

    let explain = outcome.explain();
    assert_eq!(outcome.code, Some(0), "{explain}");
    assert_eq!(
        cluster.trainjob_names(&team_a),
        set(&["running"]),
        "{explain}"
    );
    assert_eq!(cluster.trainjob_names(&team_b), set(&[]), "{explain}");
    assert_eq!(
        cluster.trainjob_names(&elsewhere),
        set(&["expired-elsewhere"]),
        "{explain}"
    );
}

#[test]
fn deleted_trainjob_takes_owned_objects() {
    let mut cluster = Cluster::from_env();
    assert!(
        cluster.has_controller_manager(),
        "this test needs kube-controller-manager's garbage collector; start the cluster with \
         hack/with-cluster.sh --controller-manager"
    );
    let objects = cluster.install("base");
    let home = home_namespace(&objects);
    let work = cluster.namespace("work");

    // Trainer v2.3 owns a runtime-snapshot ConfigMap, and Secrets for some runtimes, besides
    // the JobSet, whose CRD the test cluster lacks.
    let expired = cluster.create_trainjob(&work, "expired", TrainJobState::Completed);
    cluster.create_owned(&expired, "ConfigMap", "expired-runtime-snapshot");
    cluster.create_owned(&expired, "Secret", "expired-ssh");
    let running = cluster.create_trainjob(&work, "running", TrainJobState::Running);
    cluster.create_owned(&running, "ConfigMap", "running-runtime-snapshot");
    cluster.wait_until_allowed(&service_account(&home), DELETE_TRAINJOBS, &work);
    std::thread::sleep(PAST_SHORT_TTL);

    let kubeconfig = cluster.service_account_kubeconfig(User::Admin, &home, GC);
    let outcome = cluster.run_gc(&kubeconfig, &pod_environment_for(&objects, &work));

    assert_eq!(outcome.code, Some(0), "{}", outcome.explain());
    assert_eq!(
        cluster.trainjob_names(&work),
        set(&["running"]),
        "{}",
        outcome.explain()
    );
    wait_until(
        Duration::from_secs(60),
        "the garbage collector deletes the children",
        || {
            !cluster.exists(&work, "configmap/expired-runtime-snapshot")
                && !cluster.exists(&work, "secret/expired-ssh")
        },
    );
    assert!(cluster.exists(&work, "configmap/running-runtime-snapshot"));
}
