"""A purpose-built load generator for the serving benchmarks: raw keep-alive HTTP/1.1 on asyncio.

aiohttp's client costs too much per connection to drive 10,000 of them from
a 2-core machine that also runs the server, so this speaks just enough
HTTP/1.1 itself: one `asyncio.BufferedProtocol` per connection, every
connection of a process reading into one shared 256 KiB buffer (asyncio
calls get_buffer/recv_into/buffer_updated back to back), module bodies
counted and dropped, index bodies kept.

Run as a child process (`python serve_load.py`, a JSON job on stdin): it
prepares, prints "ready", waits for "go" on stdin, works, and prints one
JSON line of results. Two jobs:

- storm: `clients` simulated clients start at once; each (`rounds` times
  in a row, so that small storms last long enough to measure) opens a
  connection (from one of several loopback source addresses, so that tens
  of thousands of connections do not run out of ephemeral ports), asks for
  its index with its User-Agent, finds in it the files it needs, fetches
  them over the same keep-alive connection (reconnecting when the server
  closes, as http.server does), checks each status and length, and closes.
  The index is parsed with the project's own parser, and the files chosen
  by the reference client's own plan (from what it held at the release-1
  index), once per distinct index content (memoised by its bytes), so the
  generator's CPU goes to HTTP, not to re-parsing the same 50 KB ten
  thousand times.
- idle: `clients` connections each make one request, then stay open and
  idle until "close" arrives on stdin.
"""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: The kernel picks the source port at connect(), not at bind(): 4-tuples, not ports, must be unique.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
BUF = bytearray(256 * 1024)
BUFVIEW = memoryview(BUF)


class HttpError(Exception):
    pass


class Conn(asyncio.BufferedProtocol):
    """One client connection; `get()` sends a request and waits for the whole response."""

    __slots__ = ("transport", "fut", "partial", "remaining", "keep", "body", "status", "close_after",
                 "closed", "until_close", "got")

    def __init__(self):
        self.transport = None
        self.fut: asyncio.Future | None = None
        self.partial = b""
        self.remaining = -1          # -1: reading the head
        self.keep = False
        self.body: list[bytes] = []
        self.status = 0
        self.close_after = False
        self.closed = False
        self.until_close = False
        self.got = 0

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return BUFVIEW

    def buffer_updated(self, n):
        if self.remaining < 0:
            if self.partial:
                self.partial += BUF[:n]
                data = self.partial
                end = data.find(b"\r\n\r\n")
                if end < 0:
                    return
            else:
                end = BUF.find(b"\r\n\r\n", 0, n)
                if end < 0:
                    self.partial = bytes(BUF[:n])
                    return
                data = BUF
            self._head(bytes(data[:end]))
            start = end + 4
            total = len(data) if data is not BUF else n
            self.partial = b""
            self._body(data, start, total)
        else:
            self._body(BUF, 0, n)

    def _head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        self.status = int(parts[1])
        length = None
        close = parts[0] == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                v = value.strip().lower()
                close = v == b"close" or (close and v != b"keep-alive")
        self.close_after = close
        self.until_close = length is None
        self.remaining = length if length is not None else 1 << 62
        self.got = 0

    def _body(self, data, start: int, end: int) -> None:
        n = end - start
        if n > self.remaining:
            n = self.remaining       # never more than asked (no pipelining here)
        if n > 0:
            if self.keep:
                self.body.append(bytes(data[start:start + n]))
            self.remaining -= n
            self.got += n
        if self.remaining == 0:
            self._done()

    def _done(self) -> None:
        self.remaining = -1
        fut, self.fut = self.fut, None
        body = b"".join(self.body) if self.keep else None
        self.body = []
        if fut is not None and not fut.done():
            fut.set_result((self.status, body, self.got))
        if self.close_after:
            self.transport.close()

    def connection_lost(self, exc):
        self.closed = True
        if self.until_close and self.remaining >= 0 and self.fut is not None:
            self.remaining = 0
            self._done()
            return
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            fut.set_exception(ConnectionResetError("connection closed before the whole response"))

    def eof_received(self):
        return False

    def get(self, path: str, agent: str, keep: bool, extra: str = "") -> asyncio.Future:
        self.keep = keep
        self.fut = asyncio.get_running_loop().create_future()
        self.transport.write(f"GET {path} HTTP/1.1\r\nHost: mirror\r\nUser-Agent: {agent}\r\n"
                             f"Accept: */*\r\n{extra}\r\n".encode())
        return self.fut


class Generator:
    def __init__(self, job: dict):
        self.job = job
        self.host, self.port = "127.0.0.1", job["port"]
        self.sources = job["sources"]
        self.next_source = 0
        self.memo: dict[bytes, list[tuple[str, int]]] = {}
        self.times: list[float] = []
        self.errors: dict[str, int] = {}
        self.bytes = 0
        self.files = 0
        self.conns: list[Conn] = []

    async def connect(self) -> Conn:
        loop = asyncio.get_running_loop()
        src = self.sources[self.next_source % len(self.sources)]
        self.next_source += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((src, 0))
            sock.setblocking(False)
            await loop.sock_connect(sock, (self.host, self.port))
            _, conn = await loop.create_connection(Conn, sock=sock)
        except BaseException:
            sock.close()
            raise
        return conn

    # -- the storm ------------------------------------------------------------------
    def wanted(self, body: bytes, tree: str, platform: str, index_path: str) -> list[tuple[str, int]]:
        key = (tree, platform, body)
        hit = self.memo.get(key)
        if hit is None:
            from serve_snapshot import client_downloads
            old = Path(self.job["old_root"], index_path).read_bytes()
            hit = self.memo[key] = client_downloads(body, old, index_path, platform, 1033)
        return hit

    async def update(self, client: dict) -> None:
        started = time.monotonic()
        conn = None
        try:
            conn = await self.connect()
            extra = self.job.get("headers", "")   # e.g. "Authorization: Basic ...\r\n"
            status, body, got = await conn.get(client["ask"], client["agent"], True, extra)
            if status != 200:
                raise HttpError(f"index HTTP {status}")
            files = self.wanted(body, client["tree"], client["platform"], client["index"])
            received = got
            for path, size in files:
                if conn.closed or conn.close_after:
                    conn = await self.connect()
                status, _, got = await conn.get(path, client["agent"], False, extra)
                if status != 200:
                    raise HttpError(f"module HTTP {status}")
                if got != size:
                    raise HttpError("module length differs from the index")
                received += got
            self.bytes += received
            self.files += len(files)
            self.times.append(time.monotonic() - started)
        except asyncio.CancelledError:
            raise
        except (OSError, HttpError, ValueError) as exc:
            kind = type(exc).__name__ + (f": {exc}" if isinstance(exc, HttpError) else "")
            self.errors[kind] = self.errors.get(kind, 0) + 1
        finally:
            if conn is not None and not conn.closed:
                conn.transport.close()

    async def storm(self) -> dict:
        clients = self.job["clients"]
        cap = self.job["cap"]
        begin = time.monotonic()
        rounds = self.job.get("rounds", 1)

        async def client(c: dict) -> None:
            for _ in range(rounds):
                await self.update(c)

        tasks = [asyncio.ensure_future(client(c)) for c in clients]
        done, pending = await asyncio.wait(tasks, timeout=cap)
        end = time.monotonic()
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)
            self.errors["unfinished at the time cap"] = len(pending)
        return {"begin": begin, "end": end, "times": self.times,
                "errors": self.errors, "bytes": self.bytes, "files": self.files}

    # -- idle connections -------------------------------------------------------------
    async def idle(self) -> dict:
        n, path = self.job["count"], self.job["path"]
        ok = 0
        sem = asyncio.Semaphore(500)    # open them briskly, not as one SYN flood

        async def one() -> None:
            nonlocal ok
            async with sem:
                try:
                    conn = await self.connect()
                    status, _, _ = await conn.get(path, "idle-bench", False)
                    if status == 200 and not conn.close_after:
                        ok += 1
                    self.conns.append(conn)
                except (OSError, HttpError, ValueError) as exc:
                    self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1

        await asyncio.gather(*(one() for _ in range(n)))
        alive = sum(1 for c in self.conns if not c.closed)
        return {"opened": ok, "alive": alive, "errors": self.errors}

    def close_all(self) -> int:
        alive = sum(1 for c in self.conns if not c.closed)
        for c in self.conns:
            if not c.closed:
                c.transport.close()
        return alive


# -- the parent's side ----------------------------------------------------------------

class Children:
    """Load-generator processes: start them with their jobs, wait until ready, go, collect.

    They run in their own process group and are killed by `stop()` whatever happens.
    """

    def __init__(self, jobs: list[dict]):
        import subprocess
        self.procs = []
        for job in jobs:
            p = subprocess.Popen([sys.executable, str(Path(__file__).resolve())], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True, start_new_session=True)
            p.stdin.write(json.dumps(job) + "\n")
            p.stdin.flush()
            self.procs.append(p)

    def _line(self, p, timeout: float) -> str:
        import select
        ready, _, _ = select.select([p.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"load generator {p.pid} said nothing for {timeout:g} s")
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator {p.pid} exited with {p.wait()}")
        return line.strip()

    def ready(self, timeout: float = 120) -> None:
        for p in self.procs:
            if self._line(p, timeout) != "ready":
                raise RuntimeError("load generator did not get ready")

    def say(self, word: str) -> None:
        for p in self.procs:
            p.stdin.write(word + "\n")
            p.stdin.flush()

    def results(self, timeout: float) -> list[dict]:
        deadline = time.monotonic() + timeout
        return [json.loads(self._line(p, max(1.0, deadline - time.monotonic()))) for p in self.procs]

    def stop(self) -> None:
        import os
        import signal
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            p.wait(timeout=10)

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def sources(count: int) -> list[str]:
    """Loopback source addresses 127.0.0.2 ... (the server's allow list must hold 127.0.0.0/8)."""
    return [f"127.0.0.{2 + i}" for i in range(count)]


async def _stdin_line(loop) -> str:
    return (await loop.run_in_executor(None, sys.stdin.readline)).strip()


async def child_main() -> None:
    job = json.loads(sys.stdin.readline())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    gen = Generator(job)
    loop = asyncio.get_running_loop()
    if job["kind"] == "storm":
        # Parse the indexes the server will send (same bytes as on disk) before the clock starts.
        for c in job["clients"]:
            gen.wanted(Path(job["tree_root"], c["index"]).read_bytes(), c["tree"], c["platform"], c["index"])
    print("ready", flush=True)
    if await _stdin_line(loop) != "go":
        return
    cpu0 = time.process_time()
    if job["kind"] == "storm":
        out = await gen.storm()
    else:
        out = await gen.idle()
        print(json.dumps(out), flush=True)
        await _stdin_line(loop)
        out["still_alive_at_close"] = gen.close_all()
        await asyncio.sleep(0.2)
    out["cpu"] = time.process_time() - cpu0
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(child_main())
