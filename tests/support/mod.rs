//! Shared helpers of the integration tests: a client for the local API server that
//! `hack/with-cluster.sh` started, TrainJob fixtures, and a runner for the real binary.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

/// The local cluster's coordinates, from the variables `hack/with-cluster.sh` exports.
pub struct Cluster {
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub client: kube::Client,
}

pub fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the integration tests with `make test` or `hack/with-cluster.sh -- cargo test`")
    })
}

impl Cluster {
    pub async fn connect() -> Cluster {
        let kubeconfig = PathBuf::from(env_var("TEST_KUBECONFIG"));
        let file =
            kube::config::Kubeconfig::read_from(&kubeconfig).expect("read the admin kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
            .await
            .expect("load the admin kubeconfig");
        let client = kube::Client::try_from(config).expect("create the admin client");
        Cluster {
            kubeconfig,
            kubectl: PathBuf::from(env_var("TEST_KUBECTL")),
            client,
        }
    }

    pub fn trainjobs(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &trainjob_resource())
    }

    /// Creates a namespace with a unique name that starts with `prefix`.
    pub async fn namespace(&self, prefix: &str) -> String {
        let name = unique(prefix);
        let namespaces: Api<DynamicObject> = Api::all_with(
            self.client.clone(),
            &ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Namespace")),
        );
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
        }))
        .unwrap();
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .expect("create the namespace");
        name
    }

    /// Creates a TrainJob and returns it as the server stored it.
    pub async fn create(&self, job: &Fixture) -> DynamicObject {
        let api = self.trainjobs(&job.namespace);
        let mut metadata = json!({"name": job.name, "namespace": job.namespace});
        if !job.labels.is_empty() {
            metadata["labels"] = json!(job.labels);
        }
        if !job.annotations.is_empty() {
            metadata["annotations"] = json!(job.annotations);
        }
        if !job.finalizers.is_empty() {
            metadata["finalizers"] = json!(job.finalizers);
        }
        if let Some(owner) = &job.owner {
            metadata["ownerReferences"] = json!([owner]);
        }
        let mut spec = json!({"runtimeRef": {"name": "torch-distributed"}});
        if let Some(manager) = &job.managed_by {
            spec["managedBy"] = json!(manager);
        }
        if job.suspend {
            spec["suspend"] = json!(true);
        }
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "trainer.kubeflow.org/v1alpha1",
            "kind": "TrainJob",
            "metadata": metadata,
            "spec": spec,
        }))
        .unwrap();
        let created = api
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|err| panic!("create TrainJob {}: {err}", job.name));
        if job.conditions.is_empty() {
            return created;
        }
        let created_at = created
            .metadata
            .creation_timestamp
            .clone()
            .expect("creationTimestamp")
            .0;
        let conditions: Vec<Value> = job
            .conditions
            .iter()
            .map(|(kind, status, offset)| {
                let time = created_at
                    .checked_add(jiff::SignedDuration::from_secs(*offset))
                    .unwrap();
                json!({
                    "type": kind, "status": status, "reason": "Fixture", "message": "set by a test",
                    "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                })
            })
            .collect();
        self.set_status(&job.namespace, &job.name, json!({"conditions": conditions}))
            .await
    }

    /// Replaces the status through the status subresource.
    pub async fn set_status(&self, namespace: &str, name: &str, status: Value) -> DynamicObject {
        let patch = json!({"status": status});
        self.trainjobs(namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|err| panic!("set status of {namespace}/{name}: {err}"))
    }

    /// Names of the TrainJobs left in a namespace.
    /// Removes every finalizer of a TrainJob, so that its deletion and its namespace's can end.
    pub async fn release_finalizers(&self, namespace: &str, name: &str) {
        let patch = json!({"metadata": {"finalizers": null}});
        self.trainjobs(namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("release finalizers");
    }

    pub async fn remaining(&self, namespace: &str) -> BTreeSet<String> {
        let list = self
            .trainjobs(namespace)
            .list(&Default::default())
            .await
            .expect("list TrainJobs");
        list.items
            .into_iter()
            .filter_map(|job| job.metadata.name)
            .collect()
    }

    /// Runs the trainjob-gc binary with only the given settings in its environment.
    pub fn run(&self, settings: &[(&str, &str)], args: &[&str]) -> Run {
        self.run_as(&self.kubeconfig, settings, args)
    }

    pub fn run_as(
        &self,
        kubeconfig: &std::path::Path,
        settings: &[(&str, &str)],
        args: &[&str],
    ) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trainjob-gc"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("KUBECONFIG", kubeconfig);
        command
            .env("TRAINJOB_GC_LOG_FORMAT", "json")
            .env("TRAINJOB_GC_REPORT", "-");
        for (key, value) in settings {
            command.env(key, value);
        }
        command.args(args);
        Run::from(command.output().expect("start trainjob-gc"))
    }
}

pub fn trainjob_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("trainer.kubeflow.org", "v1alpha1", "TrainJob"),
        "trainjobs",
    )
}

/// A name unique within this test process and across runs.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{n}-{:x}",
        std::process::id() % 10000,
        nanos % 0xfffff
    )
}

/// A TrainJob to create. Condition times are offsets in seconds from the creation time the
/// server assigns, because a finish time earlier than the creation is not trusted.
#[derive(Clone, Default)]
pub struct Fixture {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub finalizers: Vec<String>,
    pub owner: Option<Value>,
    pub managed_by: Option<String>,
    pub suspend: bool,
    pub conditions: Vec<(String, String, i64)>,
}

pub fn trainjob(namespace: &str, name: &str) -> Fixture {
    Fixture {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        ..Fixture::default()
    }
}

impl Fixture {
    /// `Complete=True` at the creation time plus `offset` seconds.
    pub fn completed(mut self, offset: i64) -> Self {
        self.conditions
            .push(("Complete".into(), "True".into(), offset));
        self
    }
    pub fn failed(mut self, offset: i64) -> Self {
        self.conditions
            .push(("Failed".into(), "True".into(), offset));
        self
    }
    pub fn condition(mut self, kind: &str, status: &str, offset: i64) -> Self {
        self.conditions.push((kind.into(), status.into(), offset));
        self
    }
    pub fn suspended(mut self) -> Self {
        self.suspend = true;
        self.conditions.push(("Suspended".into(), "True".into(), 0));
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }
    pub fn finalizer(mut self, name: &str) -> Self {
        self.finalizers.push(name.into());
        self
    }
    pub fn managed_by(mut self, manager: &str) -> Self {
        self.managed_by = Some(manager.into());
        self
    }
    pub fn owned_by(mut self, kind: &str, name: &str) -> Self {
        self.owner = Some(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": kind, "name": name,
            "uid": "00000000-0000-0000-0000-000000000001", "controller": true
        }));
        self
    }
}

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The report's TrainJob lines (everything but the summary).
    pub fn records(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|line| line.get("summary").is_none())
            .collect()
    }

    pub fn summary(&self) -> Value {
        self.lines()
            .into_iter()
            .find_map(|line| line.get("summary").cloned())
            .unwrap_or_else(|| panic!("no summary in the report:\n{}", self.explain()))
    }

    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str(line).expect("report line is JSON"))
            .collect()
    }

    /// The report line of one TrainJob.
    pub fn record(&self, name: &str) -> Value {
        self.records()
            .into_iter()
            .find(|record| record["name"] == name)
            .unwrap_or_else(|| panic!("no report line for {name}:\n{}", self.explain()))
    }

    /// Names whose report line has this `result`.
    pub fn with_result(&self, result: &str) -> BTreeSet<String> {
        self.records()
            .into_iter()
            .filter(|r| r["result"] == result)
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Returns the log on stderr as text. Each JSON line becomes its message followed by its
    /// other fields as `key=value`, so tests match quotes and line breaks as an operator reads them.
    pub fn log(&self) -> String {
        let mut text = String::new();
        for line in self.stderr.lines() {
            match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(fields)) => {
                    if let Some(Value::String(message)) = fields.get("message") {
                        text.push_str(message);
                    }
                    for (key, value) in fields.iter().filter(|(key, _)| *key != "message") {
                        match value {
                            Value::String(value) => text.push_str(&format!(" {key}={value}")),
                            other => text.push_str(&format!(" {key}={other}")),
                        }
                    }
                }
                _ => text.push_str(line),
            }
            text.push('\n');
        }
        text
    }

    pub fn explain(&self) -> String {
        format!(
            "exit code {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code, code, "unexpected exit code\n{}", self.explain());
    }
}

/// Waits until the wall clock is at least `seconds` past a TrainJob's creation second, so that a
/// finish time at the creation plus a TTL of fewer seconds has passed.
pub async fn wait_past_creation(object: &DynamicObject, seconds: i64) {
    let created = object
        .metadata
        .creation_timestamp
        .clone()
        .expect("creationTimestamp")
        .0;
    let target = created
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap();
    loop {
        let now = jiff::Timestamp::now();
        if now >= target {
            return;
        }
        let left = target.duration_since(now).unsigned_abs();
        tokio::time::sleep(left.min(Duration::from_millis(500)) + Duration::from_millis(50)).await;
    }
}

pub fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}
