#!/usr/bin/env python3
"""Write BENCHMARKS.md and the throughput chart from the results of bench/harness.py.

Usage: bench/report.py RESULTS_JSON BENCHMARKS_MD CHART_SVG

Only the standard library is used. Every number in the output comes from RESULTS_JSON.
"""

import json
import math
import statistics
import sys
from pathlib import Path

TOOL_ORDER = ["trainjob-gc", "bare-go", "python-client", "kubectl"]
TOOL_COLORS = {"trainjob-gc": "#1f6feb", "bare-go": "#8250df", "python-client": "#bf8700", "kubectl": "#6e7781"}
MIB = 1024 * 1024

# Targets that BENCHMARKS.md reports as met or missed. The benchmark never fails on them.
TARGET_WALL_RATIO = 1.1
TARGET_THROUGHPUT_SHARE = 0.9
TARGET_RSS_MIB = 24
TARGET_RSS_SIZE = 10000
TARGET_BYTES_PER_TRAINJOB = 300
TARGET_BINARY_MIB = 15


# --- summaries ------------------------------------------------------------------------------


def summarize(runs):
    """Return medians and spreads of the runs of one tool at one size."""
    walls = [run["wall_seconds"] for run in runs]
    verbs = sorted({verb for run in runs for verb in run["requests"]})
    requests = {verb: [run["requests"].get(verb, 0) for run in runs] for verb in verbs}
    return {
        "runs": len(runs),
        "size": runs[0]["size"],
        "expired": runs[0]["expired"],
        "wall": statistics.median(walls),
        "wall_min": min(walls),
        "wall_max": max(walls),
        "rate": statistics.median(run["deletions_per_second"] for run in runs),
        "cpu": statistics.median(run["cpu_seconds"] for run in runs),
        "rss_mib": max(run["max_rss_kib"] for run in runs) / 1024,
        "server_cpu": statistics.median(run["server_cpu_seconds"] for run in runs),
        "requests": requests,
    }


def summaries_by_size(results):
    by_size = {}
    for size in results["settings"]["sizes"]:
        by_size[size] = {}
        for tool in TOOL_ORDER:
            runs = [run for run in results["runs"] if run["size"] == size and run["tool"] == tool]
            if runs:
                by_size[size][tool] = summarize(runs)
    return by_size


def count_text(values):
    """Format the per-run counts of one verb: one number when all runs agree, else a range."""
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def other_requests(summary):
    others = [
        verb for verb in summary["requests"] if verb not in ("LIST", "DELETE", "GET", "errors", "other resources")
    ]
    if not others:
        return "0"
    return ", ".join(f"{verb} {count_text(summary['requests'][verb])}" for verb in others)


def median_count(summary, verb):
    return statistics.median(summary["requests"].get(verb, [0]))


# --- markdown -------------------------------------------------------------------------------


def results_table(results, summaries):
    labels = results["labels"]
    lines = [
        "| Tool | Runs | Median wall s | Spread s (min–max) | Deletions/s | CPU s | Peak RSS MiB | LIST | DELETE | GET | Other requests | Responses ≥ 400 | Other resources | API server + etcd CPU s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|",
    ]
    for tool, s in summaries.items():
        requests = s["requests"]
        lines.append(
            f"| {labels[tool]} | {s['runs']} | {s['wall']:.2f} | {s['wall_min']:.2f}–{s['wall_max']:.2f} "
            f"| {s['rate']:.0f} | {s['cpu']:.2f} | {s['rss_mib']:.1f} "
            f"| {count_text(requests.get('LIST', [0]))} | {count_text(requests.get('DELETE', [0]))} "
            f"| {count_text(requests.get('GET', [0]))} | {other_requests(s)} "
            f"| {count_text(requests.get('errors', [0]))} | {count_text(requests.get('other resources', [0]))} "
            f"| {s['server_cpu']:.2f} |"
        )
    return lines


def ratio_table(results, by_size):
    labels = results["labels"]
    lines = [
        "| TrainJobs | Other tool | Its wall time ÷ trainjob-gc's | trainjob-gc's deletions/s ÷ its | Its CPU s ÷ trainjob-gc's | Its peak RSS ÷ trainjob-gc's |",
        "|--:|---|--:|--:|--:|--:|",
    ]
    for size, summaries in by_size.items():
        gc = summaries.get("trainjob-gc")
        if gc is None:
            continue
        for tool, s in summaries.items():
            if tool == "trainjob-gc":
                continue
            lines.append(
                f"| {size} | {labels[tool]} | {s['wall'] / gc['wall']:.2f} | {gc['rate'] / s['rate']:.2f} "
                f"| {s['cpu'] / gc['cpu']:.2f} | {s['rss_mib'] / gc['rss_mib']:.2f} |"
            )
    return lines


def dry_run_summary(results):
    rows = []
    for size in sorted({run["size"] for run in results["dry_runs"]}):
        runs = [run for run in results["dry_runs"] if run["size"] == size]
        rss = [run["max_rss_kib"] * 1024 for run in runs]
        rows.append(
            {
                "size": size,
                "runs": len(runs),
                "rss": statistics.median(rss),
                "rss_min": min(rss),
                "rss_max": max(rss),
                "wall": statistics.median(run["wall_seconds"] for run in runs),
                "list": statistics.median(run["requests"].get("LIST", 0) for run in runs),
                "delete": max(run["requests"].get("DELETE", 0) for run in runs),
            }
        )
    return rows


def bytes_per_trainjob(rows):
    """Return the growth of the median peak RSS per TrainJob between the smallest and largest size."""
    if len(rows) < 2:
        return None
    first, last = rows[0], rows[-1]
    return (last["rss"] - first["rss"]) / (last["size"] - first["size"])


def dry_run_table(rows):
    lines = [
        "| TrainJobs | Runs | Median peak RSS MiB | Spread MiB (min–max) | Median wall s | LIST | DELETE |",
        "|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['size']} | {row['runs']} | {row['rss'] / MIB:.1f} | {row['rss_min'] / MIB:.1f}–{row['rss_max'] / MIB:.1f} "
            f"| {row['wall']:.2f} | {row['list']:.0f} | {row['delete']} |"
        )
    return lines


def paired_wall_ratio(results, size):
    """Return the median over repetitions of trainjob-gc's wall time over the bare client's.

    The two run one after the other in each repetition, so this ratio is less affected than
    the ratio of medians when the load on the machine changes during the benchmark.
    """
    walls = {}
    for run in results["runs"]:
        if run["size"] == size and run["tool"] in ("trainjob-gc", "bare-go"):
            walls.setdefault(run["repetition"], {})[run["tool"]] = run["wall_seconds"]
    ratios = [pair["trainjob-gc"] / pair["bare-go"] for pair in walls.values() if len(pair) == 2]
    return statistics.median(ratios) if ratios else None


def verdict(met):
    return "met" if met else "**missed**"


def targets_table(results, by_size, dry_rows):
    page_size = results["settings"]["page_size"]
    lines = ["| Target | Measured | Result |", "|---|---|---|"]
    for size, summaries in by_size.items():
        gc, bare = summaries.get("trainjob-gc"), summaries.get("bare-go")
        if gc is None:
            continue
        if bare is not None:
            wall_ratio = gc["wall"] / bare["wall"]
            share = gc["rate"] / bare["rate"]
            paired = paired_wall_ratio(results, size)
            paired_text = f"; paired by repetition {paired:.2f}×" if paired is not None else ""
            lines.append(
                f"| {size}: median wall ≤ {TARGET_WALL_RATIO}× the bare client's | "
                f"{gc['wall']:.2f} s against {bare['wall']:.2f} s ({wall_ratio:.2f}×{paired_text}) "
                f"| {verdict(wall_ratio <= TARGET_WALL_RATIO)} |"
            )
            lines.append(
                f"| {size}: deletions/s ≥ {TARGET_THROUGHPUT_SHARE:.0%} of the bare client's | "
                f"{gc['rate']:.0f} against {bare['rate']:.0f} ({share:.0%}) | {verdict(share >= TARGET_THROUGHPUT_SHARE)} |"
            )
        lists = gc["requests"].get("LIST", [0])
        deletes = gc["requests"].get("DELETE", [0])
        expected_lists = math.ceil(size / page_size)
        lines.append(
            f"| {size}: LIST requests = ⌈{size}/{page_size}⌉ = {expected_lists} | {count_text(lists)} in each run "
            f"| {verdict(min(lists) == max(lists) == expected_lists)} |"
        )
        lines.append(
            f"| {size}: one DELETE per expired TrainJob = {gc['expired']} | {count_text(deletes)} in each run "
            f"| {verdict(min(deletes) == max(deletes) == gc['expired'])} |"
        )
    rss_size = TARGET_RSS_SIZE if TARGET_RSS_SIZE in by_size else max(by_size)
    gc = by_size[rss_size].get("trainjob-gc")
    if gc is not None:
        lines.append(
            f"| peak RSS ≤ {TARGET_RSS_MIB} MiB at {rss_size} TrainJobs (highest of all runs) | {gc['rss_mib']:.1f} MiB "
            f"| {verdict(gc['rss_mib'] <= TARGET_RSS_MIB)} |"
        )
    per_trainjob = bytes_per_trainjob(dry_rows)
    if per_trainjob is not None:
        lines.append(
            f"| dry-run RSS growth ≤ {TARGET_BYTES_PER_TRAINJOB} bytes per TrainJob from {dry_rows[0]['size']} to "
            f"{dry_rows[-1]['size']} | {per_trainjob:.0f} bytes | {verdict(per_trainjob <= TARGET_BYTES_PER_TRAINJOB)} |"
        )
    binary_mib = results["binary_bytes"] / MIB
    lines.append(
        f"| release binary ≤ {TARGET_BINARY_MIB} MiB | {binary_mib:.2f} MiB ({results['binary_bytes']} bytes) "
        f"| {verdict(binary_mib <= TARGET_BINARY_MIB)} |"
    )
    return lines


def header_section(results, chart_name):
    return [
        "# Benchmarks",
        "",
        "How fast trainjob-gc deletes expired TrainJobs, what it costs in CPU, memory and API",
        "requests, and how that compares with three other ways of doing the same job. Every number",
        f"below comes from one run of `make bench` that started at {results['started']} and took",
        f"{results['minutes']} minutes. `bench/run.sh` generated this file and [the chart]({chart_name}).",
        "Run it again to replace both.",
        "",
    ]


def targets_section(results, by_size, dry_rows):
    lines = [
        "## Targets",
        "",
        "The benchmark reports these targets and never fails on them. A target on wall time is judged",
        "on the ratio of the medians. The ratio paired by repetition is the median of trainjob-gc's",
        "wall time over the bare client's in the same repetition, where the two ran one after the other.",
        "",
    ]
    return lines + targets_table(results, by_size, dry_rows) + [""]


def setup_section(results):
    settings = results["settings"]
    machine = results["machine"]
    kubectl_sizes = ", ".join(str(size) for size in settings["kubectl_sizes"])
    loads = [run["load_average"] for run in results["runs"] + results["dry_runs"]]
    low_load, high_load = min(loads), max(loads)
    lines = [
        "## Setup",
        "",
        f"- Machine: {machine['cores']} cores ({machine['cpu_model']}), {machine['memory_gib']} GiB of memory,",
        f"  Linux {machine['kernel']}. etcd, kube-apiserver and the tool under test share these cores.",
        f"  The load average (1, 5, 15 min) was {machine['load_before']} when the benchmark started and",
        f"  {machine['load_after']} when it ended. At the start of each tool run the 1-minute load average,",
        f"  which includes the seeding just before, was between {low_load:.1f} and {high_load:.1f}.",
        "- Cluster: `hack/with-cluster.sh` starts etcd (with `--unsafe-no-fsync`) and kube-apiserver on",
        "  127.0.0.1 with the TrainJob CRD from `tests/fixtures/`. Every tool authenticates as the admin",
        "  user, so RBAC never rejects a request.",
        "- Data: before each run the harness deletes every TrainJob (one deletecollection per",
        f"  namespace) and creates a fresh set over {settings['seed_namespaces']} namespaces, with",
        f"  {settings['seed_workers']} concurrent creators, each TrainJob with a POST and then a PATCH of its",
        "  status subresource. Half of the set is running. The other half is finished: a True `Complete`",
        "  condition (`Failed` for every fourth of them) whose `lastTransitionTime` is the TrainJob's",
        f"  `creationTimestamp`. Every tool runs with a TTL of {settings['ttl_seconds']} s, and the harness starts it",
        "  once the last finished TrainJob is past that TTL, so each tool has to delete exactly the",
        "  finished half. The finish cannot be dated earlier, because kube-apiserver sets",
        "  `creationTimestamp` itself and trainjob-gc does not trust a finish time before it. The",
        "  TTL does not change the work: each tool lists, filters and deletes the same TrainJobs as",
        "  with a TTL of hours. After each run the harness lists the TrainJobs left and stops with an",
        "  error when they are not exactly the running half.",
        f"- Repetitions: each tool ran {settings['repeat']} times at each size, except the kubectl loop, which",
        f"  ran once, and only at {kubectl_sizes} TrainJobs. The runs of the tools alternate, so a slow",
        "  period of the machine does not fall on one tool only.",
        "",
        "| Component | Version |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value} |" for name, value in results["versions"].items()]
    return lines + [""]


def results_sections(results, by_size, chart_name):
    lines = []
    for size, summaries in by_size.items():
        expired = next(iter(summaries.values()))["expired"]
        lines += [f"## {size} TrainJobs, {expired} expired", ""]
        lines += results_table(results, summaries)
        lines.append("")
    lines += ["## trainjob-gc against the other tools", "", "A ratio above 1 is in trainjob-gc's favour.", ""]
    lines += ratio_table(results, by_size)
    lines += ["", f"![Deletions per second by tool and size]({chart_name})", ""]
    return lines


def dry_run_section(results, dry_rows):
    lines = [
        "## Memory in dry-run",
        "",
        f"trainjob-gc with `TRAINJOB_GC_DRY_RUN=true`, {results['settings']['repeat']} runs at each size. The",
        "larger set extends the smaller one, so both runs list the same first TrainJobs:",
        "",
        "```sh",
        results["dry_run_command"],
        "```",
        "",
    ]
    lines += dry_run_table(dry_rows)
    lines.append("")
    per_trainjob = bytes_per_trainjob(dry_rows)
    if per_trainjob is not None:
        growth_mib = (dry_rows[-1]["rss"] - dry_rows[0]["rss"]) / MIB
        lines.append(
            f"From {dry_rows[0]['size']} to {dry_rows[-1]['size']} TrainJobs the median peak RSS grew by "
            f"{growth_mib:.1f} MiB, {per_trainjob:.0f} bytes per TrainJob."
        )
    for seed in results.get("dry_run_seeds", []):
        lines.append(
            f"Seeding TrainJobs {seed['from']} to {seed['to'] - 1} took {seed['seconds']:.0f} s "
            f"({seed['per_second']:.0f} per second)."
        )
    return lines + [""]


def binary_section(results):
    return [
        "## Binary size",
        "",
        "`target/release/trainjob-gc` (stripped, as `cargo build --release --locked` builds it):",
        f"{results['binary_bytes']} bytes, {results['binary_bytes'] / MIB:.2f} MiB.",
        "",
    ]


def method_section():
    return [
        "## What was measured",
        "",
        "- **Wall time**: from the start of the tool's process to its exit, including start-up and",
        "  reading the kubeconfig. The tables show the median and the lowest and highest run.",
        "- **Deletions/s**: TrainJobs deleted divided by wall time, median of the runs.",
        "- **CPU s**: user plus system time of the tool's process and all the processes it waited for",
        "  (each kubectl and jq of the shell loop), as GNU time reports it from `wait4`, median of the runs.",
        "- **Peak RSS**: the maximum resident set size from the same `wait4` call, the highest of the",
        "  runs. For the shell loop it is that of its largest single process, not the sum.",
        '- **Requests**: kube-apiserver\'s own `apiserver_request_total` for `resource="trainjobs"`,',
        "  read from `/metrics` with the admin token before and after each run, by verb. The tools do",
        "  not count them. A range means the runs differed. `kubectl delete` waits until the object",
        "  is gone by reading it again, so each of its deletions also shows up as a GET that returns",
        "  404, counted under responses ≥ 400. Other requests are other verbs on TrainJobs. Other",
        "  resources counts requests for anything else during the run, such as the two",
        "  SelfSubjectAccessReviews with which trainjob-gc checks its permissions. It leaves out the",
        "  leases that kube-apiserver renews for itself and paths that are not resources, such as",
        "  discovery. It still includes a few requests of the API server's own background work, which",
        "  is why the bare client, which sends none, can show 1 to 3 in a run of 10 s or more.",
        "- **API server + etcd CPU s**: the CPU time those two processes used during the run, from",
        "  `/proc/PID/stat`, median of the runs.",
        "",
    ]


def commands_section(results):
    lines = [
        "## Commands",
        "",
        "```sh",
        "make bench                                     # bench/run.sh: build, start a cluster, measure, write this file",
        'BENCH_SIZES="300" BENCH_REPEAT=1 bench/run.sh  # a quick look at other sizes and repetitions',
        "bench/run.sh --small                           # the check for make test: no timing, no file written",
        "```",
        "",
        "Each run of a tool executed one of these commands from the repository root, with the",
        "`TEST_*` variables that `hack/with-cluster.sh` exports:",
        "",
    ]
    for tool in TOOL_ORDER:
        if tool in results["commands"]:
            lines += [f"- {results['labels'][tool]}:", "", "  ```sh", f"  {results['commands'][tool]}", "  ```", ""]
    lines += [
        "The bare Go client (`bench/cmd/bareclient`) uses only Go's standard library. It sends the",
        "same requests as trainjob-gc, with no retries, rate limit, logs or report, and starts deleting",
        "while it still lists later pages. Its numbers are what the API server allows on this machine.",
        "The Python client deletes one TrainJob after another, as a plain script does. Both send",
        "`propagationPolicy: Background` and preconditions on uid and resourceVersion, as trainjob-gc",
        "does. The kubectl loop sends neither, because `kubectl delete` has no flag for preconditions.",
        "",
    ]
    return lines


def write_markdown(results, by_size, chart_name):
    dry_rows = dry_run_summary(results)
    lines = header_section(results, chart_name)
    lines += targets_section(results, by_size, dry_rows)
    lines += setup_section(results)
    lines += results_sections(results, by_size, chart_name)
    lines += dry_run_section(results, dry_rows)
    lines += binary_section(results)
    lines += method_section()
    lines += commands_section(results)
    return "\n".join(lines).rstrip("\n") + "\n"


# --- chart ----------------------------------------------------------------------------------


def escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_chart(results, by_size):
    """Return an SVG bar chart of the median deletions per second, grouped by size, on a log scale."""
    width, height = 760, 400
    left, right, top, bottom = 70, 20, 50, 80
    plot_width, plot_height = width - left - right, height - top - bottom
    rates = [s["rate"] for summaries in by_size.values() for s in summaries.values() if s["rate"] > 0]
    # The axis starts a decade lower when the slowest bar would barely rise above it.
    low_exponent = math.floor(math.log10(min(rates) / 2)) if rates else 0
    high_exponent = math.ceil(math.log10(max(rates))) if rates else 1
    if high_exponent == low_exponent:
        high_exponent += 1

    def y_of(value):
        fraction = (math.log10(value) - low_exponent) / (high_exponent - low_exponent)
        return top + plot_height * (1 - fraction)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="24" text-anchor="middle" font-size="15">'
        "Expired TrainJobs deleted per second (median of the runs, log scale)</text>",
    ]
    for exponent in range(low_exponent, high_exponent + 1):
        y = y_of(10**exponent)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#d0d7de"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{10**exponent:g}</text>')

    group_width = plot_width / max(len(by_size), 1)
    bar_width = min(60, group_width / (len(TOOL_ORDER) + 1))
    for group, (size, summaries) in enumerate(by_size.items()):
        tools = [tool for tool in TOOL_ORDER if tool in summaries]
        start = left + group * group_width + (group_width - bar_width * len(tools)) / 2
        for index, tool in enumerate(tools):
            rate = summaries[tool]["rate"]
            x = start + index * bar_width
            y = y_of(max(rate, 10**low_exponent))
            parts.append(
                f'<rect x="{x + 3:.1f}" y="{y:.1f}" width="{bar_width - 6:.1f}" height="{top + plot_height - y:.1f}" '
                f'fill="{TOOL_COLORS[tool]}"><title>{escape(results["labels"][tool])}: {rate:.0f}/s</title></rect>'
            )
            parts.append(f'<text x="{x + bar_width / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{rate:.0f}</text>')
        label_x = left + group * group_width + group_width / 2
        parts.append(
            f'<text x="{label_x:.1f}" y="{top + plot_height + 18}" text-anchor="middle">{size} TrainJobs</text>'
        )
    parts.append(f'<line x1="{left}" y1="{top + plot_height}" x2="{width - right}" y2="{top + plot_height}" stroke="#57606a"/>')

    legend_x = left
    for tool in TOOL_ORDER:
        if tool not in results["labels"]:
            continue
        parts.append(f'<rect x="{legend_x}" y="{height - 30}" width="12" height="12" fill="{TOOL_COLORS[tool]}"/>')
        label = escape(results["labels"][tool])
        parts.append(f'<text x="{legend_x + 17}" y="{height - 20}">{label}</text>')
        legend_x += 30 + 7 * len(results["labels"][tool])
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    if len(sys.argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    results_path, markdown_path, chart_path = (Path(argument) for argument in sys.argv[1:])
    results = json.loads(results_path.read_text())
    by_size = summaries_by_size(results)
    chart_path.write_text(write_chart(results, by_size))
    chart_name = Path(chart_path).resolve().relative_to(Path(markdown_path).resolve().parent)
    markdown_path.write_text(write_markdown(results, by_size, chart_name.as_posix()))
    print(f"wrote {markdown_path} and {chart_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
