//! The facts of one TrainJob that retention needs, decoded leniently from the API's JSON.
//!
//! Only metadata and status are modelled, because the spec changed shape between Trainer
//! releases. A field of the wrong type makes the TrainJob [`Malformed`] instead of failing the
//! page it came in, so one bad object never hides the others.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One condition of `status.conditions`, with every field optional so that the decision can say
/// what is missing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub last_transition_time: Option<String>,
}

/// A controller owner reference, the only kind that makes another object own the TrainJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerOwner {
    pub kind: String,
    pub name: String,
}

/// What retention needs to know about one TrainJob.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrainJob {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub creation_timestamp: Option<String>,
    pub deletion_timestamp: Option<String>,
    pub finalizers: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub controller_owner: Option<ControllerOwner>,
    pub managed_by: Option<String>,
    /// Empty when the TrainJob has no `status` or no `status.conditions`.
    pub conditions: Vec<Condition>,
}

/// An item the API returned that cannot be read as a TrainJob. The identity fields are filled as
/// far as they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub problem: String,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    spec: Option<&'a RawValue>,
    #[serde(borrow, default)]
    status: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: String,
    #[serde(default)]
    namespace: String,
    uid: String,
    resource_version: String,
    creation_timestamp: Option<String>,
    deletion_timestamp: Option<String>,
    finalizers: Option<Vec<String>>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
}

#[derive(Deserialize)]
struct OwnerReference {
    kind: Option<String>,
    name: Option<String>,
    controller: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    managed_by: Option<String>,
}

#[derive(Deserialize)]
struct Status {
    conditions: Option<Vec<Condition>>,
}

/// Best-effort identity of an item whose metadata did not decode, for the report.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct LooseIdentity {
    name: Option<serde_json::Value>,
    namespace: Option<serde_json::Value>,
    uid: Option<serde_json::Value>,
    resource_version: Option<serde_json::Value>,
}

fn loose_string(value: Option<serde_json::Value>) -> String {
    match value {
        Some(serde_json::Value::String(text)) => text,
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

impl TrainJob {
    /// Decodes one item of a TrainJob list (or the answer to a GET).
    pub fn from_json(item: &RawValue) -> Result<TrainJob, Malformed> {
        let item: Item<'_> = serde_json::from_str(item.get()).map_err(|err| Malformed {
            namespace: String::new(),
            name: String::new(),
            uid: String::new(),
            resource_version: String::new(),
            problem: format!("the item is not a JSON object with metadata: {err}"),
        })?;
        let Some(metadata) = item.metadata else {
            return Err(malformed_identity(None, "it has no metadata".to_owned()));
        };
        let meta: Metadata = serde_json::from_str(metadata.get())
            .map_err(|err| malformed_identity(Some(metadata), format!("metadata: {err}")))?;
        let identity = |problem: String| Malformed {
            namespace: meta.namespace.clone(),
            name: meta.name.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            problem,
        };

        let spec: Option<Spec> = match item.spec {
            Some(raw) if raw.get() != "null" => Some(
                serde_json::from_str(raw.get()).map_err(|err| identity(format!("spec: {err}")))?,
            ),
            _ => None,
        };
        let status: Option<Status> = match item.status {
            Some(raw) if raw.get() != "null" => Some(
                serde_json::from_str(raw.get())
                    .map_err(|err| identity(format!("status: {err}")))?,
            ),
            _ => None,
        };

        let controller_owner = meta
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .find(|owner| owner.controller == Some(true))
            .map(|owner| ControllerOwner {
                kind: owner.kind.unwrap_or_default(),
                name: owner.name.unwrap_or_default(),
            });
        Ok(TrainJob {
            namespace: meta.namespace,
            name: meta.name,
            uid: meta.uid,
            resource_version: meta.resource_version,
            creation_timestamp: meta.creation_timestamp,
            deletion_timestamp: meta.deletion_timestamp,
            finalizers: meta.finalizers.unwrap_or_default(),
            labels: meta.labels.unwrap_or_default(),
            annotations: meta.annotations.unwrap_or_default(),
            controller_owner,
            managed_by: spec.and_then(|spec| spec.managed_by),
            conditions: status
                .and_then(|status| status.conditions)
                .unwrap_or_default(),
        })
    }
}

fn malformed_identity(metadata: Option<&RawValue>, problem: String) -> Malformed {
    let loose: LooseIdentity = metadata
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default();
    Malformed {
        namespace: loose_string(loose.namespace),
        name: loose_string(loose.name),
        uid: loose_string(loose.uid),
        resource_version: loose_string(loose.resource_version),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> Result<TrainJob, Malformed> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        TrainJob::from_json(&raw)
    }

    #[test]
    fn decodes_metadata_spec_and_conditions() {
        let job = decode(
            r#"{"metadata":{"name":"a","namespace":"ns","uid":"u1","resourceVersion":"7",
                "creationTimestamp":"2026-01-01T00:00:00Z","labels":{"x":"y"},
                "ownerReferences":[{"kind":"Workflow","name":"w","controller":true,"uid":"o"}]},
                "spec":{"managedBy":"kueue.x-k8s.io/multikueue","runtimeRef":{"name":"torch"}},
                "status":{"conditions":[{"type":"Complete","status":"True","reason":"Done",
                "message":"","lastTransitionTime":"2026-01-02T00:00:00Z"}]}}"#,
        )
        .unwrap();
        assert_eq!(job.name, "a");
        assert_eq!(job.managed_by.as_deref(), Some("kueue.x-k8s.io/multikueue"));
        assert_eq!(job.controller_owner.unwrap().kind, "Workflow");
        assert_eq!(job.conditions[0].type_.as_deref(), Some("Complete"));
    }

    #[test]
    fn missing_status_means_no_conditions() {
        let job =
            decode(r#"{"metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"1"}}"#)
                .unwrap();
        assert!(job.conditions.is_empty());
    }

    #[test]
    fn wrong_status_type_is_malformed_with_identity() {
        let err = decode(
            r#"{"metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"1"},
                "status":{"conditions":"Complete"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            (err.namespace.as_str(), err.name.as_str(), err.uid.as_str()),
            ("ns", "a", "u")
        );
        assert!(err.problem.starts_with("status:"), "{}", err.problem);
    }

    #[test]
    fn null_spec_and_status_are_absent() {
        let job = decode(
            r#"{"metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"1"},
                "spec":null,"status":null}"#,
        )
        .unwrap();
        assert_eq!(job.managed_by, None);
        assert!(job.conditions.is_empty());
    }

    #[test]
    fn null_conditions_mean_no_conditions() {
        let job = decode(
            r#"{"metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"1"},
                "status":{"conditions":null,"jobsStatus":[]}}"#,
        )
        .unwrap();
        assert!(job.conditions.is_empty());
    }

    #[test]
    fn condition_fields_may_be_missing_or_extra() {
        let job = decode(
            r#"{"metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"1"},
                "status":{"conditions":[{"type":"Failed","status":"True","message":"OOM",
                "observedGeneration":3,"lastTransitionTime":null},{"status":"True"}]}}"#,
        )
        .unwrap();
        assert_eq!(job.conditions.len(), 2);
        assert_eq!(job.conditions[0].type_.as_deref(), Some("Failed"));
        assert_eq!(job.conditions[0].last_transition_time, None);
        assert_eq!(job.conditions[1].type_, None);
    }

    #[test]
    fn only_controller_owner_reference_counts() {
        let job = decode(
            r#"{"metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"1",
                "ownerReferences":[{"kind":"ConfigMap","name":"c","uid":"1"},
                {"kind":"Workflow","name":"w","uid":"2","controller":false}]}}"#,
        )
        .unwrap();
        assert_eq!(job.controller_owner, None);
    }

    #[test]
    fn deletion_timestamp_and_finalizers_are_read() {
        let job = decode(
            r#"{"metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"1",
                "deletionTimestamp":"2026-01-02T00:00:00Z","finalizers":["example.com/f"],
                "annotations":{"trainjob-gc/keep":"true"}}}"#,
        )
        .unwrap();
        assert_eq!(
            job.deletion_timestamp.as_deref(),
            Some("2026-01-02T00:00:00Z")
        );
        assert_eq!(job.finalizers, vec!["example.com/f"]);
        assert_eq!(job.annotations["trainjob-gc/keep"], "true");
    }

    #[test]
    fn item_without_metadata_is_malformed() {
        for json in [r#"{"status":{}}"#, r#"{"metadata":null}"#] {
            let err = decode(json).unwrap_err();
            assert_eq!(err.problem, "it has no metadata", "{json}");
            assert_eq!(err.name, "", "{json}");
        }
    }

    #[test]
    fn item_that_is_not_an_object_is_malformed() {
        for json in ["null", "\"TrainJob\"", "42"] {
            let err = decode(json).unwrap_err();
            assert!(
                err.problem.starts_with("the item is not a JSON object"),
                "{json}: {}",
                err.problem
            );
        }
    }

    #[test]
    fn metadata_without_uid_keeps_the_name() {
        let err = decode(r#"{"metadata":{"name":"a","namespace":"ns","resourceVersion":"1"}}"#)
            .unwrap_err();
        assert_eq!((err.namespace.as_str(), err.name.as_str()), ("ns", "a"));
        assert!(err.problem.contains("uid"), "{}", err.problem);
    }

    #[test]
    fn wrong_spec_type_is_malformed() {
        let err = decode(
            r#"{"metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"1"},
                "spec":{"managedBy":7}}"#,
        )
        .unwrap_err();
        assert_eq!(err.uid, "u");
        assert!(err.problem.starts_with("spec:"), "{}", err.problem);
    }

    #[test]
    fn wrong_metadata_type_keeps_what_identity_it_can() {
        let err = decode(
            r#"{"metadata":{"name":"a","namespace":"ns","uid":"u","resourceVersion":"1","labels":[1]}}"#,
        )
        .unwrap_err();
        assert_eq!(err.name, "a");
        assert!(err.problem.starts_with("metadata:"), "{}", err.problem);
    }
}
