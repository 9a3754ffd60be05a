"""The exported web servers against the integrated one: the same update storm
through `updmirror export nginx`, `updmirror export apache` and `updmirror serve`.

    python bench/serve_export.py                         # C = 400 and 2000, 3 runs, no authentication
    python bench/serve_export.py --clients 50 --runs 2 --auth basic --cap 90 --min-updates 50
    python bench/serve_export.py --clients 400 --runs 2 --auth basic --hash apr1

Each server is started from the same mirror.toml on the benchmark's synced
store (bench/serve_snapshot.py), one after the other, in rotating order per
run; the clients are those of bench/serve_storm.py (half ep11 endpoint agents,
half v16 home agents, each asks for /dll/update.ver with its User-Agent and
downloads the files it needs after the release, a new connection per update),
so every server answers the same client path set through its own User-Agent
routing. With `--auth basic` every request carries Basic credentials of a
user whose htpasswd entry is bcrypt (what `updmirror passwd` writes, cost 10;
`--hash apr1` for Apache's MD5-based entry): our server remembers good
checks, nginx and Apache check the hash on every request.

Figures per server and C: client updates per second, MB/s, p50/p99 time per
update, errors, peak RSS of the server's process tree, its CPU seconds and
CPU ms per update; ratios to the integrated server (ours-default: one worker
per core) in the same run, and the same for nginx and Apache.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import statistics
import sys
import time
from pathlib import Path

from common import machine_line, mib, stats, table, use_repo_sources
from serve_snapshot import SERVE_WORK, code_version, exported, ours, raise_open_files, snapshot
from serve_storm import _over_done, one_storm, ratio

use_repo_sources()

from updmirror.serve.auth import BCRYPT_ROUNDS, apr1, set_password  # noqa: E402

BASE = "ours-default"
USER, PASSWORD = "client", "storm-Pass-1"


def report(c: int, auth: str, by_server: dict[str, list[dict]]) -> str:
    base = by_server.get(BASE)
    base_rate = statistics.median(r["updates_per_s"] for r in base) if base else None
    rows = []
    for name, runs in by_server.items():
        rate = stats(r["updates_per_s"] for r in runs)
        kinds = sorted({k for r in runs for k in r["errors"]})
        rows.append([
            name, rate.show("{:.0f}"), stats(r["bytes_per_s"] / 1e6 for r in runs).show("{:.0f}"),
            _over_done(runs, "p50"), _over_done(runs, "p99"),
            "/".join(str(r["error_count"]) for r in runs) + (f" ({'; '.join(kinds)})" if kinds else ""),
            stats(r["peak_rss"] / 1e6 for r in runs).show("{:.0f}"),
            stats(r["cpu"] for r in runs).show("{:.1f}"),
            stats(1000 * r["cpu"] / r["done"] for r in runs if r["done"]).show("{:.2f}")
            if any(r["done"] for r in runs) else "-",
            ratio(rate.median, base_rate, [r["updates_per_s"] for r in runs],
                  [r["updates_per_s"] for r in base] if base else [])])
    rounds = next(iter(by_server.values()))[0]["rounds"]
    return (f"C = {c} clients, {rounds} update(s) each, auth {auth}\n" + table(
        ["server", "updates/s", "MB/s", "p50 s", "p99 s", "errors per run", "peak RSS MB", "CPU s",
         "CPU ms/update", f"x {BASE} (per run)"], rows))


def main() -> int:
    ap = argparse.ArgumentParser(description="Exported nginx and Apache against the integrated server.")
    ap.add_argument("--clients", type=int, nargs="+", default=[400, 2000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--auth", nargs="+", default=["none"], choices=["none", "basic"],
                    help="basic: every request with Basic credentials (bcrypt: keep C small)")
    ap.add_argument("--servers", nargs="+", default=[BASE, "nginx", "apache"],
                    help=f"{BASE}, ours-w1, ours-w2, nginx, apache")
    ap.add_argument("--procs", type=int, default=2, help="load-generator processes")
    ap.add_argument("--sources", type=int, default=4, help="loopback source addresses 127.0.0.2 ...")
    ap.add_argument("--cap", type=float, default=120, help="seconds a storm may last; later clients are errors")
    ap.add_argument("--min-updates", type=int, default=2000,
                    help="each client updates again until C x rounds >= this")
    ap.add_argument("--hash", choices=["bcrypt", "apr1"], default="bcrypt",
                    help="the htpasswd entry of the clients' user with --auth basic")
    ap.add_argument("--json", type=Path, help="write every run's figures here")
    args = ap.parse_args()

    nofile = raise_open_files()
    if nofile < max(args.clients) + 1000:
        print(f"warning: open-files limit {nofile} is below {max(args.clients)} connections", file=sys.stderr)
    snap = snapshot()
    log_dir = SERVE_WORK / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    htpasswd = log_dir / "htpasswd"
    htpasswd.unlink(missing_ok=True)
    if args.hash == "bcrypt":
        set_password(htpasswd, USER, PASSWORD)      # what 'updmirror passwd' writes
    else:
        htpasswd.write_text(f"{USER}:{apr1(PASSWORD.encode(), secrets.token_urlsafe(6)[:8].encode())}\n")
    header = "Authorization: Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode() + "\r\n"

    def make(name: str, auth: str):
        users = htpasswd if auth == "basic" else None
        workers = {"ours-default": 0, "ours-w1": 1, "ours-w2": 2}
        if name in workers:
            return lambda: ours(snap, workers[name], log_dir, users)
        return lambda: exported(name, snap, log_dir, users)

    print(code_version())
    print(machine_line())
    print(f"{args.procs} load-generator processes on the same cores as the servers; with --auth basic "
          f"the user's entry is {args.hash}" + (f" (cost {BCRYPT_ROUNDS})" if args.hash == "bcrypt" else "")
          + "\n", flush=True)
    results: dict[str, dict[str, list[dict]]] = {}
    for auth in args.auth:
        for c in args.clients:
            key = f"{c} {auth}"
            results[key] = {n: [] for n in args.servers}
            rounds = max(1, -(-args.min_updates // c))
            for run in range(args.runs):
                names = args.servers[run % len(args.servers):] + args.servers[:run % len(args.servers)]
                for name in names:
                    started = time.monotonic()
                    r = one_storm(snap, make(name, auth), True, c, args.procs, args.cap, args.sources, rounds,
                                  header if auth == "basic" else "")
                    results[key][name].append(r)
                    print(f"  C={c} auth={auth} run {run + 1} {name}: {r['updates_per_s']:.0f} updates/s, "
                          f"p99 {r['p99']:.2f} s, {r['error_count']} errors, peak {mib(r['peak_rss'])}, "
                          f"CPU {r['cpu']:.1f} s ({time.monotonic() - started:.0f} s)", flush=True)
            print("\n" + report(c, auth, results[key]) + "\n", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    for key, by in results.items():
        c, auth = key.split()
        print(report(int(c), auth, by) + "\n")
    print(machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
