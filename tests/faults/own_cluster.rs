//! A control plane of a test's own, for faults that would disturb the shared one: stopping the
//! API server, or a cluster without the TrainJob CRD.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::support::Cluster;

/// A cluster that `hack/cluster.sh` started in a temporary folder. Dropping it stops every
/// process of that cluster and removes the folder, also when the test fails.
pub struct OwnCluster {
    pub cluster: Cluster,
    folder: ClusterFolder,
}

/// The cluster's folder; dropping it runs `hack/cluster.sh stop`.
struct ClusterFolder(tempfile::TempDir);

impl ClusterFolder {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/cluster.sh")
}

async fn cluster_sh(args: &[&str], dir: &Path) {
    let output = Command::new(script())
        .arg(args[0])
        .arg(dir)
        .args(&args[1..])
        .output()
        .await
        .expect("run hack/cluster.sh");
    assert!(
        output.status.success(),
        "hack/cluster.sh {} failed:\n{}",
        args[0],
        String::from_utf8_lossy(&output.stderr)
    );
}

impl OwnCluster {
    /// Starts etcd and kube-apiserver; `options` go to `hack/cluster.sh start`, such as
    /// `--no-crd`.
    pub async fn start(options: &[&str]) -> OwnCluster {
        // The guard exists before the start, so that a start that fails half-way is stopped.
        let folder = ClusterFolder(
            tempfile::Builder::new()
                .prefix("trainjob-gc-own-cluster.")
                .tempdir()
                .expect("create a folder for the cluster"),
        );
        let mut args = vec!["start"];
        args.extend_from_slice(options);
        cluster_sh(&args, folder.path()).await;
        let env = std::fs::read_to_string(folder.path().join("env")).expect("read DIR/env");
        let var = |name: &str| -> String {
            env.lines()
                .filter_map(|line| line.strip_prefix("export "))
                .find_map(|line| line.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} missing from DIR/env"))
                .to_owned()
        };
        let kubeconfig = PathBuf::from(var("TEST_KUBECONFIG"));
        let file = kube::config::Kubeconfig::read_from(&kubeconfig).expect("read the kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
            .await
            .expect("load the kubeconfig");
        let cluster = Cluster {
            kubeconfig,
            kubectl: PathBuf::from(var("TEST_KUBECTL")),
            client: kube::Client::try_from(config).expect("create the client"),
        };
        OwnCluster { cluster, folder }
    }

    pub async fn stop_apiserver(&self) {
        cluster_sh(&["stop-apiserver"], self.folder.path()).await;
    }

    pub async fn start_apiserver(&self) {
        cluster_sh(&["start-apiserver"], self.folder.path()).await;
    }
}

impl Drop for ClusterFolder {
    fn drop(&mut self) {
        // Synchronous on purpose: a drop cannot await, and the processes must not outlive the test.
        let status = std::process::Command::new(script())
            .arg("stop")
            .arg(self.path())
            .status();
        if !matches!(status, Ok(status) if status.success()) {
            eprintln!(
                "hack/cluster.sh stop {} failed: {status:?}",
                self.path().display()
            );
        }
    }
}
