#!/usr/bin/env bash
# Provides etcd, kube-apiserver, kube-controller-manager and kubectl for the local test cluster
# and prints the folder that holds them.
#
# Order of preference:
#   1. KUBEBUILDER_ASSETS, when it names a folder with the binaries (the envtest convention);
#      a binary missing there is built into the cache below.
#   2. The cache, K8S_BIN_CACHE (default ~/.cache/trainjob-gc/k8s-<versions>), when its binaries
#      report the expected versions.
#   3. A build from the Go module proxy into that cache, about 15 minutes cold on 2 cores.
#
# K8S_BIN_REBUILD=1 forces a cold build: the cached binaries are removed and built again.
# K8S_BINARIES names the binaries wanted (default: all four).
set -euo pipefail

KUBE_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
STAGING_VERSION=v0.${KUBE_VERSION#v1.}

cache_root=${K8S_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/trainjob-gc/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}}
# Absolute, because the build functions change directory before they write to bin_dir.
mkdir -p "$cache_root"
cache_root=$(cd "$cache_root" && pwd)
bin_dir=$cache_root/bin
src_dir=$cache_root/src
wanted=${K8S_BINARIES:-etcd kube-apiserver kube-controller-manager kubectl}

log() { printf '[k8s-binaries] %s\n' "$*" >&2; }

# Prints the version a binary reports, or nothing when it does not run.
binary_version() {
  local path=$1
  [ -x "$path" ] || return 0
  case "$(basename "$path")" in
    etcd) "$path" --version 2>/dev/null | sed -n 's/^etcd Version: /v/p' ;;
    kubectl) "$path" version --client 2>/dev/null | sed -n 's/^Client Version: //p' ;;
    *) "$path" --version 2>/dev/null | awk '{print $2}' ;;
  esac
}

expected_version() {
  if [ "$1" = etcd ]; then echo "$ETCD_VERSION"; else echo "$KUBE_VERSION"; fi
}

# Runs a long command and prints a line every 30 s, so a cold build never looks hung.
with_progress() {
  local what=$1; shift
  local started=$SECONDS
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do
      sleep 1
      kill -0 "$pid" 2>/dev/null || break
    done
    kill -0 "$pid" 2>/dev/null && log "still building $what ($((SECONDS - started)) s so far)"
  done
  wait "$pid"
  log "built $what in $((SECONDS - started)) s"
}

build_etcd() {
  mkdir -p "$src_dir/etcd" && cd "$src_dir/etcd"
  [ -f go.mod ] || go mod init local/etcdbin >/dev/null 2>&1
  go mod edit -go=1.26.0 -require=go.etcd.io/etcd/server/v3@"$ETCD_VERSION"
  with_progress "etcd $ETCD_VERSION" \
    go build -mod=mod -trimpath -ldflags "-s -w" -o "$bin_dir/etcd" go.etcd.io/etcd/server/v3
}

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging, which a
# module download does not contain; a wrapper module pins each of them to the matching release.
# The module is written in a scratch folder and renamed when complete, so an interrupted run
# cannot leave a go.mod without the replacements that later runs would reuse.
prepare_kubernetes_module() {
  [ -f "$src_dir/k8s/go.mod" ] && return 0
  local partial=$src_dir/k8s.partial
  rm -rf "$partial"
  mkdir -p "$partial" && cd "$partial"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  go mod init local/k8sbins >/dev/null 2>&1
  go mod edit -go=1.26.0 -require=k8s.io/kubernetes@"$KUBE_VERSION"
  sed -nE 's#^[[:space:]]*(k8s\.io/[A-Za-z0-9._-]+) => \./staging/.*#\1#p' "$gomod" | sort -u |
    while read -r module; do
      go mod edit -replace="$module=$module@$STAGING_VERSION"
    done
  grep -q '=> k8s.io/' go.mod || { log "found no staging modules in $gomod"; exit 1; }
  cd "$src_dir"
  rm -rf "$src_dir/k8s"
  mv "$partial" "$src_dir/k8s"
}

build_kubernetes() {
  local name=$1
  prepare_kubernetes_module
  cd "$src_dir/k8s"
  local minor=${KUBE_VERSION#v1.}
  minor=${minor%%.*}
  local ldflags="-s -w"
  # Without the stamp, /version and --version report v0.0.0.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean"
  done
  with_progress "$name $KUBE_VERSION" \
    go build -mod=mod -trimpath -ldflags "$ldflags" -o "$bin_dir/$name" "k8s.io/kubernetes/cmd/$name"
}

# Holds a lock on the cache until the script exits, so parallel callers (two test runs, say)
# wait for one build instead of writing the same binaries at the same time.
lock_cache() {
  command -v flock >/dev/null || return 0
  exec 9>"$cache_root/lock"
  if ! flock -n 9; then
    log "waiting for another k8s-binaries.sh run to release $cache_root/lock"
    flock 9
  fi
}

main() {
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
  lock_cache
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -d "$KUBEBUILDER_ASSETS" ]; then
    # The links below must not depend on the caller's working directory.
    KUBEBUILDER_ASSETS=$(cd "$KUBEBUILDER_ASSETS" && pwd)
  fi
  if [ "${K8S_BIN_REBUILD:-0}" = 1 ]; then
    log "K8S_BIN_REBUILD=1: removing $bin_dir for a cold build"
    rm -rf "$bin_dir"
  fi
  mkdir -p "$bin_dir"

  local name
  for name in $wanted; do
    if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/$name" ]; then
      ln -sf "$KUBEBUILDER_ASSETS/$name" "$bin_dir/$name.assets"
      continue
    fi
    local have
    have=$(binary_version "$bin_dir/$name")
    if [ "$have" = "$(expected_version "$name")" ]; then
      continue
    fi
    [ -n "$have" ] && log "$name in the cache is $have, expected $(expected_version "$name"): rebuilding"
    command -v go >/dev/null || { log "go is not installed: install Go 1.26 or set KUBEBUILDER_ASSETS"; exit 1; }
    log "building $name (first run only; cached in $bin_dir)"
    if [ "$name" = etcd ]; then build_etcd; else build_kubernetes "$name"; fi
  done

  # One folder for the caller: links to KUBEBUILDER_ASSETS where it had the binary.
  local out=$cache_root/current
  mkdir -p "$out"
  for name in $wanted; do
    if [ -e "$bin_dir/$name.assets" ] && [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/$name" ]; then
      ln -sf "$KUBEBUILDER_ASSETS/$name" "$out/$name"
    else
      ln -sf "$bin_dir/$name" "$out/$name"
    fi
  done
  echo "$out"
}

main "$@"
