"""One client connection: the hot path of the server.

An `asyncio.Protocol` rather than a framework, because a mirror answers
almost only two kinds of requests, both decided by one dictionary lookup in
the snapshot's tables (serve/tables.py): an index or small file, already in
memory with its headers rendered, sent with one write; or a module file,
sent zero-copy with sendfile(2) from a file opened for this request (the
open file keeps its inode, so a snapshot switch or clean-up cannot cut a
download short).

Requests on a connection are answered strictly in order: while a response
is being sent (or a password checked), further pipelined requests wait in
a small buffer and reading pauses, so a client that sends without reading
cannot make the server hold more than one response for it. Timeouts are
kept as one deadline per connection that the worker's once-a-second sweep
enforces, which costs nothing per request.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import os
import socket
import time
from typing import TYPE_CHECKING

from updmirror.errors import UnsafePathError
from updmirror.eset.modules import normalise_path
from updmirror.httpfacts import content_type, parse_basic, parse_http_date

from .allow import client_key
from .announce import ANNOUNCE_PATH
from .basic import CHALLENGE
from .httpcore import (
    MAX_HEAD,
    MAX_REQUEST_LINE,
    SERVER,
    STATUS_LINES,
    HttpError,
    Request,
    error_response,
    etag_matches,
    parse_head,
    parse_range,
)

if TYPE_CHECKING:
    from .tables import FileEntry
    from .worker import Worker

log = logging.getLogger(__name__)

#: A request head must be complete this long after its first byte (or after
#: the connection opened); slow clients cannot hold connections open.
HEADER_TIMEOUT = 10.0
#: An idle keep-alive connection is closed after this long.
IDLE_TIMEOUT = 60.0
#: A response that makes no progress for this long is abandoned.
SEND_TIMEOUT = 60.0
#: sendfile(2) in steps of this size, so progress (and the deadline) is seen.
SENDFILE_STEP = 256 * 1024

#: Linux's TCP_CORK, as nginx's tcp_nopush: headers and file leave together.
_CORK = getattr(socket, "TCP_CORK", None)

ROUTED_PATHS = (b"/update.ver", b"/dll/update.ver")
STATUS_PATHS = {b"/status": "html", b"/status.json": "json", b"/metrics": "metrics"}
#: The manifest lower mirrors plan from: served like a file, its chains refreshed per sync.
TIER_MANIFEST = b"/updmirror/manifest.json"
_TIER_MANIFEST_TYPE = content_type(TIER_MANIFEST.decode()).encode()
_ALLOW_HEADER = b"Allow: GET, HEAD\r\n"
_KEEP_ALIVE_10 = b"Connection: keep-alive\r\n"
_CLOSE = b"Connection: close\r\n"
_RETRY_SOON = b"Retry-After: 5\r\n"

#: Never through a symlink: a tampered store must not lead a request out of it.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
#: The snapshot was cleaned up since the tables were built: plainly not found.
_GONE = frozenset({errno.ENOENT, errno.ENOTDIR})
#: The process is out of something: a moment later it may work (never a 404).
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})
#: sendfile(2) errors that mean the client went away, not that the disk failed.
_CLIENT_GONE = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN,
                          errno.ECONNABORTED, errno.ETIMEDOUT})


class Connection(asyncio.Protocol):
    __slots__ = ("w", "transport", "sock_fd", "addr", "addr_key", "allowed", "allow_generation", "buf",
                 "busy", "closing", "deadline", "idle", "write_paused", "reading_paused",
                 "peer_eof", "user", "task", "memo_key", "sending", "sock")

    def __init__(self, worker: Worker):
        self.w = worker
        self.transport = None
        self.buf = b""
        self.busy = self.closing = self.idle = False
        self.write_paused = self.reading_paused = self.peer_eof = False
        self.user: str | None = None
        self.task: asyncio.Task | None = None
        self.sock_fd = -1
        self.sock = None
        self.memo_key: bytes | None = None
        self.sending: _FileSend | None = None

    # -- connection events ------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:
        w = self.w
        self.transport = transport
        w.connections.add(self)
        slot = w.slot
        slot.connections_open += 1
        slot.connections_total += 1
        peer = transport.get_extra_info("peername")
        addr = peer[0] if peer else "-"
        if addr.startswith("::ffff:") and "." in addr:
            addr = addr[7:]    # an IPv4 client of a dual-stack socket: log and judge it as IPv4
        self.addr = addr
        slot.saw_client(self.addr)
        self.deadline = w.clock + HEADER_TIMEOUT
        if not w.tls:
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                self.sock = sock
                self.sock_fd = sock.fileno()
        self.allowed = w.allow.permits(self.addr)
        self.allow_generation = w.allow_generation
        key = self.addr_key = client_key(addr)
        held = w.per_address[key] = w.per_address.get(key, 0) + 1
        if len(w.connections) > w.max_connections:
            body = (f"503 Service Unavailable: this mirror serves at most "
                    f"{w.max_connections * w.counters.workers} connections at once; retry in a moment\n")
            self._send_error(503, None, close=True, extra=_RETRY_SOON, body=body.encode())
        elif held > w.max_per_address:
            body = (f"503 Service Unavailable: this mirror serves at most "
                    f"{w.max_per_address * w.counters.workers} connections at once to one address; "
                    "retry in a moment\n")
            self._send_error(503, None, close=True, extra=_RETRY_SOON, body=body.encode())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        w = self.w
        w.connections.discard(self)
        w.announce.forget(self)
        w.slot.connections_open -= 1
        left = w.per_address.pop(self.addr_key) - 1
        if left:
            w.per_address[self.addr_key] = left
        if not w.accepting:
            w.connection_closed()
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.sending is not None:
            # Before the transport closes the socket: the selector must forget
            # the writer callback registered for this descriptor.
            self._end_send(self.sending)

    def eof_received(self) -> bool:
        # Keep the half-closed connection until what was asked is answered.
        self.peer_eof = True
        if (not self.busy and not self.buf) or self.w.announce.hung_up(self):
            # (A lower mirror waiting for an announcement that closes has gone away.)
            self.closing = True
            return False
        return True

    def pause_writing(self) -> None:
        self.write_paused = True
        self.deadline = self.w.clock + SEND_TIMEOUT

    def resume_writing(self) -> None:
        self.write_paused = False
        # Not right here: the transport calls this from inside its write
        # handler, which unregisters the socket's writer callback when it
        # returns, and would take a sendfile's callback with it.
        self.w.loop.call_soon(self._resume)

    def _resume(self) -> None:
        if not (self.busy or self.closing or self.write_paused):
            self._continue()

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if self.idle:
            self.idle = False
            self.deadline = self.w.clock + HEADER_TIMEOUT
        if not self.buf and not (self.busy or self.write_paused) and data.endswith(b"\r\n\r\n"):
            head = data[:-4]
            if len(head) <= MAX_HEAD and b"\r\n\r\n" not in head and not head.startswith(b"\r\n"):
                # The usual case: exactly one whole request in this read.
                self._request(head)
                if not (self.busy or self.closing or self.write_paused or self.peer_eof
                        or self.w.stopping or self.buf):
                    self.idle = True
                    self.deadline = self.w.clock + IDLE_TIMEOUT
                    return
                data = b""
        if self.buf:
            self.buf += data
        else:
            self.buf = data
        if self.busy or self.write_paused:
            if len(self.buf) > MAX_HEAD and not self.reading_paused:
                self.reading_paused = True
                self.transport.pause_reading()
            return
        self._process()

    # -- the request loop ---------------------------------------------------------
    def _process(self) -> None:
        buf = self.buf
        pos = 0
        answered = False
        while not (self.busy or self.closing or self.write_paused):
            while buf.startswith(b"\r\n", pos):
                pos += 2   # stray CRLF between requests (RFC 9112 2.2)
            end = buf.find(b"\r\n\r\n", pos)
            if (end if end >= 0 else len(buf)) - pos > MAX_HEAD:
                first = buf.find(b"\r\n", pos)
                too_long_line = first < 0 or first - pos > MAX_REQUEST_LINE
                self._send_error(414 if too_long_line else 431, None, close=True)
                pos = len(buf)
                break
            if end < 0:
                break
            head = buf[pos:end]
            pos = end + 4
            answered = True
            self._request(head)
        rest = buf[pos:] if pos else buf
        self.buf = bytes(rest) if rest else b""
        if not (self.busy or self.closing):
            if self.w.stopping:
                self.closing = True
                self.transport.close()
                return
            if not self.buf:
                if self.peer_eof:
                    self.closing = True
                    self.transport.close()
                    return
                if answered or not pos:
                    self.idle = True
                    self.deadline = self.w.clock + IDLE_TIMEOUT
                # else only blank lines came: still waiting for a head, under
                # its deadline, or a CRLF every few seconds would hold the
                # connection forever.
            elif answered:
                # Requests were answered; the head that follows gets its own time.
                self.deadline = self.w.clock + HEADER_TIMEOUT
            if self.reading_paused and not self.write_paused:
                self.reading_paused = False
                self.transport.resume_reading()

    def _continue(self) -> None:
        """Resume after an asynchronous response finished."""
        if self.closing:
            return
        self.deadline = self.w.clock + HEADER_TIMEOUT
        self._process()

    def _request(self, head: bytes) -> None:
        w = self.w
        w.slot.requests_total += 1
        if self.allow_generation != w.allow_generation:
            self.allowed = w.allow.permits(self.addr)
            self.allow_generation = w.allow_generation
        memo = w.memo
        if memo.second != int(time.time()):
            memo.renew()
        hit = memo.answers.get(head)
        if hit is not None and self.allowed:
            # The same request head as one answered this second: same answer.
            req, status, data, body_len, file = hit
            self.user = None
            if file is None:
                self._finish(req, status, data, body_len)
            else:
                self._open_and_send(req, status, data, *file)
            return
        self.memo_key = head if memo.enabled else None
        self.user = None
        try:
            req = parse_head(head)
        except HttpError as exc:
            self._send_error(exc.status, None, close=True)
            return
        if not self.allowed:
            self._send_error(403, req, close=True)
            return
        method = req.method
        if method != b"GET" and method != b"HEAD":
            self._send_error(405, req, close=True, extra=_ALLOW_HEADER)
            return
        if req.has_body:
            req.keep_alive = False   # the body is not read; the connection cannot go on
        kind = STATUS_PATHS.get(req.path)
        if kind is not None:
            self.memo_key = None
            admin = w.status_admin
            if (admin or w.auth is not None) and not self._authorise(req, admin, self._status):
                return
            self._status(req)
            return
        if w.auth is not None and not self._authorise(req, admin=False, then=self._serve_file):
            return
        self._serve_file(req)

    # -- authentication ---------------------------------------------------------
    def _authorise(self, req: Request, admin: bool, then) -> bool:
        """True to go on now; False when answered or when a check runs in a thread."""
        w = self.w
        creds = parse_basic(req.authorization)
        if creds is None:
            self._send_error(401, req, close=not req.keep_alive, extra=CHALLENGE)
            return False
        user, password = creds
        if admin and user not in w.admin_users:
            self.user = user
            self._send_error(403, req, close=not req.keep_alive)
            return False
        if w.htpasswd.remembers(user, password):
            self.user = user
            return True
        wait = w.guesses.admit(self.addr, user)
        if wait > 0:
            self._send_error(429, req, close=True, extra=b"Retry-After: %d\r\n" % math.ceil(wait))
            return False
        # The password hash is slow on purpose: check it off the event loop.
        self.busy = True
        self.task = w.loop.create_task(self._check_password(req, user, password, then))
        return False

    async def _check_password(self, req: Request, user: str, password: str, then) -> None:
        w = self.w
        try:
            ok = await w.loop.run_in_executor(None, w.htpasswd.check, user, password)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception("password check failed")
            ok = False
        if ok:
            w.guesses.refund(self.addr, user)
        if self.closing:
            return
        self.busy = False
        self.user = user
        if ok:
            then(req)
        else:
            self._send_error(401, req, close=not req.keep_alive, extra=CHALLENGE)
        if not self.busy:
            self._continue()

    # -- answers ----------------------------------------------------------------------
    def _status(self, req: Request) -> None:
        w = self.w
        kind = STATUS_PATHS[req.path]
        try:
            answer = w.render_status(kind)
        except Exception:
            log.exception("rendering %s failed", req.path.decode())
            self._send_error(500, req, close=not req.keep_alive)
            return
        body, ctype = answer
        self.send_fresh(req, ctype, body)

    def send_fresh(self, req: Request, ctype: bytes, body: bytes) -> None:
        """A 200 rendered for this request (status pages, the tier manifest, an
        announcement): never cached, its body left out for HEAD."""
        head = (STATUS_LINES[200] + SERVER + self.w.date.get() + b"Content-Type: " + ctype
                + b"\r\nCache-Control: no-store\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\n" + _connection(req) + b"\r\n")
        self._finish(req, 200, head if req.method == b"HEAD" else head + body, len(body))

    def _tier_manifest(self, req: Request) -> bool:
        """Answer with the refreshed manifest; False when the snapshot has none."""
        w = self.w
        try:
            body = w.render_tier_manifest()
        except Exception:
            log.exception("rendering %s failed", req.path.decode())
            body = None
        if body is None:
            return False
        self.send_fresh(req, _TIER_MANIFEST_TYPE, body)
        return True

    def _serve_file(self, req: Request, after_switch: bool = False) -> None:
        tables = self.w.tables
        path = req.path
        if path == ANNOUNCE_PATH:
            self.w.announce.request(self, req)
            return
        if path == TIER_MANIFEST and self._tier_manifest(req):
            return
        if path in ROUTED_PATHS:
            entry = tables.for_agent(path, req.user_agent, req.spread_control)
        else:
            entry = tables.files.get(path)
            if entry is None:
                try:
                    clean = clean_path(path)
                except UnsafePathError:
                    self._send_error(400, req, close=True)
                    return
                if clean is None:
                    pass    # a folder: never listed, so not found
                elif clean in ROUTED_PATHS:
                    entry = tables.for_agent(clean, req.user_agent, req.spread_control)
                else:
                    entry = tables.files.get(clean)
        if entry is None:
            if not after_switch and self.w.current_moved():
                # Another worker may have served the index that named this file.
                self.busy = True
                self.task = self.w.loop.create_task(self._serve_after_switch(req))
                return
            self._send_error(404, req, close=not req.keep_alive)
            return
        self._send_entry(req, entry)

    async def _serve_after_switch(self, req: Request) -> None:
        try:
            await self.w.catch_up()
        except asyncio.CancelledError:
            return
        if self.closing:
            return
        self.busy = False
        self._serve_file(req, after_switch=True)
        if not self.busy:
            self._continue()

    def _send_entry(self, req: Request, entry: FileEntry) -> None:
        w = self.w
        if req.if_none_match is not None:
            if etag_matches(req.if_none_match, entry.etag):
                self._not_modified(req, entry)
                return
        elif req.if_modified_since is not None:
            ims = req.if_modified_since
            if ims == entry.last_modified:
                self._not_modified(req, entry)
                return
            since = parse_http_date(ims)
            if since is not None and entry.mtime <= since:
                self._not_modified(req, entry)
                return
        size = entry.size
        start, count, status = 0, size, 200
        length = entry.length_header
        if req.range is not None and (req.if_range is None or req.if_range == entry.etag
                                      or req.if_range == entry.last_modified):
            try:
                span = parse_range(req.range, size)
            except HttpError:
                self._send_error(416, req, close=not req.keep_alive,
                                 extra=b"Content-Range: bytes */%d\r\n" % size)
                return
            if span is not None:
                start, count, status = span[0], span[1] - span[0] + 1, 206
                length = b"Content-Length: %d\r\nContent-Range: bytes %d-%d/%d\r\n" % (
                    count, start, span[1], size)
        head = (STATUS_LINES[status] + SERVER + w.date.get() + entry.headers + length
                + _connection(req) + b"\r\n")
        if req.method == b"HEAD" or count == 0:
            self._finish(req, status, head, 0)
            self._remember(req, status, head, 0)
            return
        body = entry.body
        if body is not None:
            data = head + (body if status == 200 else body[start:start + count])
            self._finish(req, status, data, count)
            self._remember(req, status, data, count)
            return
        self._remember(req, status, head, count, (entry, start, count))
        self._open_and_send(req, status, head, entry, start, count)

    def _open_and_send(self, req: Request, status: int, head: bytes, entry: FileEntry, start: int,
                       count: int) -> None:
        try:
            f = os.open(entry.fs_path, _OPEN_FLAGS)
        except OSError as exc:
            self._cannot_open(req, entry, exc)
            return
        try:
            st = os.fstat(f)
        except OSError as exc:
            os.close(f)
            self._cannot_open(req, entry, exc)
            return
        if st.st_ino != entry.ino or st.st_dev != entry.dev:
            # A folder on the way became a symlink, or the file another file.
            os.close(f)
            self._cannot_open(req, entry, None)
            return
        sock = self.sock
        if sock is not None and _CORK is not None and not self.transport.get_write_buffer_size():
            # Corked, the head leaves in the same packet as the file's first bytes.
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _CORK, 1)
                self.transport.write(head)
                self._send_file(req, status, f, start, count, len(head))
                sock.setsockopt(socket.IPPROTO_TCP, _CORK, 0)
            except OSError:
                pass    # the connection broke; the transport reports it
            return
        self.transport.write(head)
        self._send_file(req, status, f, start, count, len(head))

    def _cannot_open(self, req: Request, entry: FileEntry, exc: OSError | None) -> None:
        """Answer for a file of the tables that cannot be opened as they saw it."""
        w = self.w
        code = exc.errno if exc is not None else None
        if code in _GONE:
            self._send_error(404, req, close=not req.keep_alive)
        elif code in _EXHAUSTED:
            w.problems.log(logging.ERROR, "exhausted", "worker %d: cannot open %s (%s): answering 503; "
                           "raise the open files limit (LimitNOFILE) or lower [http] max_connections",
                           w.index, entry.fs_path, exc.strerror)
            self._send_error(503, req, close=True, extra=_RETRY_SOON)
        elif code is None or code == errno.ELOOP:
            w.problems.log(logging.ERROR, "tampered", "worker %d: %s was replaced (by a symlink or "
                           "another file) after it was published; refusing to serve it. Only "
                           "'updmirror sync' writes the store: find out what changed it",
                           w.index, entry.fs_path)
            self._send_error(404, req, close=not req.keep_alive)
        else:
            w.problems.log(logging.ERROR, "unreadable", "worker %d: cannot open %s (%s): answering 500",
                           w.index, entry.fs_path, exc.strerror)
            self._send_error(500, req, close=not req.keep_alive)

    def _send_file(self, req: Request, status: int, f: int, offset: int, count: int, head_len: int) -> None:
        w = self.w
        if self.sock_fd < 0 or w.add_writer is None or self.transport.get_write_buffer_size():
            # TLS (or a loop without writer callbacks, or a head still queued
            # because the socket is full): asyncio's sendfile, which waits for
            # the transport to drain (and reads and writes in bounded chunks
            # where it cannot use sendfile(2)).
            self.busy = True
            self.deadline = w.clock + SEND_TIMEOUT
            self.task = w.loop.create_task(
                self._send_file_rest(req, status, open(f, "rb", buffering=0), offset, count, head_len,
                                     count))
            return
        self.sending = _FileSend(req, status, f, offset, count, head_len)
        self.busy = True
        self._send_some(inline=True)

    def _send_some(self, inline: bool = False) -> None:
        """sendfile(2) straight to the socket until done or the socket is full.

        The transport is idle meanwhile (its buffer is empty and nothing else is
        written until this response is done), so writing around it keeps order.
        `inline`: called from the request loop, which goes on by itself.
        """
        job = self.sending
        if job is None or self.closing:
            return
        try:
            n = os.sendfile(self.sock_fd, job.file, job.offset, job.remaining)
            if n == 0:
                raise OSError("file shorter than its table entry")
        except BlockingIOError:
            n = 0
        except OSError as exc:
            if exc.errno not in _CLIENT_GONE:
                self.w.problems.log(logging.ERROR, "send", "worker %d: sending %s failed (%s); the "
                                    "download was cut", self.w.index, job.req.path.decode("latin-1"),
                                    exc.strerror or exc)
            self._end_send(job)
            self._log(job.req, job.status, job.count - job.remaining)
            self.closing = True
            self.transport.abort()
            return
        job.offset += n
        job.remaining -= n
        if job.remaining:
            # A short count means the socket buffer is full: wait until it
            # drains rather than pay for a call that would only say EAGAIN.
            self.deadline = self.w.clock + SEND_TIMEOUT
            if not job.waiting:
                job.waiting = True
                self.w.add_writer(self.sock_fd, self._send_some)
            return
        self._end_send(job)
        req = job.req
        self._account(req, job.status, job.head_len + job.count, job.count)
        self.busy = False
        if not req.keep_alive:
            self.closing = True
            self.transport.close()
            return
        if not inline:
            self._continue()

    def _end_send(self, job: _FileSend) -> None:
        if job.waiting:
            self.w.remove_writer(self.sock_fd)
        os.close(job.file)
        self.sending = None

    async def _send_file_rest(self, req: Request, status: int, f, offset: int, remaining: int,
                              done: int, count: int) -> None:
        w = self.w
        try:
            while remaining > 0:
                n = await w.loop.sendfile(self.transport, f, offset, min(remaining, SENDFILE_STEP))
                if n <= 0:
                    raise OSError("file shorter than its table entry")
                offset += n
                remaining -= n
                done += n
                self.deadline = w.clock + SEND_TIMEOUT
        except (asyncio.CancelledError, OSError, RuntimeError) as exc:
            if isinstance(exc, OSError) and exc.errno not in _CLIENT_GONE:
                w.problems.log(logging.ERROR, "send", "worker %d: sending %s failed (%s); the download "
                               "was cut", w.index, req.path.decode("latin-1"), exc.strerror or exc)
            f.close()
            self._log(req, status, count - remaining)
            self.closing = True
            if self.transport is not None:
                self.transport.abort()
            return
        f.close()
        self._account(req, status, done, count)
        self.busy = False
        if not req.keep_alive:
            self.closing = True
            self.transport.close()
            return
        self._continue()

    def _not_modified(self, req: Request, entry: FileEntry) -> None:
        head = (STATUS_LINES[304] + SERVER + self.w.date.get() + b"ETag: " + entry.etag
                + b"\r\nLast-Modified: " + entry.last_modified + b"\r\n" + _connection(req) + b"\r\n")
        self._finish(req, 304, head, 0)
        self._remember(req, 304, head, 0)

    def _remember(self, req: Request, status: int, data: bytes, body_len: int,
                  file: tuple[str, int, int] | None = None) -> None:
        """Remember a whole answer (`data`), or a head and the file span to send."""
        key = self.memo_key
        if key is not None and self.user is None:
            self.w.memo.put(key, (req, status, data, body_len, file))

    def _send_error(self, status: int, req: Request | None, *, close: bool, extra: bytes = b"",
                    body: bytes | None = None) -> None:
        if req is not None and not req.keep_alive:
            close = True
        data = error_response(status, self.w.date.get(), close=close, extra=extra, body=body,
                              head_only=req is not None and req.method == b"HEAD")
        self._finish(req, status, data, len(body) if body else 0, close=close)

    def _finish(self, req: Request | None, status: int, data: bytes, body_len: int,
                close: bool | None = None) -> None:
        self.transport.write(data)
        self._account(req, status, len(data), body_len)
        if close if close is not None else (req is None or not req.keep_alive):
            self.closing = True
            self.transport.close()

    def _account(self, req: Request | None, status: int, wire_bytes: int, body_len: int) -> None:
        slot = self.w.slot
        slot.bytes_sent += wire_bytes
        slot.responses[status // 100] += 1
        if self.w.log_requests:
            self._log(req, status, body_len)

    def _log(self, req: Request | None, status: int, body_len: int) -> None:
        if req is None:
            self.w.access_log.record(self.addr, None, None, status, body_len, None, None)
        else:
            self.w.access_log.record(self.addr, self.user, req.line, status, body_len,
                                     req.referer, req.user_agent)

    # -- the worker's sweep -----------------------------------------------------------
    def expire(self) -> None:
        """The deadline passed: idle, too slow to send its head, or stalled."""
        if self.closing:
            return
        self.closing = True
        if self.busy or self.write_paused:
            self.transport.abort()
        elif self.idle:
            self.transport.close()
        else:
            self._send_error(408, None, close=True)

    def shut(self) -> None:
        """The server is stopping: close now if idle, else after this response."""
        if not self.busy and not self.buf:
            self.closing = True
            self.transport.close()


class _FileSend:
    """A file response in progress."""

    __slots__ = ("req", "status", "file", "offset", "remaining", "count", "head_len", "waiting")

    def __init__(self, req: Request, status: int, f, offset: int, count: int, head_len: int):
        self.req, self.status, self.file = req, status, f
        self.offset, self.remaining, self.count = offset, count, count
        self.head_len, self.waiting = head_len, False


def _connection(req: Request) -> bytes:
    if not req.keep_alive:
        return _CLOSE
    return _KEEP_ALIVE_10 if req.version == 10 else b""


def clean_path(raw: bytes) -> bytes | None:
    """The request path with repeated slashes merged, decoded once and checked,
    None for a folder ("/", "/eset_upd/", "//"), or UnsafePathError.

    Only paths the tables do not hold as written come here, so a normal
    request pays nothing for the merging.

    Encoded separators, backslashes and NUL are refused before decoding, so
    that no spelling of `..` or of a path separator reaches the lookup. A
    folder names no file (404, not 400), but is checked all the same.
    """
    lowered = raw.lower()
    if b"%2f" in lowered or b"%5c" in lowered or b"%00" in lowered or b"\\" in raw or b"\0" in raw:
        raise UnsafePathError("request: encoded separator, backslash or NUL in the path")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise UnsafePathError("request: raw non-ASCII bytes in the path") from None
    if text.endswith("/"):
        folder = text.rstrip("/")
        if folder:
            normalise_path(folder, "request")
        return None
    return normalise_path(text, "request").encode("utf-8")
