//! Finding the cluster the way kubectl does, and describing it for the start line.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

use crate::config::Limits;
use crate::exit::Exit;

/// Where the run connects and as whom, for the start line.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub context: Option<String>,
    pub identity: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "failed to read the kubeconfig {path}: {message}; fix the file, or name another with --kubeconfig"
    )]
    ReadKubeconfig { path: String, message: String },
    #[error(
        "the context {context:?} is not in the kubeconfig {path}; it has {known}; choose one with --context"
    )]
    UnknownContext {
        context: String,
        path: String,
        known: String,
    },
    #[error(
        "failed to load the cluster configuration: {0}; set --kubeconfig or KUBECONFIG, or run in a pod with a service account"
    )]
    Infer(String),
    #[error("failed to create the API client for {url}: {message}")]
    Client { url: String, message: String },
}

impl ConnectError {
    /// Returns 2 for an unreadable kubeconfig or an unknown context, which the operator fixes.
    /// Returns 3 when no cluster can be reached at all, as for an unreachable API server.
    pub fn exit(&self) -> Exit {
        match self {
            ConnectError::ReadKubeconfig { .. } | ConnectError::UnknownContext { .. } => {
                Exit::InvalidConfig
            }
            ConnectError::Infer(_) | ConnectError::Client { .. } => Exit::ApiUnavailable,
        }
    }
}

/// Loads the client configuration: `--kubeconfig`, then `KUBECONFIG` and `~/.kube/config`, then
/// the in-cluster service account. `--context` picks a kubeconfig context.
pub async fn load(
    kubeconfig: Option<&PathBuf>,
    context: Option<&str>,
) -> Result<(Config, Target), ConnectError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    if let Some(path) = kubeconfig {
        let file = Kubeconfig::read_from(path).map_err(|err| ConnectError::ReadKubeconfig {
            path: path.display().to_string(),
            message: crate::api::error_chain(&err),
        })?;
        return from_file(file, &options, context, &path.display().to_string()).await;
    }

    if let Some(file) = kubeconfig_from_env()? {
        return from_file(file, &options, context, &kubeconfig_variable()).await;
    }
    if let Some(home) = std::env::var_os("HOME") {
        let path = PathBuf::from(home).join(".kube").join("config");
        if path.exists() {
            let file =
                Kubeconfig::read_from(&path).map_err(|err| ConnectError::ReadKubeconfig {
                    path: path.display().to_string(),
                    message: crate::api::error_chain(&err),
                })?;
            return from_file(file, &options, context, &path.display().to_string()).await;
        }
    }
    if context.is_some() {
        return Err(ConnectError::Infer(
            "--context was given but no kubeconfig was found".to_owned(),
        ));
    }
    let config =
        Config::incluster().map_err(|err| ConnectError::Infer(crate::api::error_chain(&err)))?;
    let identity =
        service_account_identity().unwrap_or_else(|| "in-cluster service account".to_owned());
    let target = Target {
        url: config.cluster_url.to_string(),
        context: None,
        identity,
    };
    Ok((config, target))
}

/// Reads and merges the files listed in `KUBECONFIG`, skipping those that do not exist, as
/// kubectl does (client-go's loading rules skip missing files). Returns `None` when the variable is unset or lists no path.
fn kubeconfig_from_env() -> Result<Option<Kubeconfig>, ConnectError> {
    let Some(value) = std::env::var_os("KUBECONFIG") else {
        return Ok(None);
    };
    let paths: Vec<PathBuf> = std::env::split_paths(&value)
        .filter(|path| !path.as_os_str().is_empty())
        .collect();
    if paths.is_empty() {
        return Ok(None);
    }
    let existing: Vec<&PathBuf> = paths.iter().filter(|path| path.exists()).collect();
    if existing.is_empty() {
        return Err(ConnectError::ReadKubeconfig {
            path: kubeconfig_variable(),
            message: "none of the files listed in KUBECONFIG exists".to_owned(),
        });
    }
    let mut merged = Kubeconfig::default();
    for path in existing {
        let read_error = |err: kube::config::KubeconfigError| ConnectError::ReadKubeconfig {
            path: path.display().to_string(),
            message: crate::api::error_chain(&err),
        };
        let file = Kubeconfig::read_from(path).map_err(read_error)?;
        merged = merged.merge(file).map_err(read_error)?;
    }
    Ok(Some(merged))
}

/// `KUBECONFIG` for messages, with any byte that is not UTF-8 shown as U+FFFD.
fn kubeconfig_variable() -> String {
    std::env::var_os("KUBECONFIG")
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_default()
}

async fn from_file(
    file: Kubeconfig,
    options: &KubeConfigOptions,
    context: Option<&str>,
    path: &str,
) -> Result<(Config, Target), ConnectError> {
    if let Some(context) = context
        && !file.contexts.iter().any(|named| named.name == context)
    {
        let names: Vec<&str> = file
            .contexts
            .iter()
            .map(|named| named.name.as_str())
            .collect();
        let known = if names.is_empty() {
            "no contexts".to_owned()
        } else {
            format!("contexts {}", names.join(", "))
        };
        return Err(ConnectError::UnknownContext {
            context: context.to_owned(),
            path: path.to_owned(),
            known,
        });
    }
    let target = describe_kubeconfig(&file, context);
    let config = Config::from_custom_kubeconfig(file, options)
        .await
        .map_err(|err| ConnectError::ReadKubeconfig {
            path: path.to_owned(),
            message: crate::api::error_chain(&err),
        })?;
    Ok((
        config.clone(),
        Target {
            url: config.cluster_url.to_string(),
            ..target
        },
    ))
}

fn describe_kubeconfig(file: &Kubeconfig, context: Option<&str>) -> Target {
    let name = context
        .map(str::to_owned)
        .or_else(|| file.current_context.clone());
    let user = name
        .as_deref()
        .and_then(|name| file.contexts.iter().find(|named| named.name == name))
        .and_then(|named| named.context.as_ref())
        .and_then(|context| context.user.clone());
    Target {
        url: String::new(),
        context: name,
        identity: user.map_or_else(|| "unknown user".to_owned(), |user| format!("user {user}")),
    }
}

/// Reads `system:serviceaccount:NAMESPACE:NAME` from the mounted token's claims. Only used for the
/// start line: the API server checks the token, not this program.
fn service_account_identity() -> Option<String> {
    let token =
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/token").ok()?;
    let payload = token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let subject = claims.get("sub")?.as_str()?;
    Some(format!(
        "service account {}",
        subject
            .strip_prefix("system:serviceaccount:")
            .unwrap_or(subject)
    ))
}

/// Builds the client with our limits: kube's own retry layer off (our retry rules apply) and a
/// read timeout, which kube leaves unset by default.
pub fn client(mut config: Config, limits: &Limits) -> Result<kube::Client, ConnectError> {
    config.default_retry = false;
    config.read_timeout = Some(limits.request_timeout);
    config.write_timeout = Some(limits.request_timeout);
    config.connect_timeout = Some(limits.request_timeout.min(Duration::from_secs(10)));
    let url = config.cluster_url.to_string();
    kube::Client::try_from(config).map_err(|err| ConnectError::Client {
        url,
        message: crate::api::error_chain(&err),
    })
}
