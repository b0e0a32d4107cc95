#!/usr/bin/env bash
# Starts a local test cluster in a new temporary folder, runs COMMAND with the cluster's
# variables exported (see hack/README.md), then stops the cluster and removes the folder.
# Exits with COMMAND's exit code.
#
# Usage: hack/with-cluster.sh [--controller-manager] -- COMMAND [ARG...]
#
# KEEP_CLUSTER=1 leaves the cluster running and the folder in place for debugging.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[with-cluster] %s\n' "$*" >&2; }

usage() {
  echo "Usage: hack/with-cluster.sh [--controller-manager] -- COMMAND [ARG...]"
}

start_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --controller-manager) start_args+=(--controller-manager); shift ;;
    --) shift; break ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; log "error: unknown argument $1 (put the command after --)"; exit 2 ;;
  esac
done
if [ $# -eq 0 ]; then
  usage >&2
  log "error: no command given after --"
  exit 2
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/trainjob-gc-cluster.XXXXXX")

cleanup() {
  local code=$?
  if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
    log "KEEP_CLUSTER=1: the cluster is left in $dir"
    log "use it with: source $dir/env"
    log "stop it with: $here/cluster.sh stop $dir"
  else
    "$here/cluster.sh" stop "$dir" || log "stopping the cluster in $dir failed; see the lines above"
    # cluster.sh stop leaves the folder alone when start failed before writing any state.
    rm -rf "$dir"
  fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$here/cluster.sh" start "$dir" "${start_args[@]}"
# shellcheck source=/dev/null
source "$dir/env"

set +e
"$@"
status=$?
set -e
exit "$status"
