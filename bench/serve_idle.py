"""Memory per idle keep-alive connection: 10,000 connections, each after one request, held open.

    python bench/serve_idle.py                       # 10,000 connections, ours (1 and 2 workers) and nginx, 2 runs
    python bench/serve_idle.py --count 20000 --runs 3

Per server and run: a fresh server, one request to warm it, its RSS
(summed over its process tree) before; then the load generator
(bench/serve_load.py, two processes, sources 127.0.0.2 ...) opens `count`
connections, each asking once for the ep11 index over HTTP/1.1 keep-alive
and then staying idle; after a settling pause, the RSS again (the median
of 5 samples 0.2 s apart) and (after - before) / connections still open.
python -m http.server is left out: it closes every connection after one
response (HTTP/1.0), so it holds no idle connections.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from pathlib import Path

from common import machine_line, process_tree, settled_rss, stats, table
from serve_load import Children, sources
from serve_snapshot import SERVE_WORK, code_version, raise_open_files, servers, snapshot


def one_run(make, path: str, count: int, procs: int, nsources: int, settle: float) -> dict:
    with make() as server:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as resp:  # noqa: S310
            resp.read()
        time.sleep(0.5)
        before = settled_rss(server.pid)
        jobs = [{"kind": "idle", "port": server.port, "sources": sources(nsources), "path": path,
                 "count": count // procs + (1 if k < count % procs else 0)} for k in range(procs)]
        with Children(jobs) as children:
            children.ready()
            children.say("go")
            opened = children.results(300)
            time.sleep(settle)
            after = settled_rss(server.pid)
            processes = len(process_tree(server.pid))
            children.say("close")
            closed = children.results(60)
    alive = sum(r["alive"] for r in opened)
    errors = {}
    for r in opened:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    return {"before": before, "after": after, "opened": sum(r["opened"] for r in opened), "alive": alive,
            "alive_at_close": sum(r.get("still_alive_at_close", 0) for r in closed),
            "per_conn": (after - before) / alive if alive else float("nan"), "errors": errors,
            "processes": processes}


def main() -> int:
    ap = argparse.ArgumentParser(description="Memory per idle keep-alive connection, ours vs nginx.")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--servers", nargs="+", default=["ours-w1", "ours-w2", "nginx"])
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--sources", type=int, default=4)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds between the last connection and the RSS")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    raise_open_files()
    snap = snapshot()
    log_dir = SERVE_WORK / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    table_ = servers(snap, log_dir, args.servers)
    path = "/" + snap.index_path("ep11")
    print(code_version())
    print(machine_line(), flush=True)
    results = {n: [] for n in table_}
    for run in range(args.runs):
        for name, (make, _) in table_.items():
            r = one_run(make, path, args.count, args.procs, args.sources, args.settle)
            results[name].append(r)
            print(f"  run {run + 1} {name}: {r['alive']} idle connections, RSS {r['before'] / 1e6:.1f} -> "
                  f"{r['after'] / 1e6:.1f} MB, {r['per_conn'] / 1e3:.1f} KB per connection "
                  f"({r['processes']} processes; errors {r['errors'] or 'none'})", flush=True)
    rows = [[name, "/".join(str(r["alive"]) for r in runs),
             stats(r["before"] / 1e6 for r in runs).show("{:.1f}"), stats(r["after"] / 1e6 for r in runs).show("{:.1f}"),
             stats(r["per_conn"] / 1e3 for r in runs).show("{:.1f}"),
             "/".join(str(sum(r["errors"].values())) for r in runs)]
            for name, runs in results.items()]
    print("\n" + table(["server", "idle connections", "RSS before MB", "RSS after MB", "KB per connection",
                        "errors per run"], rows))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
