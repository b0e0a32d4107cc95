//! The test cluster of hack/with-cluster.sh: kubectl as admin or as `limited`, TrainJob
//! fixtures, and runs of trainjob-gc with a ServiceAccount token.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use serde_yaml::Value;

use crate::manifests::{isolate, kind, kubectl_path, name, render, to_yaml_stream};

/// Field manager of every server-side apply the tests send.
const FIELD_MANAGER: &str = "trainjob-gc-deploy-test";

/// Maximum time one run of the binary may take before the test kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Maximum time the RBAC authorizer may take to apply a changed role or binding.
const RBAC_TIMEOUT: Duration = Duration::from_secs(30);

/// Exit code and output of one kubectl or trainjob-gc process.
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Describes the outcome for an assertion message.
    pub fn explain(&self) -> String {
        format!(
            "exit code {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Identity that a kubectl command runs as.
#[derive(Clone, Copy)]
pub enum User {
    /// `admin`, in `system:masters`.
    Admin,
    /// `limited`, which has no rights until a test binds a role to it.
    Limited,
}

/// State of a test TrainJob.
pub enum TrainJobState {
    /// No status: still starting or running.
    Running,
    /// `Complete` condition True since the TrainJob's creation time.
    Completed,
}

/// A TrainJob that a test created.
pub struct TrainJob {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Returns a suffix that no other test, test process or earlier run on the same cluster uses.
fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}{:05x}{count}", std::process::id(), nanos & 0xfffff)
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set; run these tests inside a test cluster: \
             hack/with-cluster.sh --controller-manager -- cargo test --test deploy"
        )
    })
}

/// Polls `condition` every 200 ms until it holds, failing the test after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The test cluster, with the namespaces and cluster-scoped objects one test created there.
/// They are deleted when the value is dropped, whether the test passed or not.
pub struct Cluster {
    kubectl: PathBuf,
    admin_kubeconfig: PathBuf,
    limited_kubeconfig: PathBuf,
    server: String,
    ca_file: PathBuf,
    cluster_dir: Option<PathBuf>,
    /// Suffix of every name this test gives a namespace or cluster-scoped object.
    pub suffix: String,
    /// Folder of this test's kubeconfigs and of the output of trainjob-gc.
    scratch: tempfile::TempDir,
    namespaces: Vec<String>,
    cluster_objects: Vec<String>,
}

impl Cluster {
    /// Connects to the cluster that hack/with-cluster.sh describes in `TEST_*` variables.
    pub fn from_env() -> Self {
        Cluster {
            kubectl: kubectl_path(),
            admin_kubeconfig: PathBuf::from(required_env("TEST_KUBECONFIG")),
            limited_kubeconfig: PathBuf::from(required_env("TEST_LIMITED_KUBECONFIG")),
            server: required_env("TEST_APISERVER_URL"),
            ca_file: PathBuf::from(required_env("TEST_CA_FILE")),
            cluster_dir: std::env::var_os("TEST_CLUSTER_DIR").map(PathBuf::from),
            suffix: unique_suffix(),
            scratch: tempfile::tempdir().expect("failed to create a temporary folder"),
            namespaces: Vec::new(),
            cluster_objects: Vec::new(),
        }
    }

    /// Returns whether kube-controller-manager runs next to the API server. hack/cluster.sh
    /// starts it only with `--controller-manager`, and it then logs into the cluster folder.
    pub fn has_controller_manager(&self) -> bool {
        let log = |dir: &PathBuf| dir.join("kube-controller-manager.log").exists();
        self.cluster_dir.as_ref().is_some_and(log)
    }

    /// Runs kubectl as `user`, with `input` on its standard input.
    pub fn kubectl(&self, user: User, args: &[&str], input: Option<&str>) -> Outcome {
        let kubeconfig = match user {
            User::Admin => &self.admin_kubeconfig,
            User::Limited => &self.limited_kubeconfig,
        };
        let stdin = if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to start kubectl");
        if let Some(text) = input {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes())
                .expect("failed to write to kubectl");
        }

        let output = child
            .wait_with_output()
            .expect("failed to wait for kubectl");
        Outcome {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs kubectl as admin, fails the test unless kubectl succeeds, and returns its standard
    /// output.
    pub fn admin(&self, args: &[&str]) -> String {
        self.admin_with_input(args, None)
    }

    fn admin_with_input(&self, args: &[&str], input: Option<&str>) -> String {
        let outcome = self.kubectl(User::Admin, args, input);
        assert!(
            outcome.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            outcome.explain()
        );
        outcome.stdout
    }

    /// Creates a namespace `PREFIX-SUFFIX`.
    pub fn namespace(&mut self, prefix: &str) -> String {
        let namespace = format!("{prefix}-{}", self.suffix);
        self.admin(&["create", "namespace", &namespace]);
        self.namespaces.push(namespace.clone());
        namespace
    }

    /// Creates a ClusterRole `PREFIX-SUFFIX` with one rule on TrainJobs.
    pub fn trainjob_cluster_role(&mut self, prefix: &str, verbs: &[&str]) -> String {
        let role = format!("{prefix}-{}", self.suffix);
        let object = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": [{
                "apiGroups": ["trainer.kubeflow.org"],
                "resources": ["trainjobs"],
                "verbs": verbs,
            }],
        });
        self.admin_with_input(&["create", "-f", "-"], Some(&object.to_string()));
        self.cluster_objects.push(format!("clusterrole/{role}"));
        role
    }

    /// Grants a ClusterRole to a user in one namespace.
    pub fn bind(&self, namespace: &str, cluster_role: &str, user: &str) {
        let binding = format!("{user}-{}", cluster_role.trim_start_matches("system:"));
        let role_flag = format!("--clusterrole={cluster_role}");
        let user_flag = format!("--user={user}");
        let args = [
            "create",
            "rolebinding",
            &binding,
            "-n",
            namespace,
            &role_flag,
            &user_flag,
        ];
        self.admin(&args);
    }

    /// Renders a kustomize tree and isolates it with this test's suffix, but applies nothing. Its
    /// namespaces and cluster-scoped objects are deleted when the test ends.
    pub fn prepare(&mut self, tree: &str) -> Vec<Value> {
        let objects = isolate(&render(tree), &self.suffix);
        for object in &objects {
            match kind(object) {
                "Namespace" => self.namespaces.push(name(object).to_owned()),
                "ClusterRole" | "ClusterRoleBinding" => {
                    let kind_name = format!("{}/{}", kind(object), name(object));
                    self.cluster_objects.push(kind_name.to_lowercase());
                }
                _ => {}
            }
        }
        objects
    }

    /// Sends objects to the API server as `user` with server-side apply.
    pub fn apply(&self, user: User, objects: &[Value]) -> Outcome {
        let args = [
            "apply",
            "--server-side",
            "--field-manager",
            FIELD_MANAGER,
            "-f",
            "-",
        ];
        self.kubectl(user, &args, Some(&to_yaml_stream(objects)))
    }

    /// Prepares a kustomize tree, applies it as admin and returns the applied objects.
    pub fn install(&mut self, tree: &str) -> Vec<Value> {
        let objects = self.prepare(tree);
        let outcome = self.apply(User::Admin, &objects);
        assert!(
            outcome.success(),
            "applying {tree} failed: {}",
            outcome.explain()
        );
        objects
    }

    /// Returns whether an object exists; `kind_name` is kubectl's `KIND/NAME`.
    pub fn exists(&self, namespace: &str, kind_name: &str) -> bool {
        let args = ["get", "-n", namespace, kind_name, "-o", "name"];
        let outcome = self.kubectl(User::Admin, &args, None);
        if outcome.success() {
            return true;
        }
        assert!(
            outcome.stderr.contains("NotFound"),
            "kubectl get {kind_name} -n {namespace} failed: {}",
            outcome.explain()
        );
        false
    }

    /// Returns the names of the TrainJobs in a namespace.
    pub fn trainjob_names(&self, namespace: &str) -> BTreeSet<String> {
        let names = "jsonpath={.items[*].metadata.name}";
        let output = self.admin(&["get", "trainjobs", "-n", namespace, "-o", names]);
        output.split_whitespace().map(str::to_owned).collect()
    }

    /// Waits until `subject` may run `action` ("VERB RESOURCE") in `namespace`, because the RBAC
    /// authorizer applies a changed role a moment after the write returns.
    pub fn wait_until_allowed(&self, subject: &str, action: &str, namespace: &str) {
        self.wait_for_access(subject, action, namespace, "yes");
    }

    /// Waits until `subject` may no longer run `action` ("VERB RESOURCE") in `namespace`.
    pub fn wait_until_denied(&self, subject: &str, action: &str, namespace: &str) {
        self.wait_for_access(subject, action, namespace, "no");
    }

    fn wait_for_access(&self, subject: &str, action: &str, namespace: &str, expected: &str) {
        let mut args = vec!["auth", "can-i"];
        args.extend(action.split_whitespace());
        args.extend(["-n", namespace, "--as", subject]);
        let description = format!("`kubectl auth can-i {action}` as {subject} prints {expected}");
        wait_until(RBAC_TIMEOUT, &description, || {
            self.kubectl(User::Admin, &args, None).stdout.trim() == expected
        });
    }

    /// Creates a TrainJob in `state`.
    pub fn create_trainjob(&self, namespace: &str, name: &str, state: TrainJobState) -> TrainJob {
        let trainjob = json!({
            "apiVersion": "trainer.kubeflow.org/v1alpha1",
            "kind": "TrainJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"runtimeRef": {"name": "torch-distributed"}},
        });
        let fields = "jsonpath={.metadata.uid} {.metadata.creationTimestamp}";
        let args = ["create", "-f", "-", "-o", fields];
        let output = self.admin_with_input(&args, Some(&trainjob.to_string()));
        let (uid, created_at) = output.split_once(' ').expect("kubectl printed no uid");

        // trainjob-gc keeps a TrainJob that finished before it was created, and the creation
        // time cannot be set, so a Completed TrainJob finishes at its creation time.
        if let TrainJobState::Completed = state {
            let status = json!({"status": {"conditions": [{
                "type": "Complete",
                "status": "True",
                "reason": "AllJobsCompleted",
                "message": "jobset completed successfully",
                "lastTransitionTime": created_at,
            }]}});
            let status = status.to_string();
            let kind_name = format!("trainjob/{name}");
            let subresource = "--subresource=status";
            let args = [
                "patch",
                &kind_name,
                "-n",
                namespace,
                subresource,
                "--type=merge",
                "-p",
                &status,
            ];
            self.admin(&args);
        }

        TrainJob {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
        }
    }

    /// Creates an empty ConfigMap or Secret that `owner` owns as Trainer owns its children:
    /// as controller, and blocking the owner's foreground deletion.
    pub fn create_owned(&self, owner: &TrainJob, object_kind: &str, name: &str) {
        let object = json!({
            "apiVersion": "v1",
            "kind": object_kind,
            "metadata": {
                "name": name,
                "namespace": owner.namespace,
                "ownerReferences": [{
                    "apiVersion": "trainer.kubeflow.org/v1alpha1",
                    "kind": "TrainJob",
                    "name": owner.name,
                    "uid": owner.uid,
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
            },
        });
        self.admin_with_input(&["create", "-f", "-"], Some(&object.to_string()));
    }

    /// Writes a kubeconfig with a new token of a ServiceAccount, requested as `user` through
    /// the TokenRequest API, as `kubectl create token` does.
    pub fn service_account_kubeconfig(
        &self,
        user: User,
        namespace: &str,
        account: &str,
    ) -> PathBuf {
        let args = [
            "create",
            "token",
            account,
            "-n",
            namespace,
            "--duration=10m",
        ];
        let outcome = self.kubectl(user, &args, None);
        assert!(
            outcome.success(),
            "creating a token for ServiceAccount {namespace}/{account} failed: {}",
            outcome.explain()
        );

        let cluster = json!({"server": self.server, "certificate-authority": self.ca_file});
        let kubeconfig = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": cluster}],
            "users": [{"name": account, "user": {"token": outcome.stdout.trim()}}],
            "contexts": [{"name": account, "context": {"cluster": "test", "user": account}}],
            "current-context": account,
        });
        let path = self
            .scratch
            .path()
            .join(format!("{namespace}-{account}.kubeconfig"));
        std::fs::write(&path, kubeconfig.to_string()).expect("failed to write the kubeconfig");
        path
    }

    /// Runs trainjob-gc with only `KUBECONFIG` and `environment` in its environment, so that no
    /// `TRAINJOB_GC_*` variable of the test process leaks in. Kills it after [`RUN_TIMEOUT`].
    pub fn run_gc(&self, kubeconfig: &Path, environment: &BTreeMap<String, String>) -> Outcome {
        // Files and not pipes, so that a full pipe cannot block the process while the test
        // polls it.
        let stdout_path = self.scratch.path().join("trainjob-gc.stdout");
        let stderr_path = self.scratch.path().join("trainjob-gc.stderr");
        let mut child = Command::new(env!("CARGO_BIN_EXE_trainjob-gc"))
            .env_clear()
            .env("KUBECONFIG", kubeconfig)
            .envs(environment)
            .stdin(Stdio::null())
            .stdout(File::create(&stdout_path).unwrap())
            .stderr(File::create(&stderr_path).unwrap())
            .spawn()
            .expect("failed to start trainjob-gc");

        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("failed to wait for trainjob-gc") {
                break status;
            }
            if started.elapsed() > RUN_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("trainjob-gc did not exit within {RUN_TIMEOUT:?}; stderr:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };

        Outcome {
            code: status.code(),
            stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        }
    }
}

impl Drop for Cluster {
    /// Deletes what the test created without waiting. The namespace controller of
    /// kube-controller-manager empties and removes the namespaces in the background. Without
    /// it they stay Terminating until the cluster stops.
    fn drop(&mut self) {
        let created = self.cluster_objects.iter().cloned();
        let namespaces = self
            .namespaces
            .iter()
            .map(|namespace| format!("namespace/{namespace}"));
        for kind_name in created.chain(namespaces) {
            let args = ["delete", &kind_name, "--ignore-not-found", "--wait=false"];
            let outcome = self.kubectl(User::Admin, &args, None);
            if !outcome.success() {
                eprintln!(
                    "cleanup: kubectl delete {kind_name} failed: {}",
                    outcome.explain()
                );
            }
        }
    }
}
