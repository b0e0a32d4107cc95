//! Names shared with Kubeflow Trainer, other controllers and the operator's configuration.

/// API group of TrainJobs.
pub const TRAINJOB_GROUP: &str = "trainer.kubeflow.org";
/// The only served version of TrainJobs (Trainer v2.0 through v2.3).
pub const TRAINJOB_VERSION: &str = "v1alpha1";
/// Plural resource name of TrainJobs.
pub const TRAINJOB_PLURAL: &str = "trainjobs";
/// Name of the TrainJob CustomResourceDefinition.
pub const TRAINJOB_CRD: &str = "trainjobs.trainer.kubeflow.org";

/// Condition types Trainer v2 sets on a TrainJob.
pub const CONDITION_COMPLETE: &str = "Complete";
pub const CONDITION_FAILED: &str = "Failed";
pub const CONDITION_SUSPENDED: &str = "Suspended";
/// Set only by pre-release Trainer builds; it carries no meaning for retention.
pub const CONDITION_CREATED: &str = "Created";

/// `spec.managedBy` value of TrainJobs that Trainer's own controller reconciles.
pub const TRAINER_MANAGER: &str = "trainer.kubeflow.org/trainjob-controller";

/// Annotation that sets the retention time of one TrainJob, with the grammar of `TRAINJOB_GC_TTL`.
pub const ANNOTATION_TTL: &str = "trainjob-gc/ttl";
/// Annotation that opts one TrainJob out of deletion when set to `"true"`.
pub const ANNOTATION_KEEP: &str = "trainjob-gc/keep";
/// Prefix of the annotations above. Any other key under it is treated as a misspelt one.
pub const ANNOTATION_PREFIX: &str = "trainjob-gc/";

/// Label Kueue puts on the worker-cluster copy of a MultiKueue job.
pub const LABEL_MULTIKUEUE_ORIGIN: &str = "kueue.x-k8s.io/multikueue-origin";
/// Annotation Argo CD sets on objects it tracks by annotation.
pub const ANNOTATION_ARGOCD_TRACKING: &str = "argocd.argoproj.io/tracking-id";
/// Label Argo CD sets on objects it tracks by label.
pub const LABEL_ARGOCD_INSTANCE: &str = "app.kubernetes.io/instance";
/// Custom tracking label that Argo CD's resource tracking guide uses as its example of
/// `application.instanceLabelKey` (argo-cd.readthedocs.io, user-guide/resource_tracking), for
/// clusters where Helm charts also set `app.kubernetes.io/instance`.
pub const LABEL_ARGOCD_CUSTOM_INSTANCE: &str = "argocd.argoproj.io/instance";
/// Prefixes of the labels Flux's kustomize and helm controllers set on what they apply.
pub const LABEL_PREFIXES_FLUX: [&str; 2] =
    ["kustomize.toolkit.fluxcd.io/", "helm.toolkit.fluxcd.io/"];

/// Prefix of every environment variable and ConfigMap key the program reads.
pub const ENV_PREFIX: &str = "TRAINJOB_GC_";

/// The fix named in every message about a 401 Unauthorized.
pub const RENEW_CREDENTIALS: &str =
    "renew the ServiceAccount token or the kubeconfig's credentials";
