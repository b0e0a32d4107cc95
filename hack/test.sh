#!/usr/bin/env bash
# Runs every test: unit tests, then the integration tests against a local kube-apiserver, etcd
# and kube-controller-manager that hack/with-cluster.sh starts and always stops, then the small
# benchmark run. Prints how long each phase took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

phases=()
phase() {
  local name=$1; shift
  local started=$SECONDS
  echo "==> $name" >&2
  "$@"
  phases+=("$(printf '%-34s %5d s' "$name" $((SECONDS - started)))")
}
report_phases() {
  echo "==> phase times" >&2
  for line in "${phases[@]}"; do echo "    $line" >&2; done
}
trap report_phases EXIT

phase "kube-apiserver, etcd, kubectl" hack/k8s-binaries.sh >/dev/null
phase "cargo build (tests and release)" cargo build --locked --all-targets --release
phase "unit tests" cargo test --locked --release --lib
phase "integration tests" hack/with-cluster.sh --controller-manager -- \
  cargo test --locked --release --test '*'
if [ -x bench/run.sh ]; then
  phase "small benchmark run" bench/run.sh --small
fi
