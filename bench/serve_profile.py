"""Where our server's time goes under load: py-spy on every worker during a storm or a wrk run.

    python bench/serve_profile.py storm --clients 10000 --workers 1
    python bench/serve_profile.py wrk --file module --conns 400 --workers 1

Needs py-spy (`/tmp/v/bin/pip install py-spy`, or pip install py-spy into the
Python that runs this). Starts `updmirror serve` on the benchmark's
snapshot (bench/serve_snapshot.py), starts the load, records each worker
with py-spy (sampling, raw folded stacks, `--idle` off: samples taken
while a thread sleeps in the kernel are left out), and prints the
functions with the most samples, by own time (leaf) and with callees
(inclusive), plus the raw files' paths for a flame graph
(`flamegraph.pl` or https://www.speedscope.app).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import process_tree
from serve_load import Children, sources
from serve_snapshot import AGENTS, SERVE_WORK, ours, raise_open_files, snapshot
from serve_storm import client_plan
from serve_wrk import WRK, pick_files


def py_spy() -> str:
    for candidate in (Path(sys.executable).with_name("py-spy"), shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    sys.exit("py-spy not found: pip install py-spy (into this Python's environment)")


def summary(path: Path, top: int) -> str:
    total, leaf, incl = 0, collections.Counter(), collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        total += int(n)
        leaf[frames[-1]] += int(n)
        for f in set(frames):
            incl[f] += int(n)
    if not total:
        return f"{path}: no samples"
    lines = [f"{path}: {total} samples (threads on CPU or runnable)", "  own time:"]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in leaf.most_common(top)]
    lines.append("  with callees (event-loop frames left out):")
    skip = ("runpy", "asyncio/runners", "base_events.py", "cli.py", "__main__", "master.py", "commands.py",
            "events.py")
    shown = [(f, n) for f, n in incl.most_common() if not any(s in f for s in skip)][:top]
    lines += [f"    {100 * n / total:5.1f}%  {f}" for f, n in shown]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description="py-spy profile of our server under the storm or wrk.")
    ap.add_argument("load", choices=["storm", "wrk"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--clients", type=int, default=10000, help="storm: clients")
    ap.add_argument("--file", choices=["index", "module"], default="module", help="wrk: which file")
    ap.add_argument("--conns", type=int, default=400, help="wrk: connections")
    ap.add_argument("--seconds", type=float, default=15, help="how long to record")
    ap.add_argument("--rate", type=int, default=250, help="samples per second")
    ap.add_argument("--top", type=int, default=18)
    args = ap.parse_args()

    spy = py_spy()
    raise_open_files()
    snap = snapshot()
    out = SERVE_WORK / "profiles"
    out.mkdir(parents=True, exist_ok=True)
    with ours(snap, args.workers, SERVE_WORK / "logs") as server:
        workers = [p for p in process_tree(server.pid) if p != server.pid] or [server.pid]
        if args.load == "storm":
            plan = client_plan(snap, args.clients, True)
            jobs = [{"kind": "storm", "port": server.port, "sources": sources(4), "cap": 180, "rounds": 1,
                     "clients": plan[k::2], "old_root": str(snap.old_indexes), "tree_root": str(snap.tree)} for k in range(2)]
            load = Children(jobs)
            load.ready()
            load.say("go")
            name = f"storm-c{args.clients}-w{args.workers}"
        else:
            path = pick_files(snap)[args.file]
            load = subprocess.Popen([WRK, "-t2", f"-c{args.conns}", f"-d{int(args.seconds) + 6}s", "--timeout", "10s",
                                     "-H", f"User-Agent: {AGENTS['ep11']}", f"http://127.0.0.1:{server.port}{path}"],
                                    stdout=subprocess.DEVNULL)
            name = f"wrk-{args.file}-c{args.conns}-w{args.workers}"
        try:
            time.sleep(2)   # past the first connections
            files = [out / f"{name}-pid{pid}.txt" for pid in workers]
            spies = [subprocess.Popen([spy, "record", "--nonblocking", "-f", "raw", "-r", str(args.rate),
                                       "-d", str(int(args.seconds)), "-o", str(f), "--pid", str(pid)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for pid, f in zip(workers, files, strict=True)]
            for s in spies:
                s.wait(timeout=args.seconds + 60)
        finally:
            if isinstance(load, Children):
                load.stop()
            else:
                load.kill()
                load.wait()
    for f in files:
        print(summary(f, args.top) if f.exists() else f"{f}: py-spy wrote nothing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
