"""The update storm: C clients update at once after a release; our server against nginx and http.server.

    python bench/serve_storm.py                          # C = 400, 2000, 10000; 3 runs each
    python bench/serve_storm.py --clients 10000 --runs 2 --servers ours-w1 nginx

What one simulated client does (bench/serve_load.py): it opens a connection,
asks for `/dll/update.ver` with a real User-Agent (half ep11 endpoint
agents, half v16 home agents; three in four x64, one in four x86), parses
the index, and downloads over the same keep-alive connection the files a
client of its platform (language 1033) needs after the release: what the
reference client's plan downloads when it was current at release 1 (the
chain of deltas from the builds it holds: 3 files, 1.5-2.3 MB, for ep11;
6 files, 0.2-0.3 MB, for v16), checks each status and length, and closes. All C clients start at the same moment; one run
ends when every client is done (or at the time cap, whose stragglers count
as errors). Small storms are repeated back to back by each client
(`--min-updates`, default 4,000 updates per run: 10 rounds at C=400, 2 at
2,000, 1 at 10,000), so that a run lasts long enough to measure; every
update opens a new connection, as a client's hourly check would. `python -m http.server` cannot route by User-Agent: its clients
ask for their tree's vendor index path directly, and it closes the
connection after each response (HTTP/1.0), so they reconnect per file.

Figures per server and C (medians over the runs, with the spread):
client updates per second (updates completed / time until the last client finished),
bytes per second, p50 and p99 time per client update, errors, the server's
peak RSS (summed over its process tree, polled from /proc every 50 ms) and
its CPU seconds (and per completed update: the server's own cost, which
the machine's other load disturbs least); ratios to nginx's client updates per second in the same
run. The load generator (two processes by default, raw HTTP/1.1 on
asyncio) runs on the same two cores as the server, as wrk would: every
server is measured with the same handicap, and the generator's own CPU
seconds are shown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from common import RssSampler, cpu_seconds, machine_line, mib, stats, table
from serve_load import Children, sources
from serve_snapshot import AGENTS, SERVE_WORK, code_version, new_files, raise_open_files, servers, snapshot

GOALS = "goals at C=10,000: no errors, >= 0.5 of nginx's client updates per second, < 300 MB resident"


def client_plan(snap, count: int, routed: bool) -> list[dict]:
    out = []
    for i in range(count):
        tree = ("ep11", "v16")[i % 2]
        platform = "x86" if i % 4 >= 3 else "x64"
        index = snap.index_path(tree)
        out.append({"tree": tree, "platform": platform, "agent": AGENTS[tree], "index": index,
                    "ask": "/dll/update.ver" if routed else "/" + index})
    return out


def one_storm(snap, make, routed: bool, clients: int, procs: int, cap: float, nsources: int,
              rounds: int, headers: str = "") -> dict:
    plan = client_plan(snap, clients, routed)
    with make() as server:
        jobs = [{"kind": "storm", "port": server.port, "sources": sources(nsources), "cap": cap, "rounds": rounds,
                 "clients": plan[k::procs], "old_root": str(snap.old_indexes), "tree_root": str(snap.tree),
                 "headers": headers}
                for k in range(procs)]
        with Children(jobs) as children:
            children.ready()
            cpu0 = cpu_seconds(server.pid)
            with RssSampler(server.pid) as rss:
                children.say("go")
                results = children.results(cap + 60)
            cpu = cpu_seconds(server.pid) - cpu0
    times = sorted(t for r in results for t in r["times"])
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    span = max(r["end"] for r in results) - min(r["begin"] for r in results)
    done = len(times)
    return {"clients": clients, "rounds": rounds, "done": done, "seconds": span, "updates_per_s": done / span,
            "bytes_per_s": sum(r["bytes"] for r in results) / span,
            "p50": _pct(times, 0.50), "p99": _pct(times, 0.99), "errors": errors,
            "error_count": sum(errors.values()), "peak_rss": rss.peak, "cpu": cpu,
            "loadgen_cpu": sum(r["cpu"] for r in results)}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def ratio(median: float, base_median: float | None, values: list[float], base_values: list[float]) -> str:
    """The ratio of medians, and the ratio within each run (servers of one run ran back to back)."""
    if not base_median:
        return "-"
    per_run = [f"{v / b:.2f}" for v, b in zip(values, base_values, strict=False) if b]
    return f"{median / base_median:.2f}" + (f" ({'/'.join(per_run)})" if len(per_run) > 1 else "")


def _over_done(runs: list[dict], key: str) -> str:
    """A percentile over the runs where some client finished ("-" when none did)."""
    done = [r[key] for r in runs if r["done"]]
    return stats(done).show("{:.2f}") if done else "-"


def report(c: int, by_server: dict[str, list[dict]]) -> str:
    base = by_server.get("nginx")
    base_rate = statistics.median(r["updates_per_s"] for r in base) if base else None
    rows = []
    for name, runs in by_server.items():
        rate = stats(r["updates_per_s"] for r in runs)
        errs = [r["error_count"] for r in runs]
        kinds = sorted({k for r in runs for k in r["errors"]})
        rows.append([
            name, rate.show("{:.0f}"), stats(r["bytes_per_s"] / 1e6 for r in runs).show("{:.0f}"),
            _over_done(runs, "p50"), _over_done(runs, "p99"),
            "/".join(str(e) for e in errs) + (f" ({'; '.join(kinds)})" if kinds else ""),
            stats(r["peak_rss"] / 1e6 for r in runs).show("{:.0f}"),
            stats(r["cpu"] for r in runs).show("{:.1f}"),
            stats(1000 * r["cpu"] / r["done"] for r in runs if r["done"]).show("{:.2f}")
            if any(r["done"] for r in runs) else "-",
            stats(r["loadgen_cpu"] for r in runs).show("{:.1f}"),
            ratio(rate.median, base_rate, [r["updates_per_s"] for r in runs],
                  [r["updates_per_s"] for r in base] if base else [])])
    rounds = next(iter(by_server.values()))[0]["rounds"]
    return (f"C = {c} clients, {rounds} update(s) each\n" + table(
        ["server", "updates/s", "MB/s", "p50 s", "p99 s", "errors per run", "peak RSS MB", "CPU s",
         "CPU ms/update", "loadgen CPU s", "x nginx (per run)"], rows))


def main() -> int:
    ap = argparse.ArgumentParser(description="The update storm: C clients at once, ours vs nginx vs http.server.")
    ap.add_argument("--clients", type=int, nargs="+", default=[400, 2000, 10000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--servers", nargs="+", default=["ours-w1", "ours-w2", "nginx", "http.server"],
                    help="ours-w1, ours-w2, ours-default (one worker per core), nginx, http.server")
    ap.add_argument("--procs", type=int, default=2, help="load-generator processes")
    ap.add_argument("--sources", type=int, default=4, help="loopback source addresses 127.0.0.2 ...")
    ap.add_argument("--cap", type=float, default=120, help="seconds a storm may last; later clients are errors")
    ap.add_argument("--floor-cap", type=float, default=30,
                    help="the same for http.server, which cannot finish the larger storms anyway")
    ap.add_argument("--min-updates", type=int, default=4000,
                    help="each client updates again until C x rounds >= this (one round at C=10,000)")
    ap.add_argument("--json", type=Path, help="write every run's figures here")
    ap.add_argument("--from-json", type=Path, help="only print the tables of a run saved with --json")
    args = ap.parse_args()
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        print("\n".join(report(int(c), v) + "\n" for c, v in saved.items()))
        return 0

    nofile = raise_open_files()
    if nofile < max(args.clients) + 1000:
        print(f"warning: open-files limit {nofile} is below {max(args.clients)} connections; "
              "raise it (ulimit -n) or lower --clients", file=sys.stderr)
    snap = snapshot()
    log_dir = SERVE_WORK / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    table_ = servers(snap, log_dir, args.servers)
    for tree in ("ep11", "v16"):
        for plat in ("x64", "x86"):
            files = new_files(snap, tree, plat)
            print(f"a {tree} {plat} client needs {len(files)} files, {sum(s for _, s in files) / 1e6:.2f} MB "
                  f"after the release (+ its {(snap.tree / snap.index_path(tree)).stat().st_size / 1e3:.0f} KB index)")
    print(code_version())
    print(machine_line())
    print(f"{args.procs} load-generator processes on the same cores as the server; {GOALS}\n", flush=True)
    results: dict[int, dict[str, list[dict]]] = {}
    names = list(table_)
    for c in args.clients:
        results[c] = {n: [] for n in names}
        rounds = max(1, -(-args.min_updates // c))
        for run in range(args.runs):
            order = names[run % len(names):] + names[:run % len(names)]   # spread drifts over servers
            for name in order:
                make, routed = table_[name]
                started = time.monotonic()
                cap = args.floor_cap if name == "http.server" else args.cap
                r = one_storm(snap, make, routed, c, args.procs, cap, args.sources, rounds)
                results[c][name].append(r)
                print(f"  C={c} run {run + 1} {name}: {r['updates_per_s']:.0f} updates/s, "
                      f"{r['bytes_per_s'] / 1e6:.0f} MB/s, p99 {r['p99']:.2f} s, {r['error_count']} errors, "
                      f"peak {mib(r['peak_rss'])}, CPU {r['cpu']:.1f} s ({time.monotonic() - started:.0f} s)",
                      flush=True)
        print("\n" + report(c, results[c]) + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps({str(c): v for c, v in results.items()}, indent=1))
    print("\n".join(report(c, v) + "\n" for c, v in results.items()))
    print(machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
