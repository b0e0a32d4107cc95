#!/usr/bin/env bash
# Runs a throw-away Kubernetes control plane on 127.0.0.1 for trainjob-gc's integration tests:
# etcd, kube-apiserver with the TrainJob CRD from tests/fixtures, and on request a
# kube-controller-manager that runs only the garbage-collector and namespace controllers.
# --no-crd leaves the CRD out, for tests of a cluster without Kubeflow Trainer.
#
# Usage:
#   hack/cluster.sh start DIR [--controller-manager] [--no-crd]
#   hack/cluster.sh stop DIR
#   hack/cluster.sh stop-apiserver DIR    # stops kube-apiserver only; etcd keeps the data
#   hack/cluster.sh start-apiserver DIR   # starts it again on the same port
#
# hack/README.md lists the files written to DIR and the variables that DIR/env exports.
# CLUSTER_START_TIMEOUT (seconds, default 120) bounds each wait during a start, and
# CLUSTER_STOP_TIMEOUT (seconds, default 10) is how long a process gets between TERM and KILL.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
crd_file=$(dirname "$here")/tests/fixtures/trainjob-crd.yaml
crd_name=trainjobs.trainer.kubeflow.org
trainjobs_path=/apis/trainer.kubeflow.org/v1alpha1/trainjobs
start_timeout=${CLUSTER_START_TIMEOUT:-120}
stop_timeout=${CLUSTER_STOP_TIMEOUT:-10}

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat <<'EOF'
Usage:
  hack/cluster.sh start DIR [--controller-manager] [--no-crd]
  hack/cluster.sh stop DIR
  hack/cluster.sh stop-apiserver DIR
  hack/cluster.sh start-apiserver DIR
EOF
}

# --- time -----------------------------------------------------------------------------------

# Prints the wall-clock time in microseconds. Some locales write EPOCHREALTIME with a comma.
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$((10#$t))"; }

# Prints the seconds elapsed since a now_us value, with two decimals.
elapsed_since() {
  local cs=$((($(now_us) - $1) / 10000))
  printf '%d.%02d' $((cs / 100)) $((cs % 100))
}

# --- processes ------------------------------------------------------------------------------

# Prints the fields of /proc/PID/stat after the command name: state, parent PID and so on.
# Fails when the process is gone.
proc_stat_fields() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  echo "${stat##*) }"
}

# Succeeds when PID is a running process. A zombie counts as exited: its parent may never reap
# it when the container's PID 1 is not an init process.
pid_alive() {
  local pid=$1 state
  kill -0 "$pid" 2>/dev/null || return 1
  [ -d /proc/self ] || return 0
  read -r state _ < <(proc_stat_fields "$pid") || return 1
  [ "$state" != Z ]
}

# Succeeds when PID is a child of this script or its command line names a file in the cluster
# folder. Every component has such a flag, so a PID that the kernel has since given to another
# process is left alone. The child test covers the moment between fork and exec, when the
# command line is still this script's.
pid_is_ours() {
  local pid=$1 parent
  [ -d /proc/self ] || return 0
  read -r _ parent _ < <(proc_stat_fields "$pid") || return 1
  [ "$parent" = $$ ] && return 0
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/"
}

# Prints the recorded PID of a component, or nothing.
recorded_pid() {
  [ -f "$dir/pids" ] || return 0
  awk -v name="$1" '$1 == name { pid = $2 } END { if (pid) print pid }' "$dir/pids"
}

component_running() {
  local pid
  pid=$(recorded_pid "$1")
  [ -n "$pid" ] && pid_alive "$pid" && pid_is_ours "$pid"
}

forget_pid() {
  [ -f "$dir/pids" ] || return 0
  awk -v name="$1" '$1 != name' "$dir/pids" >"$dir/pids.new"
  mv "$dir/pids.new" "$dir/pids"
}

# Sends TERM to PID, then KILL when it is still running after CLUSTER_STOP_TIMEOUT seconds.
stop_pid() {
  local name=$1 pid=$2 started
  pid_alive "$pid" || return 0
  if ! pid_is_ours "$pid"; then
    log "PID $pid no longer runs $name from $dir; leaving it alone"
    return 0
  fi
  started=$(now_us)
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((started + stop_timeout * 1000000))
  while pid_alive "$pid"; do
    if (($(now_us) >= deadline)); then
      log "$name (PID $pid) still running ${stop_timeout} s after TERM; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$(($(now_us) + 5000000))
      while pid_alive "$pid" && (($(now_us) < deadline)); do sleep 0.1; done
      break
    fi
    sleep 0.1
  done
  if pid_alive "$pid"; then
    log "$name (PID $pid) is still running after KILL"
    return 0
  fi
  log "stopped $name (PID $pid) in $(elapsed_since "$started") s"
}

# Stops every recorded process, newest first.
stop_all() {
  [ -f "$dir/pids" ] || return 0
  local name pid
  while read -r name pid; do
    [ -n "$pid" ] && stop_pid "$name" "$pid"
  done < <(tac "$dir/pids")
  rm -f "$dir/pids"
}

show_log_tail() {
  local file=$dir/$1.log
  [ -f "$file" ] || return 0
  log "last lines of $file:"
  tail -n 30 "$file" | cut -c1-400 | sed 's/^/    /' >&2
}

# Runs a command until it succeeds. Fails when COMPONENT exits first or CLUSTER_START_TIMEOUT
# passes, and then prints the tail of that component's log.
wait_for() {
  local component=$1 what=$2
  shift 2
  local deadline=$((SECONDS + start_timeout))
  until "$@"; do
    if ! component_running "$component"; then
      log "$component exited while waiting for $what"
      show_log_tail "$component"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "timed out after $start_timeout s waiting for $what"
      show_log_tail "$component"
      return 1
    fi
    sleep 0.2
  done
}

# --- state ----------------------------------------------------------------------------------

# DIR/state stores what a later subcommand needs: the binaries, the ports and the admin token.
# Its presence also marks DIR as a cluster folder, which stop may delete.
write_state() {
  {
    printf 'bin_dir=%q\n' "$bin_dir"
    printf 'etcd_port=%q\n' "$etcd_port"
    printf 'etcd_peer_port=%q\n' "$etcd_peer_port"
    printf 'apiserver_port=%q\n' "$apiserver_port"
    printf 'admin_token=%q\n' "$admin_token"
    printf 'with_crd=%q\n' "$with_crd"
  } >"$dir/state"
}

load_state() {
  [ -f "$dir/state" ] || die "no cluster state in $dir (state file missing). Start a cluster with: $0 start DIR"
  # shellcheck source=/dev/null
  source "$dir/state"
}

# --- ports ----------------------------------------------------------------------------------

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Sets the variable named $1 to a port on 127.0.0.1 that nothing listens on. The ports come
# from below Linux's default ephemeral range (32768-60999), so outgoing connections do not take
# them between this check and the bind.
picked_ports=" "
pick_port() {
  local port
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 12000))
    [[ $picked_ports == *" $port "* ]] && continue
    port_in_use "$port" && continue
    picked_ports+="$port "
    printf -v "$1" '%s' "$port"
    return 0
  done
  die "found no free port on 127.0.0.1 in 200 tries"
}

# --- certificates and credentials ----------------------------------------------------------

# Writes a CA, a serving certificate for 127.0.0.1 and localhost, and the service-account
# key pair. rustls accepts the CA only with CA:TRUE and checks the IP SAN of the server.
make_certificates() {
  local pki=$dir/pki
  mkdir -p "$pki"
  cat >"$pki/openssl.cnf" <<'EOF'
[req]
distinguished_name = subject
prompt = no

[subject]
CN = trainjob-gc test CA

[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/ca.key" 2>/dev/null
  openssl req -x509 -new -config "$pki/openssl.cnf" -extensions ca -key "$pki/ca.key" \
    -sha256 -days 30 -out "$pki/ca.crt"

  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/server.key" 2>/dev/null
  openssl req -new -config "$pki/openssl.cnf" -key "$pki/server.key" -subj /CN=kube-apiserver \
    -out "$pki/server.csr"
  openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -sha256 -days 30 \
    -extfile "$pki/openssl.cnf" -extensions server -out "$pki/server.crt" 2>/dev/null

  # kube-apiserver signs service-account tokens (TokenRequest) with this key.
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key" 2>/dev/null
  openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
}

# Writes the static token file. Only admin has a group, system:masters, which RBAC allows
# everything. The users gc and limited get rights only from the bindings that a test creates.
write_tokens() {
  admin_token=$(openssl rand -hex 24)
  gc_token=$(openssl rand -hex 24)
  limited_token=$(openssl rand -hex 24)
  {
    printf '%s,admin,uid-admin,"system:masters"\n' "$admin_token"
    printf '%s,gc,uid-gc\n' "$gc_token"
    printf '%s,limited,uid-limited\n' "$limited_token"
  } >"$dir/tokens.csv"
}

write_kubeconfig() {
  local user=$1 token=$2 ca_data
  ca_data=$(base64 <"$dir/pki/ca.crt" | tr -d '\n')
  cat >"$dir/$user.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: trainjob-gc-test
    cluster:
      server: https://127.0.0.1:$apiserver_port
      certificate-authority-data: $ca_data
users:
  - name: $user
    user:
      token: $token
contexts:
  - name: $user
    context:
      cluster: trainjob-gc-test
      user: $user
current-context: $user
EOF
}

write_env() {
  {
    printf 'export %s=%q\n' TEST_CLUSTER_DIR "$dir"
    printf 'export %s=%q\n' TEST_KUBECONFIG "$dir/admin.kubeconfig"
    printf 'export %s=%q\n' TEST_GC_KUBECONFIG "$dir/gc.kubeconfig"
    printf 'export %s=%q\n' TEST_LIMITED_KUBECONFIG "$dir/limited.kubeconfig"
    printf 'export %s=%q\n' TEST_APISERVER_URL "https://127.0.0.1:$apiserver_port"
    printf 'export %s=%q\n' TEST_CA_FILE "$dir/pki/ca.crt"
    printf 'export %s=%q\n' TEST_ADMIN_TOKEN "$admin_token"
    printf 'export %s=%q\n' TEST_KUBECTL "$bin_dir/kubectl"
    printf 'export %s=%q\n' TEST_BIN_DIR "$bin_dir"
  } >"$dir/env"
}

# --- components -----------------------------------------------------------------------------

# Each component runs in its own session, so a Ctrl-C meant for the caller's command does not
# reach it (Go programs handle SIGINT even when a shell started them with SIGINT ignored). A
# background job of this non-interactive script is never a process group leader, so setsid runs
# the program in the same process and $! is the component's PID.
detach=()
command -v setsid >/dev/null && detach=(setsid)

start_etcd() {
  local peer_url=http://127.0.0.1:$etcd_peer_port
  "${detach[@]}" "$bin_dir/etcd" \
    --name=test \
    --data-dir="$dir/etcd" \
    --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="$peer_url" \
    --initial-advertise-peer-urls="$peer_url" \
    --initial-cluster="test=$peer_url" \
    --unsafe-no-fsync=true \
    </dev/null >>"$dir/etcd.log" 2>&1 &
  echo "etcd $!" >>"$dir/pids"
  wait_for etcd "etcd /readyz" \
    curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$etcd_port/readyz"
}

apiserver_ready() {
  curl -fs -o /dev/null --max-time 2 --cacert "$dir/pki/ca.crt" \
    -H "Authorization: Bearer $admin_token" "https://127.0.0.1:$apiserver_port/readyz"
}

# Succeeds when a list of TrainJobs returns 200. Right after the CRD is created, or after
# kube-apiserver restarts, the path returns 429 "storage is (re)initializing" for a moment
# although the CRD is already Established.
trainjobs_listable() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$dir/pki/ca.crt" \
    -H "Authorization: Bearer $admin_token" \
    "https://127.0.0.1:$apiserver_port$trainjobs_path?limit=1") || true
  [ "$code" = 200 ]
}

# --endpoint-reconciler-type=none: without it, kube-apiserver v1.37.2 exits with "cannot use
# public IP 127.0.0.1 with endpoint reconciler", because an endpoint may not be a loopback address.
# --disable-admission-plugins=ServiceAccount: no controller here creates the default
# ServiceAccount of a namespace, and that plugin rejects Pods until one exists.
# --shutdown-watch-termination-grace-period: without it, open watches (the controller
# manager's) keep kube-apiserver from exiting for 60 s after TERM. With it, the process exits in
# about 1 s.
start_apiserver() {
  echo "--- kube-apiserver started $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$dir/kube-apiserver.log"
  "${detach[@]}" "$bin_dir/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$apiserver_port" \
    --cert-dir="$dir/pki" \
    --tls-cert-file="$dir/pki/server.crt" \
    --tls-private-key-file="$dir/pki/server.key" \
    --client-ca-file="$dir/pki/ca.crt" \
    --token-auth-file="$dir/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$dir/pki/sa.pub" \
    --service-account-signing-key-file="$dir/pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --disable-admission-plugins=ServiceAccount \
    --endpoint-reconciler-type=none \
    --shutdown-watch-termination-grace-period=2s \
    </dev/null >>"$dir/kube-apiserver.log" 2>&1 &
  echo "kube-apiserver $!" >>"$dir/pids"
  wait_for kube-apiserver "kube-apiserver /readyz" apiserver_ready
}

install_crd() {
  local kubectl=("$bin_dir/kubectl" --kubeconfig="$dir/admin.kubeconfig")
  "${kubectl[@]}" create -f "$crd_file" >/dev/null
  wait_for kube-apiserver "CRD $crd_name to be Established" \
    "${kubectl[@]}" wait --for=condition=Established --timeout=5s "crd/$crd_name" >/dev/null
}

# The garbage collector builds its graph from discovery at start-up, so it starts after the CRD
# is served and cascades to TrainJob owners from the first delete. With --secure-port=0 there is
# no health endpoint, so readiness is the log line that v1.37.2's garbage collector writes once
# its informers have synced.
start_controller_manager() {
  "${detach[@]}" "$bin_dir/kube-controller-manager" \
    --kubeconfig="$dir/admin.kubeconfig" \
    --controllers=garbage-collector-controller,namespace-controller \
    --leader-elect=false \
    --secure-port=0 \
    --use-service-account-credentials=false \
    </dev/null >>"$dir/kube-controller-manager.log" 2>&1 &
  echo "kube-controller-manager $!" >>"$dir/pids"
  wait_for kube-controller-manager "the garbage collector to sync" \
    grep -qiF 'all resource monitors have synced' "$dir/kube-controller-manager.log"
}

# Picks free ports and starts etcd and kube-apiserver on them. Another process, such as a
# cluster starting in parallel, can bind a port between the check and the bind. So a start that
# fails with "address already in use" is retried on new ports, 3 attempts in all.
start_control_plane() {
  local attempt phase
  for attempt in 1 2 3; do
    pick_port etcd_port
    pick_port etcd_peer_port
    pick_port apiserver_port
    write_state

    phase=$(now_us)
    if start_etcd; then
      log "etcd ready on 127.0.0.1:$etcd_port ($(elapsed_since "$phase") s)"
      phase=$(now_us)
      if start_apiserver; then
        log "kube-apiserver ready on https://127.0.0.1:$apiserver_port ($(elapsed_since "$phase") s)"
        return 0
      fi
    fi

    if [ "$attempt" -lt 3 ] &&
      grep -qsF 'address already in use' "$dir/etcd.log" "$dir/kube-apiserver.log"; then
      log "another process took a port; retrying on new ports (attempt $((attempt + 1)) of 3)"
      stop_all
      rm -rf "$dir/etcd"
      local component
      for component in etcd kube-apiserver; do
        [ ! -f "$dir/$component.log" ] || mv "$dir/$component.log" "$dir/$component.attempt-$attempt.log"
      done
      continue
    fi
    return 1
  done
}

# --- subcommands ----------------------------------------------------------------------------

# Sets dir to the absolute path of $1, creating it when asked to.
resolve_dir() {
  local path=$1 create=$2
  if [ "$create" = create ]; then
    mkdir -p "$path"
    chmod 700 "$path"
  fi
  dir=$(cd "$path" && pwd)
}

# On a failed start, stops what this start launched and keeps DIR with its logs.
on_start_exit() {
  local code=$?
  if [ "$code" -ne 0 ]; then
    log "start failed; stopping the processes it started (logs stay in $dir)"
    stop_all
  fi
}

cmd_start() {
  local path="" with_controller_manager=0 arg
  with_crd=1
  for arg in "$@"; do
    case $arg in
      --controller-manager) with_controller_manager=1 ;;
      --no-crd) with_crd=0 ;;
      -*) usage >&2; die "invalid option for start: $arg (the options are --controller-manager and --no-crd)" ;;
      *) [ -z "$path" ] || die "start takes one DIR, got $path and $arg"; path=$arg ;;
    esac
  done
  [ -n "$path" ] || { usage >&2; exit 2; }
  if [ -d "$path" ] && [ -n "$(ls -A "$path")" ]; then
    die "$path is not empty; start needs a missing or empty folder (a running cluster there is stopped with: $0 stop $path)"
  fi

  local total phase
  total=$(now_us)
  phase=$(now_us)
  local binaries="etcd kube-apiserver kubectl"
  [ "$with_controller_manager" = 0 ] || binaries+=" kube-controller-manager"
  bin_dir=$(K8S_BINARIES=$binaries "$here/k8s-binaries.sh")
  log "binaries in $bin_dir ($(elapsed_since "$phase") s)"

  resolve_dir "$path" create
  trap on_start_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  phase=$(now_us)
  write_tokens
  make_certificates
  log "certificates and tokens in $dir ($(elapsed_since "$phase") s)"

  start_control_plane
  for user in admin gc limited; do
    local token_var=${user}_token
    write_kubeconfig "$user" "${!token_var}"
  done

  if [ "$with_crd" = 1 ]; then
    phase=$(now_us)
    install_crd
    wait_for kube-apiserver "a list of TrainJobs to return 200" trainjobs_listable
    log "CRD $crd_name served ($(elapsed_since "$phase") s)"
  else
    log "CRD $crd_name not installed (--no-crd)"
  fi

  if [ "$with_controller_manager" = 1 ]; then
    phase=$(now_us)
    start_controller_manager
    log "kube-controller-manager ready ($(elapsed_since "$phase") s)"
  fi

  write_env
  trap - EXIT INT TERM
  log "cluster started in $(elapsed_since "$total") s; use it with: source $dir/env"
}

cmd_stop() {
  [ $# -eq 1 ] || { usage >&2; exit 2; }
  if [ ! -d "$1" ]; then
    log "$1 does not exist; nothing to stop"
    return 0
  fi
  resolve_dir "$1" keep
  if [ ! -f "$dir/state" ] && [ ! -f "$dir/pids" ]; then
    log "$dir has no cluster (no state or pids file); leaving it untouched"
    return 0
  fi
  local started
  started=$(now_us)
  stop_all
  rm -rf "$dir"
  log "cluster stopped and $dir removed in $(elapsed_since "$started") s"
}

cmd_stop_apiserver() {
  [ $# -eq 1 ] || { usage >&2; exit 2; }
  [ -d "$1" ] || die "$1 does not exist"
  resolve_dir "$1" keep
  load_state
  local pid
  pid=$(recorded_pid kube-apiserver)
  [ -z "$pid" ] || stop_pid kube-apiserver "$pid"
  forget_pid kube-apiserver
}

cmd_start_apiserver() {
  [ $# -eq 1 ] || { usage >&2; exit 2; }
  [ -d "$1" ] || die "$1 does not exist"
  resolve_dir "$1" keep
  load_state
  component_running kube-apiserver && die "kube-apiserver is already running in $dir"
  component_running etcd || die "etcd is not running in $dir; start a new cluster instead"
  forget_pid kube-apiserver

  local started
  started=$(now_us)
  start_apiserver
  # A state file without with_crd comes from a start that installed the CRD.
  if [ "${with_crd:-1}" = 1 ]; then
    wait_for kube-apiserver "a list of TrainJobs to return 200" trainjobs_listable
  fi
  log "kube-apiserver ready again on https://127.0.0.1:$apiserver_port ($(elapsed_since "$started") s)"
}

main() {
  [ $# -ge 1 ] || { usage >&2; exit 2; }
  local command=$1
  shift
  case $command in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    stop-apiserver) cmd_stop_apiserver "$@" ;;
    start-apiserver) cmd_start_apiserver "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; die "unknown subcommand: $command" ;;
  esac
}

main "$@"
