#!/usr/bin/env bash
# Deletes expired TrainJobs the way a first shell CronJob does. One kubectl get returns every
# TrainJob as JSON, a jq filter keeps those whose True Complete or Failed condition has a
# lastTransitionTime older than the TTL, and one kubectl delete removes each of them.
#
# KUBECTL names the kubectl binary (default: kubectl on PATH) and TTL_SECONDS the retention time
# after the finish (default 3600). The cluster comes from KUBECONFIG.
set -euo pipefail

kubectl=${KUBECTL:-kubectl}
ttl_seconds=${TTL_SECONDS:-3600}

# shellcheck disable=SC2016 # $ttl is a jq variable.
expired_filter='
  .items[]
  | select(.metadata.deletionTimestamp == null)
  | select(any(.status.conditions[]?;
      (.type == "Complete" or .type == "Failed")
      and .status == "True"
      and (.lastTransitionTime | fromdateiso8601) + $ttl <= now))
  | "\(.metadata.namespace) \(.metadata.name)"'

"$kubectl" get trainjobs --all-namespaces --output json |
  jq --raw-output --argjson ttl "$ttl_seconds" "$expired_filter" |
  while read -r namespace name; do
    "$kubectl" delete trainjob --namespace "$namespace" "$name"
  done
