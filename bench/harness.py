#!/usr/bin/env python3
"""Measure trainjob-gc and three other ways of deleting expired TrainJobs on a local API server.

bench/run.sh starts this under hack/with-cluster.sh, which exports TEST_APISERVER_URL,
TEST_CA_FILE, TEST_ADMIN_TOKEN, TEST_KUBECONFIG, TEST_KUBECTL, TEST_BIN_DIR and
TEST_CLUSTER_DIR. Before each tool run the harness deletes every TrainJob and seeds a fresh,
identical set: half finished, half running. It waits until the TTL of the last finished
TrainJob has run out, then runs the tool, measures it and checks that exactly the finished half
is gone. A mismatch ends the benchmark with exit code 1.

The API requests of a run are counted by kube-apiserver itself: the harness reads
apiserver_request_total for the trainjobs resource from /metrics before and after the run.
Only the standard library is used, so the harness runs on any Python 3.9 or later.
"""

import argparse
import datetime
import json
import os
import re
import shlex
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Settings shared by every tool, so that they do the same work. The TTL is short because a
# seeded TrainJob finishes at its creation: see bench/cmd/seed.
TTL_SECONDS = 1
CONCURRENCY = 16
PAGE_SIZE = 500

# The environment of every real trainjob-gc run. QPS and BURST are high enough that the
# client-side rate limit never delays a request, so the run is bound by the API server alone.
# BENCHMARKS.md prints these settings with the numbers they produced.
GC_SETTINGS = {
    "TRAINJOB_GC_POLICY": "ttl",
    "TRAINJOB_GC_TTL": f"{TTL_SECONDS}s",
    "TRAINJOB_GC_DRY_RUN": "false",
    "TRAINJOB_GC_CONCURRENCY": str(CONCURRENCY),
    "TRAINJOB_GC_QPS": "1000",
    "TRAINJOB_GC_BURST": "1000",
    "TRAINJOB_GC_PAGE_SIZE": str(PAGE_SIZE),
    "TRAINJOB_GC_LOG_FORMAT": "json",
}

SEED_WORKERS = 48
SEED_NAMESPACES = 8
TOOL_TIMEOUT_SECONDS = 30 * 60
GNU_TIME = "/usr/bin/time"
TRAINJOBS_PATH = "/apis/trainer.kubeflow.org/v1alpha1/trainjobs"


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- the API server -------------------------------------------------------------------------


class Cluster:
    """Read access to the API server that hack/with-cluster.sh started, as its admin user."""

    def __init__(self):
        self.url = os.environ["TEST_APISERVER_URL"]
        self.token = os.environ["TEST_ADMIN_TOKEN"]
        self.tls = ssl.create_default_context(cafile=os.environ["TEST_CA_FILE"])
        self.cluster_dir = Path(os.environ["TEST_CLUSTER_DIR"])

    def get(self, path):
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        )
        with urllib.request.urlopen(request, context=self.tls, timeout=120) as response:
            return response.read()

    def request_counts(self):
        """Return apiserver_request_total for trainjobs, summed by verb (and subresource).

        A DELETE on a namespace's collection is counted as DELETECOLLECTION. Responses with a
        status code of 400 or more are also counted under "errors". Requests for any other
        resource are summed under "other resources", except leases, which kube-apiserver updates
        for itself every few seconds. Non-resource paths such as discovery are not counted.
        """
        counts = {}
        label_pattern = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
        for line in self.get("/metrics").decode().splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
            labels = dict(label_pattern.findall(labels_text))
            if labels.get("resource") != "trainjobs":
                if labels.get("resource") not in ("", "leases"):
                    counts["other resources"] = counts.get("other resources", 0) + int(float(value))
                continue
            verb = labels["verb"]
            if verb == "DELETE" and labels.get("scope") == "namespace":
                verb = "DELETECOLLECTION"
            if labels.get("subresource"):
                verb += " " + labels["subresource"]
            number = int(float(value))
            counts[verb] = counts.get(verb, 0) + number
            if int(labels.get("code", "0")) >= 400:
                counts["errors"] = counts.get("errors", 0) + number
        return counts

    def server_cpu_seconds(self):
        """Return the CPU time (user + system) that etcd and kube-apiserver have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for line in (self.cluster_dir / "pids").read_text().splitlines():
            name, _, pid = line.partition(" ")
            if name not in ("etcd", "kube-apiserver"):
                continue
            stat = Path(f"/proc/{pid.strip()}/stat").read_text()
            fields = stat.rpartition(")")[2].split()
            # utime and stime are fields 14 and 15 of /proc/PID/stat, counted from 1.
            total += int(fields[11]) + int(fields[12])
        return total / ticks

    def trainjob_names(self):
        """Return the set of (namespace, name) of every TrainJob, listed in pages."""
        names = set()
        continue_token = ""
        while True:
            query = {"limit": "500"}
            if continue_token:
                query["continue"] = continue_token
            page = json.loads(self.get(TRAINJOBS_PATH + "?" + urllib.parse.urlencode(query)))
            for item in page["items"]:
                names.add((item["metadata"]["namespace"], item["metadata"]["name"]))
            continue_token = page["metadata"].get("continue", "")
            if not continue_token:
                return names


def subtract_counts(after, before):
    return {verb: after[verb] - before.get(verb, 0) for verb in after if after[verb] != before.get(verb, 0)}


# --- seeding --------------------------------------------------------------------------------


@dataclass
class SeededSet:
    """The TrainJobs that the seeder created, as (namespace, name) pairs."""

    finished: set = field(default_factory=set)
    running: set = field(default_factory=set)

    @property
    def size(self):
        return len(self.finished) + len(self.running)


class Seeder:
    """Creates and deletes TrainJobs with the Go program bench/cmd/seed."""

    def __init__(self, binary, work_dir):
        self.binary = binary
        self.manifest = work_dir / "manifest.txt"

    def clear(self):
        subprocess.run([self.binary, "clear"], check=True, stdout=subprocess.DEVNULL)
        self.manifest.unlink(missing_ok=True)

    def create(self, first, count):
        """Create TrainJobs first .. first+count-1 and wait until every finished one is expired.

        Returns the seeder's summary: created, seconds, per_second and last_finished.
        """
        output = subprocess.run(
            [
                self.binary, "create",
                "-from", str(first),
                "-count", str(count),
                "-namespaces", str(SEED_NAMESPACES),
                "-workers", str(SEED_WORKERS),
                "-manifest", str(self.manifest),
            ],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        summary = json.loads(output.strip().splitlines()[-1])
        if summary["last_finished"]:
            last_finished = datetime.datetime.fromisoformat(summary["last_finished"].replace("Z", "+00:00"))
            # One second more, because the finish times are cut to whole seconds.
            expired_at = last_finished.timestamp() + TTL_SECONDS + 1
            time.sleep(max(0.0, expired_at - time.time()))
        return summary

    def reseed(self, size):
        """Delete every TrainJob, then create a fresh set of the given size."""
        self.clear()
        self.create(0, size)
        return self.read_manifest()

    def read_manifest(self):
        seeded = SeededSet()
        for line in self.manifest.read_text().splitlines():
            namespace, name, state = line.split()
            (seeded.finished if state == "finished" else seeded.running).add((namespace, name))
        return seeded


# --- the tools ------------------------------------------------------------------------------


@dataclass
class Tool:
    """A program under test. Environment values may name the TEST_* variables as $NAME."""

    key: str
    label: str
    argv: list
    env: dict

    def display_command(self):
        assignments = [f"{name}={value}" for name, value in self.env.items()]
        return " ".join(assignments + [shlex.join(self.argv)])


def make_tools(args, dry_run=False):
    """Return the tools by key, in the order they run within a repetition.

    The bare client runs right after trainjob-gc, so that the two runs compared most closely
    are also the closest in time.
    """
    gc_env = {"KUBECONFIG": "$TEST_KUBECONFIG", **GC_SETTINGS}
    if dry_run:
        gc_env["TRAINJOB_GC_DRY_RUN"] = "true"
    return {
        "trainjob-gc": Tool("trainjob-gc", "trainjob-gc", [args.gc_binary], gc_env),
        "bare-go": Tool(
            "bare-go",
            "bare Go HTTP client",
            [
                f"{args.bin_dir}/bareclient",
                "-concurrency", str(CONCURRENCY),
                "-page-size", str(PAGE_SIZE),
                "-ttl", f"{TTL_SECONDS}s",
            ],
            {},
        ),
        "python-client": Tool(
            "python-client",
            "Python kubernetes client",
            [
                args.python, "bench/alternatives/python_client.py",
                "--ttl-seconds", str(TTL_SECONDS),
                "--page-size", str(PAGE_SIZE),
            ],
            {"KUBECONFIG": "$TEST_KUBECONFIG"},
        ),
        "kubectl": Tool(
            "kubectl",
            "kubectl + jq loop",
            ["bench/alternatives/kubectl-loop.sh"],
            {
                "KUBECONFIG": "$TEST_KUBECONFIG",
                "KUBECTL": "$TEST_KUBECTL",
                "KUBECACHEDIR": "bench/out/kubectl-cache",
                "TTL_SECONDS": str(TTL_SECONDS),
            },
        ),
    }


@dataclass
class Measurement:
    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    max_rss_kib: int


def measure(tool, log_path):
    """Run a tool to its end under GNU time and measure it.

    GNU time reports the rusage that wait4 returns. Its CPU time covers the process and every
    descendant it waited for, so the kubectl loop's includes each kubectl and jq. Its peak RSS
    is that of the largest of those processes. Linux carries the peak RSS of a parent over to
    its child through fork and exec, so a tool started straight from this script could never
    show less than this script's own RSS. GNU time, the parent here, uses about 1 MiB.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith("TRAINJOB_GC_")}
    env.update({name: os.path.expandvars(value) for name, value in tool.env.items()})
    usage_path = log_path.with_suffix(".time")
    argv = [GNU_TIME, "--format", "%x %U %S %M", "--output", str(usage_path), *tool.argv]
    with open(log_path, "wb") as output:
        started = time.monotonic()
        # A session of its own lets a timeout kill the tool's whole process group.
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            process.wait(timeout=TOOL_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        wall = time.monotonic() - started
    # Before the format, GNU time writes a line such as "Command exited with non-zero status 1".
    lines = usage_path.read_text().splitlines() if usage_path.exists() else []
    if not lines or len(lines[-1].split()) != 4:
        return Measurement(exit_code=process.returncode or 1, wall_seconds=wall, cpu_seconds=0.0, max_rss_kib=0)
    exit_code, user, system, max_rss_kib = lines[-1].split()
    return Measurement(
        exit_code=int(exit_code),
        wall_seconds=wall,
        cpu_seconds=float(user) + float(system),
        max_rss_kib=int(max_rss_kib),
    )


def describe_mismatch(remaining, expected):
    """Return a message for a remaining set that differs from the expected one, or None."""
    if remaining == expected:
        return None
    left = sorted(remaining - expected)
    missing = sorted(expected - remaining)
    parts = []
    if left:
        parts.append(f"{len(left)} TrainJobs that should be gone are left, such as {left[:3]}")
    if missing:
        parts.append(f"{len(missing)} TrainJobs that should be kept are gone, such as {missing[:3]}")
    return "; ".join(parts)


def run_tool(cluster, tool, seeded, log_path, expected_left):
    """Run one tool on the seeded set and return its record, whose "problem" is None on success."""
    load = os.getloadavg()[0]
    requests_before = cluster.request_counts()
    server_cpu_before = cluster.server_cpu_seconds()
    result = measure(tool, log_path)
    server_cpu = cluster.server_cpu_seconds() - server_cpu_before
    requests = subtract_counts(cluster.request_counts(), requests_before)

    remaining = cluster.trainjob_names()
    problem = describe_mismatch(remaining, expected_left)
    if result.exit_code != 0:
        problem = f"exited with {result.exit_code} (output in {log_path})" + (f"; {problem}" if problem else "")
    deleted = seeded.size - len(remaining)
    return {
        "tool": tool.key,
        "size": seeded.size,
        "expired": len(seeded.finished),
        "deleted": deleted,
        "exit_code": result.exit_code,
        "wall_seconds": result.wall_seconds,
        "deletions_per_second": deleted / result.wall_seconds if result.wall_seconds > 0 else 0.0,
        "cpu_seconds": result.cpu_seconds,
        "max_rss_kib": result.max_rss_kib,
        "server_cpu_seconds": server_cpu,
        "load_average": load,
        "requests": requests,
        "problem": problem,
        "log": str(log_path.relative_to(REPO)),
    }


# --- the runs -------------------------------------------------------------------------------


def run_comparison(args, cluster, seeder, tools, work_dir):
    """Run every tool on every size, reseeding before each run. Return the records."""
    records = []
    for size in args.sizes:
        for repetition in range(1, args.repeat + 1):
            for tool in tools.values():
                if tool.key == "kubectl" and (repetition > 1 or size not in args.kubectl_sizes):
                    continue
                seeded = seeder.reseed(size)
                log_path = work_dir / f"{tool.key}-{size}-{repetition}.log"
                record = run_tool(cluster, tool, seeded, log_path, expected_left=seeded.running)
                record["repetition"] = repetition
                records.append(record)
                outcome = record["problem"] or "ok"
                if not args.small:
                    log(
                        f"{size} {tool.key} {repetition}/{args.repeat}: {record['wall_seconds']:.2f} s, "
                        f"{record['deletions_per_second']:.0f} deletions/s, "
                        f"{record['max_rss_kib'] / 1024:.1f} MiB, {outcome}"
                    )
                if record["problem"] and not args.small:
                    raise SystemExit(f"[bench] {tool.key} at {size}: {record['problem']}")
    return records


def run_dry_runs(args, cluster, seeder, work_dir):
    """Measure trainjob-gc in dry-run on growing sets; each size extends the set of the last."""
    tool = make_tools(args, dry_run=True)["trainjob-gc"]
    records = []
    seeds = []
    seeder.clear()
    seeded_count = 0
    for size in sorted(args.dry_run_sizes):
        seed = seeder.create(seeded_count, size - seeded_count)
        seeds.append({"from": seeded_count, "to": size, **seed})
        log(f"seeded TrainJobs {seeded_count}..{size - 1} at {seed['per_second']:.0f}/s")
        seeded_count = size
        seeded = seeder.read_manifest()
        everything = seeded.finished | seeded.running
        for repetition in range(1, args.repeat + 1):
            log_path = work_dir / f"trainjob-gc-dry-run-{size}-{repetition}.log"
            record = run_tool(cluster, tool, seeded, log_path, expected_left=everything)
            record["repetition"] = repetition
            records.append(record)
            log(
                f"dry-run {size} {repetition}/{args.repeat}: {record['max_rss_kib'] / 1024:.1f} MiB, "
                f"{record['wall_seconds']:.2f} s, {record['problem'] or 'ok'}"
            )
            if record["problem"]:
                raise SystemExit(f"[bench] trainjob-gc dry-run at {size}: {record['problem']}")
    return records, seeds


# --- the environment ------------------------------------------------------------------------


def command_output(argv):
    try:
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        return f"unknown ({error})"


def describe_machine():
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kib / 1024 / 1024, 1),
        "cpu_model": model,
        "kernel": os.uname().release,
        "load_after": " ".join(f"{load:.2f}" for load in os.getloadavg()),
    }


def describe_versions(args):
    bin_dir = os.environ["TEST_BIN_DIR"]
    source_state = command_output(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"])
    return {
        "trainjob-gc": command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
        + (" with uncommitted changes in src/" if source_state else ""),
        "kube-apiserver": command_output([f"{bin_dir}/kube-apiserver", "--version"]),
        "etcd": command_output([f"{bin_dir}/etcd", "--version"]).splitlines()[0],
        "kubectl": command_output([os.environ["TEST_KUBECTL"], "version", "--client"]).splitlines()[0],
        "jq": command_output(["jq", "--version"]),
        "rustc": command_output(["rustc", "--version"]),
        "go": command_output(["go", "version"]),
        "python": command_output([args.python, "--version"]),
        "kubernetes (PyPI)": command_output([args.python, "-c", "import kubernetes; print(kubernetes.__version__)"]),
    }


# --- main -----------------------------------------------------------------------------------


def parse_sizes(text):
    return [int(word) for word in text.replace(",", " ").split()]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="only check that each tool but kubectl deletes exactly the expired set")
    parser.add_argument("--sizes", type=parse_sizes, default=[2000, 10000], help="TrainJobs per set, e.g. '2000 10000'")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each tool at each size")
    parser.add_argument("--kubectl-sizes", type=parse_sizes, default=[2000], help="sizes at which the kubectl loop runs, once")
    parser.add_argument("--dry-run-sizes", type=parse_sizes, default=[5000, 50000], help="sizes of the dry-run memory runs")
    parser.add_argument("--gc-binary", default="target/release/trainjob-gc", help="trainjob-gc binary, relative to the repository")
    parser.add_argument("--python", default="bench/out/venv/bin/python", help="Python of the venv with the kubernetes package")
    parser.add_argument("--bin-dir", default="bench/out/bin", help="folder of the seed and bareclient binaries")
    parser.add_argument("--results", default="bench/out/results.json", help="JSON file the results are written to")
    args = parser.parse_args()
    if args.repeat < 1 or not args.sizes or min(args.sizes) < 2:
        parser.error("--repeat must be at least 1 and every size at least 2")
    return args


def run_small(args, cluster, seeder, work_dir):
    tools = make_tools(args)
    del tools["kubectl"]
    args.repeat = 1
    records = run_comparison(args, cluster, seeder, tools, work_dir)
    failed = 0
    for record in records:
        if record["problem"]:
            failed += 1
            print(f"FAIL {record['tool']}: {record['problem']}")
        else:
            print(
                f"ok   {record['tool']}: deleted the {record['deleted']} expired of {record['size']} TrainJobs "
                f"in {record['wall_seconds']:.2f} s"
            )
    print(f"bench-small: {len(records) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main():
    args = parse_args()
    os.chdir(REPO)
    work_dir = REPO / "bench" / "out" / "runs"
    work_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster()
    seeder = Seeder(f"{args.bin_dir}/seed", work_dir)

    if args.small:
        return run_small(args, cluster, seeder, work_dir)

    started = time.time()
    load_before = " ".join(f"{load:.2f}" for load in os.getloadavg())
    tools = make_tools(args)
    records = run_comparison(args, cluster, seeder, tools, work_dir)
    dry_runs, dry_run_seeds = run_dry_runs(args, cluster, seeder, work_dir)
    results = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "minutes": round((time.time() - started) / 60, 1),
        "machine": {**describe_machine(), "load_before": load_before},
        "versions": describe_versions(args),
        "settings": {
            "ttl_seconds": TTL_SECONDS,
            "concurrency": CONCURRENCY,
            "page_size": PAGE_SIZE,
            "seed_workers": SEED_WORKERS,
            "seed_namespaces": SEED_NAMESPACES,
            "repeat": args.repeat,
            "sizes": args.sizes,
            "kubectl_sizes": args.kubectl_sizes,
        },
        "commands": {key: tool.display_command() for key, tool in tools.items()},
        "dry_run_command": make_tools(args, dry_run=True)["trainjob-gc"].display_command(),
        "labels": {key: tool.label for key, tool in tools.items()},
        "binary_bytes": (REPO / args.gc_binary).stat().st_size,
        "runs": records,
        "dry_runs": dry_runs,
        "dry_run_seeds": dry_run_seeds,
    }
    Path(args.results).write_text(json.dumps(results, indent=1) + "\n")
    log(f"results in {args.results} after {results['minutes']} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
