#!/usr/bin/env bash
# A first look at trainjob-gc: starts a local API server, creates sample TrainJobs in varied
# states, runs trainjob-gc in dry-run and then for real, and shows what went and what stayed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${TEST_KUBECONFIG:-}" ]; then
  echo "==> building trainjob-gc" >&2
  echo "    (the first build compiles every dependency: about 10 minutes on 2 cores)" >&2
  cargo build --release --locked
  exec hack/with-cluster.sh -- "$0" "$@"
fi

kubectl() { "$TEST_KUBECTL" --kubeconfig "$TEST_KUBECONFIG" "$@"; }
gc=target/release/trainjob-gc
namespace=ml-team

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Creates a TrainJob; extra metadata and spec lines come as YAML fragments.
create() {
  local name=$1 metadata=${2:-} spec=${3:-}
  kubectl apply -f - >/dev/null <<YAML
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata:
  name: $name
  namespace: $namespace
$metadata
spec:
  runtimeRef: {name: torch-distributed}
$spec
YAML
}

# Writes one condition through the status subresource, stamped with the current time, as the
# Trainer controller does when the JobSet finishes.
condition() {
  local name=$1 type=$2 reason=$3
  local now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  kubectl -n "$namespace" patch trainjob "$name" --subresource=status --type=merge -p \
    "{\"status\":{\"conditions\":[{\"type\":\"$type\",\"status\":\"True\",\"reason\":\"$reason\",\"message\":\"demo\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null
}

say "creating sample TrainJobs in namespace $namespace"
kubectl create namespace "$namespace" >/dev/null
create llama-finetune-1
condition llama-finetune-1 Complete AllJobsCompleted
create llama-finetune-2
condition llama-finetune-2 Complete AllJobsCompleted
create bert-sweep-failed
condition bert-sweep-failed Failed FailedJobs
create resnet-running
create gpt-suspended "" "  suspend: true"
condition gpt-suspended Suspended Suspended
create paper-baseline "  annotations: {trainjob-gc/keep: \"true\"}"
condition paper-baseline Complete AllJobsCompleted
create keep-a-day "  annotations: {trainjob-gc/ttl: 1d}"
condition keep-a-day Complete AllJobsCompleted
create typo-annotation "  annotations: {trainjob-gc/ttl: 10ay}"
condition typo-annotation Complete AllJobsCompleted
create multikueue-job "" "  managedBy: kueue.x-k8s.io/multikueue"
condition multikueue-job Complete AllJobsCompleted
kubectl -n "$namespace" get trainjobs

# Succeeded TrainJobs go 3 seconds after they finish; failed ones stay a week for debugging.
export TRAINJOB_GC_POLICY=ttl TRAINJOB_GC_TTL_SUCCEEDED=3s TRAINJOB_GC_TTL_FAILED=7d
export TRAINJOB_GC_NAMESPACES=$namespace TRAINJOB_GC_LOG_LEVEL=warn
export KUBECONFIG=$TEST_KUBECONFIG
sleep 4

say "dry-run (the default): what would be deleted, and why the rest is kept"
"$gc" --table

say "the same run for real: TRAINJOB_GC_DRY_RUN=false"
TRAINJOB_GC_DRY_RUN=false "$gc" --table

say "what is left"
kubectl -n "$namespace" get trainjobs
