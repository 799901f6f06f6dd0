#!/usr/bin/env python3
"""Turns the raw figures of `scripts/bench` into its one table, and judges them.

Reads what the script left in its results directory (hyperfine JSON exports, the
`/usr/bin/time` counts, the cold start figures, binary sizes), the corpus manifest
(bytes and planted alerts) and criterion's estimates; prints Markdown: the machine,
the command, the targets table (target, measured, baseline, ratio, pass/fail) and
the details behind it. Exit status 1 when a target fails; with --quick 1, only the
alert counts are judged and only they are in the targets table (a dev-profile build on
tiny inputs gives timings and sizes that mean nothing next to release targets); the
figures below the table are then headed as smoke figures.

It measures nothing itself and never re-runs a command.
"""

import argparse
import glob
import json
import os
import platform
import subprocess
import sys

MIB = 1024 * 1024


def load(path):
    with open(path) as f:
        return json.load(f)


def hyperfine(path):
    """name -> median seconds (and the whole result, for details)."""
    return {r["command"]: r for r in load(path)["results"]}


def counted(results, name):
    """(alerts, seconds, peak kB, exit status) of one `counted` run of scripts/bench."""
    with open(os.path.join(results, f"count-{name}.txt")) as f:
        alerts, seconds, peak_kb, status = f.read().split()
    return int(alerts), float(seconds), int(peak_kb), int(status)


def criterion_medians(root, group):
    """full id -> median ns, for every benchmark of `group` criterion has results for."""
    medians = {}
    pattern = os.path.join(root, group, "**", "new", "benchmark.json")
    for bench in glob.glob(pattern, recursive=True):
        estimates = os.path.join(os.path.dirname(bench), "estimates.json")
        if os.path.exists(estimates):
            medians[load(bench)["full_id"]] = load(estimates)["median"]["point_estimate"]
    return medians


def gbps(nbytes, seconds):
    return nbytes / 1e9 / seconds


def cpu(result):
    """CPU seconds (user + system, mean of the runs): what one core spends, whatever else the
    machine is doing. Single-process, single-threaded comparisons use it; wall time is shown too."""
    return result["user"] + result["system"]


def machine():
    lines = []
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines()
                      if l.startswith("Model name")), platform.processor())
    except OSError:
        model = platform.processor()
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
        mem = f"{mem_kb / MIB:.1f} GiB"
    except (OSError, StopIteration):
        mem = "unknown"
    lines.append(f"- CPU: {model}, `nproc` = {os.cpu_count()}; memory: {mem}; "
                 f"{platform.system()} {platform.release()} {platform.machine()}")
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
        lines.append(f"- {rustc}")
    except OSError:
        pass
    return lines


class Table:
    def __init__(self, judge):
        self.rows = []
        self.judge = judge
        self.failed = []
        self.left_out = 0

    def add(self, target, measured, baseline, ratio, passed, always_judged=False):
        if not (self.judge or always_judged):
            # A smoke run's timings are not measurements: keep them out of the targets table.
            self.left_out += 1
            return
        if passed is None:
            verdict = "n/a"
        elif not (self.judge or always_judged):
            verdict = "(not judged)"
        else:
            verdict = "pass" if passed else "**FAIL**"
            if not passed:
                self.failed.append(target)
        self.rows.append((target, measured, baseline, ratio, verdict))

    def markdown(self):
        out = ["| target | measured | baseline | ratio | pass/fail |", "|---|---|---|---|---|"]
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--criterion", required=True)
    parser.add_argument("--quick", type=int, default=0)
    parser.add_argument("--profile", default="release")
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--command", default="scripts/bench")
    args = parser.parse_args()
    res = args.results
    manifest = load(args.manifest)
    table = Table(judge=not args.quick)
    details = []

    ndjson_bytes = manifest["ndjson"]["bytes"]
    tree_bytes = manifest["tree"]["bytes"]
    sample_bytes = manifest["sample"]["bytes"]
    big_bytes = manifest["big"]["bytes"]

    # --- uncompressed NDJSON, one core
    nd = hyperfine(os.path.join(res, "hf-ndjson.json"))
    scan_nd = gbps(ndjson_bytes, cpu(nd["scan-j1"]))
    wc_nd = gbps(ndjson_bytes, cpu(nd["wc-l"]))
    table.add(f"`scan -j 1` NDJSON ({ndjson_bytes / 1e9:.2f} GB) >= 1 GB/s",
              f"{scan_nd:.2f} GB/s (wall {gbps(ndjson_bytes, nd['scan-j1']['median']):.2f})",
              "", "", scan_nd >= 1.0)
    table.add("`scan -j 1` NDJSON >= 0.6x `wc -l`", f"{scan_nd:.2f} GB/s",
              f"`wc -l` {wc_nd:.2f} GB/s (wall {gbps(ndjson_bytes, nd['wc-l']['median']):.2f})",
              f"{scan_nd / wc_nd:.2f}x", scan_nd / wc_nd >= 0.6)
    grep_nd = gbps(ndjson_bytes, cpu(nd["grep-c"]))
    table.add("`scan -j 1` NDJSON at least as fast as `grep -c UpdateFunctionCode` (validates "
              "nothing)", f"{scan_nd:.2f} GB/s",
              f"`grep -c` {grep_nd:.2f} GB/s (wall {gbps(ndjson_bytes, nd['grep-c']['median']):.2f})",
              f"{scan_nd / grep_nd:.2f}x", scan_nd >= grep_nd)
    py_nd = gbps(ndjson_bytes, cpu(nd["python-fast"]))
    table.add("`scan -j 1` NDJSON >= 5x Python with `orjson` and the literal prefilter "
              "(`scripts/bench-rule.py --fast`)", f"{scan_nd:.2f} GB/s",
              f"Python --fast {py_nd:.2f} GB/s (wall "
              f"{gbps(ndjson_bytes, nd['python-fast']['median']):.2f})",
              f"{scan_nd / py_nd:.2f}x", scan_nd / py_nd >= 5)
    wall_nd_n = gbps(ndjson_bytes, nd["scan-jN"]["median"])
    wall_nd_1 = gbps(ndjson_bytes, nd["scan-j1"]["median"])
    table.add(f"`scan -j {args.jobs}` NDJSON (one file, decoded in parts) >= 1.8x `-j 1` "
              "(wall clock)",
              f"{wall_nd_n:.2f} GB/s", f"`-j 1` {wall_nd_1:.2f} GB/s",
              f"{wall_nd_n / wall_nd_1:.2f}x",
              wall_nd_n / wall_nd_1 >= 1.8 if args.jobs >= 2 else None)

    # --- gzip tree
    tr = hyperfine(os.path.join(res, "hf-tree.json"))
    scan_gz = gbps(tree_bytes, cpu(tr["scan-j1"]))
    zcat = gbps(tree_bytes, cpu(tr["zcat"]))
    table.add(f"`scan -j 1` .json.gz tree ({manifest['tree']['files']} files, "
              f"{manifest['tree']['compressed_bytes'] / 1e6:.0f} MB gz) faster than `zcat`",
              f"{scan_gz:.2f} GB/s", f"`zcat` {zcat:.2f} GB/s", f"{scan_gz / zcat:.2f}x",
              scan_gz > zcat)
    wall_gz_n = gbps(tree_bytes, tr["scan-jN"]["median"])
    wall_gz_1 = gbps(tree_bytes, tr["scan-j1"]["median"])
    decoders = {name: gbps(tree_bytes, cpu(r)) for name, r in tr.items()
                if name.startswith(("flate2-", "libdeflate")) and not name.endswith("-jN")}
    best = max(decoders, key=decoders.get)
    table.add("`scan -j 1` .json.gz >= 0.9x the fastest Rust gzip decoder alone (1 core, CPU "
              "time)", f"{scan_gz:.2f} GB/s (wall {wall_gz_1:.2f})",
              f"{best} {decoders[best]:.2f} GB/s (wall {gbps(tree_bytes, tr[best]['median']):.2f})",
              f"{scan_gz / decoders[best]:.2f}x", scan_gz / decoders[best] >= 0.9)
    # Parallelism is about wall time: both sides by wall-clock median.
    table.add(f"`scan -j {args.jobs}` .json.gz tree >= 1.8x `-j 1` (wall clock)",
              f"{wall_gz_n:.2f} GB/s", f"`-j 1` {wall_gz_1:.2f} GB/s",
              f"{wall_gz_n / wall_gz_1:.2f}x",
              wall_gz_n / wall_gz_1 >= 1.8 if args.jobs >= 2 else None)

    # --- memory
    for name, what in (("scan-big", f"single-line Records file ({big_bytes / 1e9:.2f} GB)"),
                       ("scan-ndjson", "NDJSON, `-j 1`"),
                       ("scan-ndjson-jN", f"NDJSON, `-j {args.jobs}`"),
                       ("scan-tree-jN", f".json.gz tree, `-j {args.jobs}`")):
        _, _, peak_kb, _ = counted(res, name)
        table.add(f"peak RSS of `scan`, {what} < 64 MiB", f"{peak_kb / 1024:.1f} MiB", "",
                  "", peak_kb < 64 * 1024)

    # --- versus jq and Python (sample)
    sm = hyperfine(os.path.join(res, "hf-sample.json"))
    scan_s = cpu(sm["scan-j1"])
    for name, floor in (("jq", 100), ("python", 30)):
        other = cpu(sm[name])
        label = "`jq`" if name == "jq" else "Python (`scripts/bench-rule.py`)"
        table.add(f"`scan -j 1` >= {floor}x {label}, {sample_bytes / 1e6:.0f} MB NDJSON",
                  f"{gbps(sample_bytes, scan_s):.2f} GB/s ({scan_s:.3f} s)",
                  f"{label} {gbps(sample_bytes, other) * 1000:.0f} MB/s ({other:.2f} s)",
                  f"{other / scan_s:.0f}x", other / scan_s >= floor)

    # --- alert counts: scan vs planted vs python vs jq
    checks = [
        ("scan NDJSON", "scan-ndjson", manifest["ndjson"]["alerts"]),
        (f"scan NDJSON -j {args.jobs}", "scan-ndjson-jN", manifest["ndjson"]["alerts"]),
        ("scan tree -j 1", "scan-tree-j1", manifest["tree"]["alerts"]),
        (f"scan tree -j {args.jobs}", "scan-tree-jN", manifest["tree"]["alerts"]),
        ("scan big", "scan-big", manifest["big"]["alerts"]),
        ("scan sample", "scan-sample", manifest["sample"]["alerts"]),
        ("python sample", "python-sample", manifest["sample"]["alerts"]),
        ("python --fast sample", "python-fast-sample", manifest["sample"]["alerts"]),
        ("jq sample", "jq-sample", manifest["sample"]["alerts"]),
    ]
    found, planted, ok = [], [], True
    for label, name, expected in checks:
        alerts, _, _, status = counted(res, name)
        found.append(f"{label} {alerts}")
        planted.append(str(expected))
        ok = ok and alerts == expected and status == 0
    table.add("alert counts: scan = planted = Python = jq", "; ".join(found),
              "planted " + "/".join(dict.fromkeys(planted)), "", ok, always_judged=True)

    # --- Lambda
    cold = load(os.path.join(res, "coldstart.json"))
    rust, py = cold["rust"], cold["python"]
    table.add(f"Lambda cold start (spawn to first response, incl. SNS publish), median of "
              f"{rust['runs']} <= 20 ms",
              f"{rust['median_ms']:.1f} ms", "", "", rust["median_ms"] <= 20)
    table.add("Lambda cold start >= 20x faster than Python + boto3",
              f"{rust['median_ms']:.1f} ms", f"Python {py['median_ms']:.0f} ms",
              f"{py['median_ms'] / rust['median_ms']:.0f}x",
              py["median_ms"] / rust["median_ms"] >= 20)
    table.add("Lambda peak RSS <= 32 MiB", f"{rust['peak_rss_kb'] / 1024:.1f} MiB",
              f"Python {py['peak_rss_kb'] / 1024:.1f} MiB", "",
              rust["peak_rss_kb"] <= 32 * 1024)
    handler = criterion_medians(args.criterion, "handler")
    for kind, label in (("alert/", "alert event + SNS message"), ("quiet/", "quiet event")):
        costs = {k: v for k, v in handler.items() if k.startswith("handler/" + kind)}
        if costs:
            worst = max(costs, key=costs.get)
            table.add(f"per-event handler cost, {label} (worst sample) <= 50 us",
                      f"{costs[worst] / 1000:.1f} us ({worst.rsplit('/', 1)[-1]})", "", "",
                      costs[worst] <= 50_000)
        else:
            table.add(f"per-event handler cost, {label} <= 50 us", "missing", "", "", False)
    sizes = {}
    with open(os.path.join(res, "sizes.txt")) as f:
        for line in f:
            arch, nbytes, path = line.split(maxsplit=2)
            sizes[arch] = int(nbytes)
    for arch in ("x86_64", "arm64"):
        if arch in sizes:
            table.add(f"handler binary, {arch}, as built (release strips symbols) <= 5 MiB",
                      f"{sizes[arch] / MIB:.2f} MiB", "", "", sizes[arch] <= 5 * MIB)

    print("### Environment\n")
    print("\n".join(machine()))
    print(f"- command: `{args.command}` (cargo profile `{args.profile}`)")
    print(f"- corpus: {manifest['ndjson']['records']:,} records, "
          f"{manifest['ndjson']['bytes'] / 1e9:.2f} GB NDJSON; the same as "
          f"{manifest['tree']['files']} `.json.gz` files "
          f"({manifest['tree']['compressed_bytes'] / 1e6:.0f} MB compressed); "
          f"{manifest['big']['bytes'] / 1e9:.2f} GB single-line `{{\"Records\":[...]}}` file; "
          f"one alert planted per {manifest['alert_every']:,} records")
    for when in ("start", "end"):
        path = os.path.join(res, f"loadavg-{when}.txt")
        if os.path.exists(path):
            with open(path) as f:
                print(f"- load average at the {when} of the measurements: {f.read().strip()}")
    print("- timings: hyperfine, files in page cache; one-core figures are CPU time (user + "
          "system, mean of the runs: immune to other processes on a shared machine), wall-clock "
          "median beside them; the parallel figure is wall clock. Throughput in bytes of "
          "uncompressed JSON per second (GB = 10^9 bytes)\n")
    print(table.markdown())
    smoke = ""
    if args.quick:
        smoke = " (smoke figures: dev profile, tiny input, not measurements)"
        print(f"\nSmoke run: {table.left_out} timing, memory and size targets left out of the "
              f"table; only the alert counts are judged. Measurements come from `scripts/bench` "
              f"(release profile, 2 GB corpus).")

    print(f"\n### Gzip decoders, decompression only, same files, 1 core{smoke}\n")
    print("| decoder | GB/s by CPU time (uncompressed) | wall-clock GB/s | vs flate2-zlib-rs |")
    print("|---|---|---|---|")
    base = decoders.get("flate2-zlib-rs")
    for name in sorted(decoders, key=decoders.get, reverse=True):
        rel = f"{decoders[name] / base:.2f}x" if base else ""
        print(f"| {name} | {decoders[name]:.2f} | "
              f"{gbps(tree_bytes, tr[name]['median']):.2f} | {rel} |")
    if "libdeflate-jN" in tr:
        print(f"| libdeflate, {args.jobs} threads | | "
              f"{gbps(tree_bytes, tr['libdeflate-jN']['median']):.2f} | |")
    print(f"| `zcat` | {zcat:.2f} | {gbps(tree_bytes, tr['zcat']['median']):.2f} | |")
    print(f"| `scan -j 1` (decompress + decode + rule) | {scan_gz:.2f} | {wall_gz_1:.2f} | |")
    print(f"| `scan -j {args.jobs}` | | {wall_gz_n:.2f} | |")
    print(f"\n### Uncompressed NDJSON, same file, 1 core{smoke}\n")
    print("| command | GB/s by CPU time | wall-clock GB/s | user s | system s |")
    print("|---|---|---|---|---|")
    for name in ("wc-l", "grep-c", "scan-j1", "scan-jN", "python-fast"):
        r = nd[name]
        print(f"| {name} | {gbps(ndjson_bytes, cpu(r)):.2f} | "
              f"{gbps(ndjson_bytes, r['median']):.2f} | {r['user']:.3f} | {r['system']:.3f} |")

    print(f"\n### Criterion (median per iteration){smoke}\n")
    rows = sorted(handler.items()) + sorted(criterion_medians(args.criterion, "rule").items())
    decode = criterion_medians(args.criterion, "decode")
    for full_id, ns in rows:
        print(f"- `{full_id}`: {ns / 1000:.2f} us")
    for full_id, ns in sorted(decode.items()):
        print(f"- `{full_id}`: {ns / 1e6:.2f} ms per 32 MiB = "
              f"{(32 * MIB) / 1e9 / (ns / 1e9):.2f} GB/s")

    print(f"\n### Other figures{smoke}\n")
    for name in ("scan-ndjson", "scan-ndjson-jN", "scan-tree-j1", "scan-tree-jN", "scan-big", "scan-sample",
                 "python-sample", "python-fast-sample", "jq-sample"):
        alerts, seconds, peak_kb, status = counted(res, name)
        print(f"- `{name}`: {alerts} alerts, {seconds:.2f} s, peak RSS {peak_kb / 1024:.1f} MiB, "
              f"exit {status}")
    print(f"- cold start, Rust: median {rust['median_ms']:.1f} ms, min {rust['min_ms']:.1f}, "
          f"max {rust['max_ms']:.1f}; Python: median {py['median_ms']:.0f} ms, "
          f"min {py['min_ms']:.0f}, max {py['max_ms']:.0f}")
    for arch, nbytes in sizes.items():
        print(f"- `{arch}` binary: {nbytes:,} bytes")

    if table.failed:
        print("\nfailed: " + "; ".join(table.failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
