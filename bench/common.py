"""Shared helpers for the benchmarks in bench/: processes on loopback, memory, statistics, tables.

Generic on purpose (the sync and the serve benchmarks both use it):

- `free_port()`, `wait_for_port()`: loopback ports for servers the benchmark starts;
- `Service`: a long-running process (a server) in its own process group, started,
  waited for, and stopped by itself (SIGTERM, then SIGKILL), never left behind;
- `run_measured()`: run a command to completion under a time limit and return its
  wall time, exit status, output and peak memory (the kernel's own maximum RSS of
  the process from wait4(2), and the peak sum of RSS over its process tree from
  polling /proc);
- `RssSampler`: poll the RSS of any process tree (e.g. a server under load);
- `Stats` / `stats()`: median, min, max and spread of repeated measurements;
- `table()`: a plain-text table; `machine()`: cores, memory, load, date.

Benchmarks are not tests: nothing here asserts; figures are printed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
#: Where benchmarks keep generated data between runs (reused when it matches).
WORK = Path(os.environ.get("UPDMIRROR_BENCH_DIR", "/tmp/updmirror-bench"))
PAGE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024


def use_repo_sources() -> None:
    """Make `import updmirror` load this checkout's src/, in this process and its children."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(SRC) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(SRC), *parts])


def updmirror(*args: str) -> list[str]:
    """The command line of `updmirror ARGS` run by this Python from this checkout."""
    return [sys.executable, "-m", "updmirror", *args]


# -- ports and processes ----------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on `host` (the kernel picks it; a tiny race remains)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until something accepts connections on host:port; raise if it does not in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args[:4]}... exited with {proc.returncode} before listening on {host}:{port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout:g} s")


def _kill_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process group of `proc`, SIGKILL it after `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


class Service:
    """A server process for the length of a `with` block.

    Started in a new session (its own process group) so that stopping it stops
    its children too; its output goes to `log` (read it when it fails to start).
    `port` is where it must accept connections before the block begins.
    """

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        port: int,
        host: str = "127.0.0.1",
        log: Path,
        start_timeout: float = 30.0,
        stop_grace: float = 10.0,
        env: dict | None = None,
        cwd: Path | None = None,
    ):
        self.cmd, self.port, self.host, self.log = list(cmd), port, host, Path(log)
        self.start_timeout, self.stop_grace = start_timeout, stop_grace
        self.env, self.cwd = env, cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "wb")  # noqa: SIM115 - closed by the child's exit; we keep no handle
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=self.env,
                cwd=self.cwd,
            )
        finally:
            out.close()
        try:
            wait_for_port(self.host, self.port, self.start_timeout, self.proc)
        except RuntimeError as exc:
            self.stop()
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}\n--- {self.log} ---\n{tail}") from None
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            _kill_group(self.proc, self.stop_grace)

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def get_json(url: str, user: str | None = None, password: str | None = None, timeout: float = 10.0):
    """GET a JSON document (a status page, a tier manifest) from a loopback server, with HTTP
    Basic credentials when given."""
    import base64
    import json
    import urllib.request

    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def write_htpasswd(path: Path, user: str, password: str) -> Path:
    """An htpasswd file of one user (bcrypt at the lowest cost: loopback benchmarks only)."""
    import bcrypt

    path.write_text(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()}\n")
    return path


# -- memory -------------------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    return stat[stat.rfind(b")") + 2 :].split()


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields is not None:
            kids.setdefault(int(fields[1]), []).append(int(entry.name))
    return kids


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants alive now."""
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, ()))
    return out


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """CPU time (user + system) used so far by `pid` (and its live descendants), from /proc."""
    total = 0
    for p in process_tree(pid) if tree else [pid]:
        fields = _stat_fields(p)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5))
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident memory of one process now (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(pid: int) -> int:
    """Resident memory of `pid` and its descendants now, summed."""
    return sum(rss_bytes(p) for p in process_tree(pid))


def settled_rss(pid: int, samples: int = 5) -> int:
    """The median of `samples` readings of tree_rss, 0.2 s apart."""
    values = []
    for _ in range(samples):
        values.append(tree_rss(pid))
        time.sleep(0.2)
    return int(statistics.median(values))


class RssSampler:
    """Poll the summed RSS of a process tree in a thread; `peak` is the highest sum seen.

    Polling misses spikes shorter than `interval`; for a process you wait for,
    `run_measured` also gives the kernel's exact maximum (wait4's ru_maxrss).
    """

    def __init__(self, pid: int, interval: float = 0.05, tree: bool = True):
        self.pid, self.interval, self.tree = pid, interval, tree
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = process_tree(self.pid) if self.tree else [self.pid]
            total = sum(rss_bytes(p) for p in pids)
            if total:
                self.peak = max(self.peak, total)
                self.samples += 1
            self._stop.wait(self.interval)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.peak

    def __enter__(self) -> RssSampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Measured:
    cmd: list[str]
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    #: The kernel's maximum resident set size of the process (and of the children it waited for).
    maxrss: int
    #: The highest summed RSS of the process tree seen by polling /proc.
    tree_peak_rss: int
    #: CPU time (user + system) of the process and the children it waited for.
    cpu_seconds: float = 0.0
    timed_out: bool = False

    def check(self) -> Measured:
        if self.timed_out:
            raise RuntimeError(
                f"{' '.join(self.cmd[:6])} ... was stopped after its time limit "
                f"({self.seconds:.0f} s)\n{self.stderr[-2000:]}"
            )
        if self.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.cmd[:6])} ... exited with {self.returncode}\n{self.stderr[-3000:]}"
            )
        return self


def run_measured(
    cmd: Sequence[str],
    *,
    timeout: float,
    env: dict | None = None,
    cwd: Path | None = None,
    poll: float = 0.05,
) -> Measured:
    """Run `cmd` to completion (killed after `timeout` s) and measure its wall time and memory."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            cwd=cwd,
        )
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    return
                time.sleep(5)

        timer = threading.Timer(timeout, kill)
        timer.daemon = True
        timer.start()
        sampler = RssSampler(proc.pid, poll).start()
        try:
            # wait4 gives the rusage of this one child: its own ru_maxrss, not every child's.
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            elapsed = time.perf_counter() - started
            timer.cancel()
            sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Measured(
            list(cmd),
            elapsed,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_maxrss * 1024,
            sampler.peak,
            usage.ru_utime + usage.ru_stime,
            timed_out.is_set(),
        )


# -- statistics and output ---------------------------------------------------------


@dataclass
class Stats:
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def spread(self) -> float:
        """(max - min) / median: how far apart the runs were, as a share of the median."""
        m = self.median
        return (self.high - self.low) / m if m else 0.0

    def show(self, fmt: str = "{:.2f}", unit: str = "") -> str:
        """'12.34 s (11.90..13.02, spread 9%)', or just the value for one run."""
        one = (fmt + unit).format
        if len(self.values) == 1:
            return one(self.values[0])
        return (
            f"{one(self.median)} ({fmt.format(self.low)}..{fmt.format(self.high)}, spread {self.spread:.0%})"
        )


def stats(values: Iterable[float]) -> Stats:
    return Stats([float(v) for v in values])


def mib(n: float) -> str:
    return f"{n / MB:.1f} MiB"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table, also valid Markdown."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def machine() -> dict:
    """Cores, memory, load and date: the facts a figure needs next to it."""
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 1024**3, 1),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": sys.version.split()[0],
    }


def machine_line() -> str:
    m = machine()
    return (
        f"machine: {m['cores']} cores, {m['memory_gib']} GiB, load average {m['load']} "
        f"(other work on the machine adds noise), {m['date']}, Python {m['python']}"
    )


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def copy_tree_linked(src: Path, dst: Path) -> None:
    """Copy a folder with hard links (instant, no extra space); only for trees whose
    writers replace files (write a new name, rename) and never modify them in place."""
    remove_tree(dst)
    shutil.copytree(src, dst, copy_function=os.link)
