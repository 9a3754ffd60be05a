"""Raw request rates per file size with wrk: our server against nginx and python -m http.server.

    python bench/serve_wrk.py                    # 50 KB index and 1 MB module, 400/2000/10000 connections, 2 runs
    python bench/serve_wrk.py --conns 400 --runs 3 --duration 15

For each file (the ep11 index, ~49 KB, served by our server from memory;
a real module file of the snapshot close to 1 MB, served with sendfile),
each connection count and each run: a fresh server, then
`wrk -t2 -cN -dDs --timeout 10s` on one URL, sharing the two cores with
the server. Figures: requests/s and transfer/s (medians, spread), wrk's
socket errors and non-2xx answers, the server's peak RSS (summed over its
process tree), its CPU seconds and CPU milliseconds per completed request
(the server's own cost, which the machine's other load disturbs least),
wrk's own CPU seconds; ratios to nginx in the same run.
Goals (issue 4): >= 0.5 of nginx's requests/s for the index and >= 0.9 for
module files at every connection count, memory flat as connections and
file sizes grow.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from common import RssSampler, cpu_seconds, machine_line, stats, table
from serve_snapshot import AGENTS, SERVE_WORK, code_version, need_tool, raise_open_files, servers, snapshot
from serve_storm import ratio

WRK = "/usr/bin/wrk"
GOALS = {"index": 0.5, "module": 0.9}


def pick_files(snap) -> dict[str, str]:
    """The benchmark's URLs: the ep11 index, and the module file closest to 1 MB."""
    index = "/" + snap.index_path("ep11")
    best = None
    for p in snap.tree.rglob("*.nup"):
        d = abs(p.stat().st_size - 1_000_000)
        if best is None or d < best[0]:
            best = (d, p)
    return {"index": index, "module": "/" + str(best[1].relative_to(snap.tree))}


def parse_wrk(out: str) -> dict:
    def num(pattern: str) -> float:
        m = re.search(pattern, out)
        return float(m.group(1)) if m else 0.0

    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    scale = {"B": 1, "KB": 1e3 * 1.024, "MB": 1.048576e6, "GB": 1.073741824e9}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": num(r"Requests/sec:\s+([\d.]+)"),
            "bytes_per_s": float(transfer.group(1)) * scale.get(transfer.group(2), 1) if transfer else 0.0,
            "socket_errors": dict(zip(("connect", "read", "write", "timeout"),
                                      map(int, errors.groups()), strict=True)) if errors else {},
            "non2xx": int(num(r"Non-2xx or 3xx responses:\s+(\d+)"))}


def one_run(make, path: str, conns: int, duration: int) -> dict:
    with make() as server:
        url = f"http://127.0.0.1:{server.port}{path}"
        cpu0 = cpu_seconds(server.pid)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with RssSampler(server.pid) as rss:
            done = subprocess.run([WRK, "-t2", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
                                   "-H", f"User-Agent: {AGENTS['ep11']}", url],
                                  capture_output=True, text=True, timeout=duration + 120)
        cpu = cpu_seconds(server.pid) - cpu0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)   # wrk is the only child reaped meanwhile
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-1000:]}")
    out = parse_wrk(done.stdout)
    out.update(peak_rss=rss.peak, cpu=cpu, wrk_cpu=wrk_cpu, duration=duration, errors=sum(out["socket_errors"].values()) + out["non2xx"])
    return out


def report(kind: str, conns: int, by_server: dict[str, list[dict]]) -> str:
    base = by_server.get("nginx")
    base_rps = statistics.median(r["rps"] for r in base) if base else None
    rows = []
    for name, runs in by_server.items():
        rps = stats(r["rps"] for r in runs)
        kinds = sorted({k for r in runs for k, v in r["socket_errors"].items() if v}
                       | ({"non-2xx"} if any(r["non2xx"] for r in runs) else set()))
        rows.append([name, rps.show("{:.0f}"), stats(r["bytes_per_s"] / 1e6 for r in runs).show("{:.0f}"),
                     "/".join(str(r["errors"]) for r in runs) + (f" ({', '.join(kinds)})" if kinds else ""),
                     stats(r["peak_rss"] / 1e6 for r in runs).show("{:.0f}"),
                     stats(r["cpu"] for r in runs).show("{:.1f}"),
                     stats(1000 * r["cpu"] / max(1.0, r["rps"] * r.get("duration", 15)) for r in runs).show("{:.3f}"),
                     stats(r.get("wrk_cpu", float("nan")) for r in runs).show("{:.1f}"),
                     ratio(rps.median, base_rps, [r["rps"] for r in runs], [r["rps"] for r in base] if base else [])])
    goal = f"goal >= {GOALS[kind]} x nginx"
    return f"{kind}, {conns} connections ({goal})\n" + table(
        ["server", "req/s", "MB/s", "errors per run", "peak RSS MB", "CPU s", "CPU ms/req", "wrk CPU s", "x nginx (per run)"], rows)


def main() -> int:
    ap = argparse.ArgumentParser(description="wrk request rates per file size: ours vs nginx vs http.server.")
    ap.add_argument("--conns", type=int, nargs="+", default=[400, 2000, 10000])
    ap.add_argument("--files", nargs="+", default=["index", "module"], choices=["index", "module"])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    ap.add_argument("--servers", nargs="+", default=["ours-w1", "ours-w2", "nginx", "http.server"])
    ap.add_argument("--json", type=Path)
    ap.add_argument("--from-json", type=Path, help="only print the tables of a run saved with --json")
    args = ap.parse_args()
    if args.from_json:
        for key, by in json.loads(args.from_json.read_text())["results"].items():
            kind, conns = key.split()
            print(report(kind, int(conns), by) + "\n")
        return 0

    need_tool(WRK, "wrk")
    nofile = raise_open_files()
    if nofile < max(args.conns) + 100:
        print(f"warning: open-files limit {nofile} is below {max(args.conns)} connections", file=sys.stderr)
    snap = snapshot()
    log_dir = SERVE_WORK / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    table_ = servers(snap, log_dir, args.servers)
    paths = pick_files(snap)
    for kind in args.files:
        print(f"{kind}: {paths[kind]} ({(snap.tree / paths[kind].lstrip('/')).stat().st_size} bytes)")
    print(code_version())
    print(machine_line(), flush=True)
    names = list(table_)
    results: dict[str, dict] = {}
    for kind in args.files:
        for conns in args.conns:
            key = f"{kind} {conns}"
            results[key] = {n: [] for n in names}
            for run in range(args.runs):
                order = names[run % len(names):] + names[:run % len(names)]
                for name in order:
                    r = one_run(table_[name][0], paths[kind], conns, args.duration)
                    results[key][name].append(r)
                    print(f"  {key} run {run + 1} {name}: {r['rps']:.0f} req/s, {r['errors']} errors, "
                          f"peak {r['peak_rss'] / 1e6:.0f} MB, CPU {r['cpu']:.1f} s", flush=True)
            print("\n" + report(kind, conns, results[key]) + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"files": paths, "results": results}, indent=1))
    for key, by in results.items():
        kind, conns = key.split()
        print(report(kind, int(conns), by) + "\n")
    print(machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
