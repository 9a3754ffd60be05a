"""Test helpers for the server: a store with snapshots, a mirror.toml, the
server in a subprocess, and a raw HTTP/1.1 client over a real socket."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from updmirror.store.snapshots import Snapshot, Store

#: The package under test, for the updmirror processes the tests start.
SRC = str(Path(__file__).resolve().parents[1] / "src")
EP11_INDEX = "eset_upd/ep11/dll/update.ver"
V16_INDEX = "eset_upd/v16/dll/update.ver"
EP11_AGENT = ("EEA Update (Windows; U; 64bit; BPC 11.0.2044.0; OS: 10.0.26100 SP 0.0 NT; "
              "TDB 0; CL 1.1.1; x64c; APP eea; BEO 1; ASP 0.0; FW 0.0; PX 0; PUA 0; RA 0)")
V16_AGENT = "ESS Update (Windows; U; 64bit; BPC 16.0.22.0; OS: 10.0.19045 SP 0.0 NT; TDB 0; CL 1.1.1)"
#: A minimal ep11 index, so a test can check which body it got.
INDEX_BYTES = b"[PERSEUS0]\r\nversionid=1\r\n"


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def updmirror_cli(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m updmirror ARGS` as an administrator runs it; its output as text."""
    return subprocess.run([sys.executable, "-m", "updmirror", *args], input=stdin, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, PYTHONPATH=SRC))


def publish(root: Path, modules: dict[str, bytes], indexes: dict[str, bytes]) -> Snapshot:
    """A snapshot holding `modules` (through the pool, as the sync does) and `indexes`."""
    store = Store(root)
    builder = store.new_snapshot()
    for path, data in modules.items():
        pool = store.pool_file(path)
        # As in the vendor's repository, a path never changes content.
        assert not pool.exists() or pool.read_bytes() == data, f"{path} differs from the pool"
        if not pool.exists():
            pool.parent.mkdir(parents=True, exist_ok=True)
            pool.write_bytes(data)
        builder.link(path, pool)
    entries = []
    for path, data in indexes.items():
        builder.write(path, data)
        tree = path.split("/")[1] if path.count("/") >= 2 else None
        entries.append({"tree": tree, "channel": "regular", "path": path,
                        "versionid": 1, "files": len(modules), "bytes": 0})
    return builder.publish({"indexes": entries})


def ep11_store(tmp: Path, modules: dict[str, bytes] | None = None) -> Path:
    """tmp/store with one snapshot: the ep11 index (INDEX_BYTES) and `modules`
    (by default one small module, /m/em001.nup)."""
    root = tmp / "store"
    publish(root, {"/m/em001.nup": b"module"} if modules is None else modules, {EP11_INDEX: INDEX_BYTES})
    return root


def write_config(tmp: Path, root: Path, port: int, mirror: dict | None = None,
                 upstream: dict | None = None, **http: object) -> Path:
    """A mirror.toml; `mirror` and `upstream` add keys to those tables,
    keyword arguments are [http] keys."""
    lines = ["[upstream]", 'url = "http://127.0.0.1:9/"']
    lines += [_toml(k, v) for k, v in (upstream or {}).items()]
    lines += ["", "[mirror]", f'root = "{root}"', 'trees = ["ep11", "v16"]']
    lines += [_toml(k, v) for k, v in (mirror or {}).items()]
    lines += ["", "[http]", f'listen = ["127.0.0.1:{port}"]']
    http.setdefault("workers", 1)
    lines += [_toml(k, v) for k, v in http.items()]
    path = tmp / "mirror.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(key: str, value: object) -> str:
    if isinstance(value, (str, Path)):
        return f'{key} = "{value}"'
    if isinstance(value, (list, tuple)):
        return f"{key} = [" + ", ".join(f'"{v}"' for v in value) + "]"
    return f"{key} = {value}"


class ServerProcess:
    """`python -m updmirror serve -c CONFIG` until stopped (bounded waits)."""

    def __init__(self, config: Path, port: int, command: str = "serve", extra: tuple = (),
                 open_files: int | None = None, wrap: tuple[str, ...] = ()):
        """`open_files`: the server's RLIMIT_NOFILE (soft and hard), as `ulimit -n` sets it;
        `wrap`: a command the server runs under (e.g. strace injecting faults)."""
        env = dict(os.environ, PYTHONPATH=SRC)
        self.port = port

        def limit() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        self.wrapped = bool(wrap)
        self.proc = subprocess.Popen([*wrap, sys.executable, "-m", "updmirror", command, "-c", str(config),
                                      *extra], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, preexec_fn=limit)
        # Read as it comes, so a test can wait for a log line instead of sleeping;
        # taken off proc, so communicate() leaves it to the reader.
        self._log: list[str] = []
        self._logged = threading.Condition()
        stderr, self.proc.stderr = self.proc.stderr, None
        self._reader = threading.Thread(target=self._read_log, args=(stderr,), daemon=True)
        self._reader.start()

    def _read_log(self, stream) -> None:
        with stream:
            for line in stream:
                with self._logged:
                    self._log.append(line)
                    self._logged.notify_all()

    @property
    def log(self) -> str:
        with self._logged:
            return "".join(self._log)

    def wait_for_log(self, predicate, timeout: float = 10.0) -> list[str]:
        """The log lines so far once `predicate(lines)` holds; AssertionError after `timeout`."""
        until = time.monotonic() + timeout
        with self._logged:
            while not predicate(self._log):
                left = until - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"the server did not log that in {timeout:g} s:\n{''.join(self._log)}")
                self._logged.wait(min(left, 0.2))
            return list(self._log)

    @property
    def pid(self) -> int:
        """The server's own pid (under a wrapper such as strace, its child)."""
        if not self.wrapped:
            return self.proc.pid
        until = time.monotonic() + 10
        while time.monotonic() < until:
            try:
                children = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
            except OSError:
                children = []
            if children:
                return int(children[0])
            time.sleep(0.05)
        raise AssertionError("the wrapped server did not start")

    def wait_ready(self, timeout: float = 10.0) -> ServerProcess:
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"server exited {self.proc.returncode}: {self.log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"HEAD /ready-check HTTP/1.1\r\nHost: x\r\n\r\n")
                    if s.recv(100).startswith(b"HTTP/1.1"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("server did not start in time")

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def stop(self, timeout: float = 20.0) -> tuple[int, str]:
        if self.proc.poll() is None:
            # To the server, not a wrapper: strace would detach and leave it running.
            self.signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            if self.wrapped:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except (ProcessLookupError, AssertionError):
                    pass
            self.proc.kill()
            self.proc.communicate(timeout=5)
        self._reader.join(10)
        return self.proc.returncode, self.log

    def __enter__(self) -> ServerProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    raw_head: bytes = field(default=b"", repr=False)


class Client:
    """A raw HTTP/1.1 client: one connection, requests written as given."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Response:
        self.send(request_bytes(path, method, headers))
        return self.read_response(head_only=method == "HEAD")

    def _fill(self) -> bool:
        chunk = self.sock.recv(1 << 20)
        self.buf += chunk
        return bool(chunk)

    def read_response(self, head_only: bool = False) -> Response:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed before a full response head: {self.buf[:200]!r}")
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end])
        del self.buf[:end + 4]
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only or status == 304 else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                raise ConnectionError("closed before the full body")
        body = bytes(self.buf[:length])
        del self.buf[:length]
        return Response(status, headers, body, head)

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request_bytes(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: mirror"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def get(port: int, path: str, **kw) -> Response:
    with Client(port) as c:
        return c.request(path, **kw)


class InProcessServer:
    """One worker on an event loop in a thread: for tests that shorten timeouts."""

    def __init__(self, config_path: Path):
        import threading

        from updmirror import config
        from updmirror.serve.counters import Counters
        from updmirror.serve.master import bind
        from updmirror.serve.worker import Worker, tls_context

        self.cfg = config.load(config_path)
        self.port = int(self.cfg.http.listen[0].rsplit(":", 1)[1])
        self.counters = Counters(1)
        self.worker = Worker(self.cfg, bind(self.cfg, 1)[0], self.counters,
                             ssl_context=tls_context(self.cfg))
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        import asyncio
        try:
            asyncio.run(self.worker.run(handle_signals=False, ready=self._ready.set))
        except BaseException as exc:  # reported by start()/stop()
            self._error = exc
            self._ready.set()

    def call(self, func) -> None:
        """Run `func()` on the server's loop (e.g. worker.reload)."""
        self.worker.loop.call_soon_threadsafe(func)

    def __enter__(self) -> InProcessServer:
        self._thread.start()
        if not self._ready.wait(10) or self._error:
            raise AssertionError(f"in-process server did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop_threadsafe()
        self._thread.join(20)
        assert not self._thread.is_alive(), "server thread did not stop"


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05):
    """Poll `predicate` until it returns a true value (bounded)."""
    until = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > until:
            return value
        time.sleep(step)
