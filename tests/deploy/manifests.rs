//! The kustomize trees under `manifests/`: rendered with the test cluster's kubectl, read as
//! YAML, and renamed so that tests sharing one cluster do not clash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

/// Returns the kubectl of the test cluster, which includes kustomize.
pub fn kubectl_path() -> PathBuf {
    match std::env::var_os("TEST_KUBECTL") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "TEST_KUBECTL is not set; run these tests inside a test cluster: \
             hack/with-cluster.sh --controller-manager -- cargo test --test deploy"
        ),
    }
}

/// Returns the folder of the shipped kustomize trees.
pub fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

/// Renders one kustomize tree under `manifests/`, such as `base` or `overlays/audit`.
pub fn render(tree: &str) -> Vec<Value> {
    let path = manifests_dir().join(tree);
    let output = Command::new(kubectl_path())
        .arg("kustomize")
        .arg(&path)
        .output()
        .expect("failed to start kubectl");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed:\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_documents(&String::from_utf8_lossy(&output.stdout))
}

/// Parses a multi-document YAML stream, skipping empty documents.
pub fn parse_documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|document| Value::deserialize(document).expect("invalid YAML"))
        .filter(|value| !value.is_null())
        .collect()
}

/// Serializes objects as one multi-document YAML stream for `kubectl apply -f -`.
pub fn to_yaml_stream(objects: &[Value]) -> String {
    let documents: Vec<String> = objects
        .iter()
        .map(|object| serde_yaml::to_string(object).unwrap())
        .collect();
    documents.join("---\n")
}

/// Returns the string at a path of keys, or "" when it is missing.
pub fn text<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    let mut current = value;
    for key in path {
        match current.get(*key) {
            Some(next) => current = next,
            None => return "",
        }
    }
    current.as_str().unwrap_or("")
}

pub fn kind(object: &Value) -> &str {
    text(object, &["kind"])
}

pub fn name(object: &Value) -> &str {
    text(object, &["metadata", "name"])
}

pub fn namespace(object: &Value) -> &str {
    text(object, &["metadata", "namespace"])
}

/// Returns a YAML list of strings as a set.
pub fn strings(value: &Value) -> BTreeSet<String> {
    let items = value.as_sequence().into_iter().flatten();
    items
        .map(|item| item.as_str().unwrap().to_owned())
        .collect()
}

/// Returns the only object of a kind, failing the test when there are none or several.
pub fn only<'a>(objects: &'a [Value], expected_kind: &str) -> &'a Value {
    let matching: Vec<&Value> = objects
        .iter()
        .filter(|object| kind(object) == expected_kind)
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "expected exactly one {expected_kind}, found {}",
        matching.len()
    );
    matching[0]
}

/// Returns the Roles and ClusterRoles of an install.
pub fn roles(objects: &[Value]) -> impl Iterator<Item = &Value> {
    let is_role = |object: &&Value| matches!(kind(object), "Role" | "ClusterRole");
    objects.iter().filter(is_role)
}

/// Returns the RoleBindings and ClusterRoleBindings of an install.
pub fn bindings(objects: &[Value]) -> impl Iterator<Item = &Value> {
    let is_binding = |object: &&Value| matches!(kind(object), "RoleBinding" | "ClusterRoleBinding");
    objects.iter().filter(is_binding)
}

/// Returns the rules of a role that cover TrainJobs.
pub fn trainjob_rules(role: &Value) -> Vec<&Value> {
    let rules = role["rules"].as_sequence().into_iter().flatten();
    rules
        .filter(|rule| strings(&rule["apiGroups"]).contains("trainer.kubeflow.org"))
        .collect()
}

/// Returns the pod spec of a CronJob's Job template.
pub fn pod_spec(cronjob: &Value) -> &Value {
    &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
}

/// Returns the first container of a CronJob's pod template.
pub fn cronjob_container(cronjob: &Value) -> &Value {
    &pod_spec(cronjob)["containers"][0]
}

/// Returns the value of a variable in a container's own `env`.
pub fn env_value<'a>(container: &'a Value, variable: &str) -> Option<&'a str> {
    let env = container["env"].as_sequence().into_iter().flatten();
    env.filter(|entry| text(entry, &["name"]) == variable)
        .map(|entry| text(entry, &["value"]))
        .next()
}

/// Returns the environment a pod of the CronJob starts with: the ConfigMap of `envFrom`, then
/// the container's own `env`, which Kubernetes lets win over `envFrom`.
pub fn pod_environment(objects: &[Value]) -> BTreeMap<String, String> {
    let container = cronjob_container(only(objects, "CronJob"));
    let mut environment = BTreeMap::new();

    for source in container["envFrom"].as_sequence().into_iter().flatten() {
        let configmap_name = text(source, &["configMapRef", "name"]);
        let configmap = objects
            .iter()
            .find(|object| kind(object) == "ConfigMap" && name(object) == configmap_name)
            .unwrap_or_else(|| panic!("envFrom names the missing ConfigMap {configmap_name}"));
        for (key, value) in configmap["data"].as_mapping().into_iter().flatten() {
            let key = key.as_str().expect("ConfigMap keys are strings");
            let value = value.as_str().expect("ConfigMap values are strings");
            environment.insert(key.to_owned(), value.to_owned());
        }
    }

    for variable in container["env"].as_sequence().into_iter().flatten() {
        let key = text(variable, &["name"]).to_owned();
        environment.insert(key, text(variable, &["value"]).to_owned());
    }
    environment
}

/// Gives rendered manifests names of their own, so that tests sharing one cluster do not clash.
///
/// Every namespace `ns` becomes `ns-SUFFIX`: object namespaces, Namespace objects, binding
/// subjects and the namespaces in `TRAINJOB_GC_NAMESPACES`. ClusterRoles and
/// ClusterRoleBindings get `-SUFFIX` too, and so do the `roleRef`s that name those ClusterRoles.
/// Nothing else changes.
pub fn isolate(objects: &[Value], suffix: &str) -> Vec<Value> {
    let rename = |name: &str| format!("{name}-{suffix}");
    let cluster_roles: Vec<&str> = objects
        .iter()
        .filter(|object| kind(object) == "ClusterRole")
        .map(name)
        .collect();

    let mut isolated = objects.to_vec();
    for object in &mut isolated {
        let object_kind = kind(object).to_owned();

        let old_namespace = namespace(object).to_owned();
        if !old_namespace.is_empty() {
            object["metadata"]["namespace"] = Value::from(rename(&old_namespace));
        }
        if matches!(
            object_kind.as_str(),
            "Namespace" | "ClusterRole" | "ClusterRoleBinding"
        ) {
            let new_name = rename(name(object));
            object["metadata"]["name"] = Value::from(new_name);
        }

        let role = text(object, &["roleRef", "name"]).to_owned();
        if text(object, &["roleRef", "kind"]) == "ClusterRole"
            && cluster_roles.contains(&role.as_str())
        {
            object["roleRef"]["name"] = Value::from(rename(&role));
        }
        if let Some(subjects) = object.get_mut("subjects").and_then(Value::as_sequence_mut) {
            for subject in subjects {
                let subject_namespace = text(subject, &["namespace"]).to_owned();
                if !subject_namespace.is_empty() {
                    subject["namespace"] = Value::from(rename(&subject_namespace));
                }
            }
        }

        let listed = text(object, &["data", "TRAINJOB_GC_NAMESPACES"]).to_owned();
        if object_kind == "ConfigMap" && !listed.is_empty() {
            let renamed: Vec<String> = listed
                .split(',')
                .map(|entry| rename(entry.trim()))
                .collect();
            object["data"]["TRAINJOB_GC_NAMESPACES"] = Value::from(renamed.join(","));
        }
    }
    isolated
}
