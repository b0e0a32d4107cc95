#!/usr/bin/env bash
# Benchmarks trainjob-gc against a kubectl + jq loop, a script on the Python kubernetes client
# and a bare Go HTTP client, on a local kube-apiserver that hack/with-cluster.sh starts, then
# writes BENCHMARKS.md and bench/chart.svg.
#
# Usage: bench/run.sh [--small]
#
# --small checks only that each tool but the kubectl loop deletes exactly the expired TrainJobs
# of a set of BENCH_SMALL_SIZE (default 300), once, and writes neither BENCHMARKS.md nor the chart. It
# ends with the line "bench-small: N passed, N failed" and exits non-zero when any tool failed.
#
# Settings of the full run (environment):
#   BENCH_SIZES          TrainJobs per set (default "2000 10000")
#   BENCH_REPEAT         runs of each tool at each size (default 5; the kubectl loop runs once)
#   BENCH_KUBECTL_SIZES  sizes at which the kubectl loop runs (default "2000")
#   BENCH_DRY_RUN_SIZES  sizes of the dry-run memory runs of trainjob-gc (default "5000 50000")
#
# Needs cargo, Go 1.22 or later, python3 with venv, jq, curl, openssl and GNU time (Debian
# package time). The Python kubernetes client is installed into bench/out/venv from
# bench/requirements-python-client.txt.
set -euo pipefail

bench_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$bench_dir")
out=$bench_dir/out

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

small=0
case ${1:-} in
  --small) small=1 ;;
  "") ;;
  -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument $1 (the only option is --small)" ;;
esac

for tool in cargo go python3 jq curl openssl; do
  command -v "$tool" >/dev/null || die "$tool not found on PATH"
done
# GNU time measures the CPU time and peak RSS of each tool (see measure() in bench/harness.py).
[ -x /usr/bin/time ] || die "GNU time not found at /usr/bin/time; install it with: apt-get install time"
cd "$repo"
mkdir -p "$out"

log "building trainjob-gc"
cargo build --release --locked

log "building the seeder and the bare Go client"
(cd "$bench_dir" && GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -o "$out/bin/" ./cmd/...)

# The venv is made again only when the pinned requirements change.
requirements=$bench_dir/requirements-python-client.txt
if ! cmp -s "$requirements" "$out/venv/requirements.txt" 2>/dev/null; then
  log "installing the Python kubernetes client into $out/venv"
  rm -rf "$out/venv"
  python3 -m venv "$out/venv"
  "$out/venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$out/venv/requirements.txt"
fi

if [ "$small" = 1 ]; then
  exec hack/with-cluster.sh -- python3 bench/harness.py --small --sizes "${BENCH_SMALL_SIZE:-300}"
fi

hack/with-cluster.sh -- python3 bench/harness.py \
  --sizes "${BENCH_SIZES:-2000 10000}" \
  --repeat "${BENCH_REPEAT:-5}" \
  --kubectl-sizes "${BENCH_KUBECTL_SIZES:-2000}" \
  --dry-run-sizes "${BENCH_DRY_RUN_SIZES:-5000 50000}" \
  --results "$out/results.json"

python3 bench/report.py "$out/results.json" BENCHMARKS.md bench/chart.svg
