"""Where a sync's wall time goes: run it under py-spy and sum the samples by activity.

py-spy (`pip install py-spy`) samples every thread, idle ones included
(`--idle`), so the event loop's samples split into "waiting for the network
(select)" and "busy with ...", which is what decides whether the sync or
the network is the bottleneck. Usable alone:

    python bench/sync_profile.py -c mirror.toml      # profiles one `updmirror sync` run
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
from pathlib import Path

from common import use_repo_sources

use_repo_sources()

from sync_vendor import sync_command  # noqa: E402


def find_py_spy() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


def record(
    config: Path, out: Path, *, rate: int = 100, timeout: float = 3600, sync_cmd: str | None = None
) -> bool:
    """Profile `updmirror sync -c config --json` into `out` (py-spy's raw format); False without py-spy."""
    spy = find_py_spy()
    if not spy:
        print("py-spy is not installed (pip install py-spy): no profile", flush=True)
        return False
    # --subprocesses: a --sync-cmd may start Python through `env`.
    cmd = [
        spy,
        "record",
        "--idle",
        "--subprocesses",
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--output",
        str(out),
        "--",
        *sync_command(config, sync_cmd),
    ]
    subprocess.run(cmd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return True


def _name(frame: str) -> str:
    return frame.split(" (")[0]


def _activity(frames: list[str]) -> str:
    """What the event loop was doing in one sample: the first frames under the callback it ran."""
    leaf = _name(frames[-1])
    if leaf.endswith(".select") or leaf == "select":
        return "waiting for the network (select)"
    for i, f in enumerate(frames):
        if _name(f) == "Handle._run":
            inner = [_name(x) for x in frames[i + 1 :]]
            ours = [x for x in inner[:4]]
            # Name the callback and the innermost frame, e.g. "Sync._fetch_one > _fsync_file".
            return f"{' > '.join(ours[:3])} ... {inner[-1]}" if len(inner) > 3 else " > ".join(ours)
    return "start-up, imports, other: " + _name(frames[-1])


def summarize(raw: Path, top: int = 14) -> str:
    """A text breakdown of the event loop's samples and of the worker threads' busy samples."""
    loop = collections.Counter()
    workers = collections.Counter()
    loop_total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[0].startswith("process "):
            frames = frames[1:]  # --subprocesses names the process first
        if not frames:
            continue
        if _name(frames[0]) in ("_run_module_as_main", "<module>"):
            loop_total += n
            loop[_activity(frames)] += n
        else:
            leaf = _name(frames[-1])
            if leaf in ("_worker", "Thread.wait", "Condition.wait") or leaf.endswith("wait"):
                continue  # an idle pool thread
            fn = [_name(f) for f in frames if "updmirror" in f]
            workers[(fn[0] if fn else "") + " ... " + leaf] += n
    if not loop_total:
        return "(no samples)"
    lines = [f"main thread (event loop), {loop_total} samples = 100%:"]
    for what, n in loop.most_common(top):
        lines.append(f"  {n / loop_total:6.1%}  {what}")
    busy = sum(workers.values())
    lines.append(
        f"worker threads (asyncio.to_thread), busy samples: {busy} "
        f"({busy / loop_total:.0%} of the main thread's):"
    )
    for what, n in workers.most_common(6):
        lines.append(f"  {n / loop_total:6.1%}  {what}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--config", required=True, type=Path)
    ap.add_argument("-o", "--output", type=Path, default=Path("sync-profile.txt"))
    ap.add_argument("--rate", type=int, default=100)
    args = ap.parse_args()
    if not record(args.config, args.output, rate=args.rate):
        return 1
    print(summarize(args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
