//! Command-line flags. A flag wins over the environment, which wins over the ConfigMap.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

use crate::config::{Layer, Source};

/// Deletes finished Kubeflow TrainJobs once their retention time has passed.
///
/// Settings come from TRAINJOB_GC_* environment variables, from a ConfigMap named by
/// TRAINJOB_GC_CONFIGMAP, and from the flags below; see the README for the full table. Runs are
/// dry-runs unless TRAINJOB_GC_DRY_RUN=false or --dry-run=false.
#[derive(Debug, Parser)]
#[command(name = "trainjob-gc", version, about, long_about)]
pub struct Cli {
    /// Path of the kubeconfig file; KUBECONFIG and ~/.kube/config otherwise, then the in-cluster
    /// service account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use instead of the current one.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub context: Option<String>,

    /// ConfigMap with the policy, as namespace/name (TRAINJOB_GC_CONFIGMAP).
    #[arg(long, value_name = "NAMESPACE/NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub configmap: Option<String>,

    /// Report what would be deleted without deleting (TRAINJOB_GC_DRY_RUN); true or false.
    /// An empty value is rejected rather than read as unset, because this flag guards deletion.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = ["true", "false"]
    )]
    pub dry_run: Option<String>,

    /// Where the JSON-lines audit report goes: a file path, or - for standard output
    /// (TRAINJOB_GC_REPORT).
    #[arg(long, value_name = "PATH", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub report: Option<String>,

    /// Print a table of every TrainJob, grouped by namespace, on standard output. On by default
    /// when standard output is a terminal and the report does not go there.
    #[arg(long)]
    pub table: bool,

    /// Namespaces to clean, comma-separated (TRAINJOB_GC_NAMESPACES).
    #[arg(long, value_name = "LIST", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub namespaces: Option<String>,

    /// Label selector applied by the API server (TRAINJOB_GC_LABEL_SELECTOR).
    #[arg(long, value_name = "SELECTOR", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub label_selector: Option<String>,

    /// Log format: text or json (TRAINJOB_GC_LOG_FORMAT).
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,

    /// Decide as if the time were this RFC 3339 instant, such as 2026-12-07T09:00:00Z.
    /// Allowed in dry-run only, for audits of what a later run will do.
    #[arg(long, value_name = "RFC3339", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub now: Option<String>,
}

impl Cli {
    /// The flags that set a setting, as the highest-precedence layer.
    pub fn layer(&self) -> Layer {
        let flags = [
            ("CONFIGMAP", &self.configmap),
            ("DRY_RUN", &self.dry_run),
            ("REPORT", &self.report),
            ("NAMESPACES", &self.namespaces),
            ("LABEL_SELECTOR", &self.label_selector),
            ("LOG_FORMAT", &self.log_format),
        ];
        let values: BTreeMap<String, String> = flags
            .into_iter()
            .filter_map(|(name, value)| {
                value.as_ref().map(|value| {
                    (
                        format!("{}{name}", crate::constants::ENV_PREFIX),
                        value.clone(),
                    )
                })
            })
            .collect();
        Layer {
            source: Source::Flag,
            values,
        }
    }
}
