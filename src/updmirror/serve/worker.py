"""One serving process: an event loop, its listening sockets, the tables of
the snapshot it serves, and the once-a-second housekeeping.

Housekeeping (`_tick`) does everything that must not cost per request:
enforce connection deadlines, publish counters to shared memory, flush the
access log, and look at the store's `current` link (one readlink) to load
the tables of a new snapshot in a thread while the old ones keep serving
(a broken link keeps them, and is said once a minute); also accept again
after an accept error, and stop when the master is gone. Between two looks,
a request for a path the tables lack asks whether `current` moved before it
is answered 404 (`current_moved`, `catch_up`): workers switch on their own
clocks, and another may already have served the new index.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import ssl
import time
from typing import Any

from updmirror import config, status
from updmirror.config import Config
from updmirror.errors import ConfigError, UpdmirrorError
from updmirror.store.snapshots import Store
from updmirror.store.tiers import served_tier_manifest

from . import tables as tables_mod
from .accesslog import AccessLog
from .allow import AllowList
from .announce import Announcements
from .auth import GuessLimit, Htpasswd
from .capacity import capacity, open_files_limit
from .counters import Counters
from .httpcore import DateCache
from .loglimit import LogLimit
from .memo import ResponseMemo
from .protocol import Connection

log = logging.getLogger(__name__)

#: Pending connections the kernel queues per listening socket.
BACKLOG = 4096
#: On shutdown, responses in flight get this long to finish.
SHUTDOWN_GRACE = 10.0
#: A request that missed waits at most this long for a new snapshot's tables.
CATCH_UP_SECONDS = 10.0
#: Sockets accepted per readiness event (more wait for the next one).
ACCEPT_BATCH = 32

STATUS_TYPES = {"html": status.HTML_CONTENT_TYPE.encode(), "json": status.JSON_CONTENT_TYPE.encode(),
                "metrics": status.METRICS_CONTENT_TYPE.encode()}


def load_password_check(cfg: Config) -> Htpasswd | None:
    """The htpasswd file when the configuration needs passwords, else None.

    Raises ConfigError (exit 2) naming mirror.toml, the key and the file
    when it cannot be read.
    """
    http = cfg.http
    if http.auth != "basic" and http.status_access != "admin":
        return None
    if http.htpasswd is None:
        raise ConfigError(f'{cfg.path}: [http] status_access = "admin" needs an htpasswd file: '
                          "set [http] htpasswd")
    try:
        return Htpasswd.load(http.htpasswd)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.path}: [http] htpasswd: {exc}") from None


def tls_context(cfg: Config) -> ssl.SSLContext | None:
    http = cfg.http
    if http.tls_cert is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(http.tls_cert, http.tls_key)
    except FileNotFoundError as exc:
        raise ConfigError(f"{exc.filename or http.tls_cert}: TLS certificate or key not found; "
                          f"check [http] tls_cert and tls_key in {cfg.path}") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{http.tls_cert}, {http.tls_key}: cannot load the TLS certificate and "
                          f"key ({getattr(exc, 'strerror', None) or exc}); check [http] tls_cert "
                          f"and tls_key in {cfg.path}") from None
    return ctx


class Worker:
    def __init__(self, cfg: Config, sockets: list[socket.socket], counters: Counters, *,
                 index: int = 0, ssl_context: ssl.SSLContext | None = None):
        self.cfg = cfg
        self.store = Store(cfg.mirror.root)
        self.sockets = sockets
        self.counters = counters
        self.slot = counters.slot(index)
        self.index = index
        self.ssl = ssl_context
        self.tls = ssl_context is not None
        self.connections: set[Connection] = set()
        self.capacity = capacity(cfg.http.max_connections, cfg.http.max_connections_per_address,
                                 counters.workers, open_files_limit())
        self.max_connections = self.capacity.connections
        self.max_per_address = self.capacity.per_address
        #: Connections held per client (allow.client_key), for max_per_address.
        self.per_address: dict[str, int] = {}
        #: Accepted sockets whose transport (and TLS handshake) is being set up.
        self.adopting = 0
        self.accepting = False
        self._accept_failed = False
        self.date = DateCache()
        self.clock = time.monotonic()
        self.stopping = False
        #: The master; a worker whose master is gone (killed) stops, or it
        #: would keep the port with nothing to restart or reload it.
        self.parent = os.getppid()
        #: Problems met per request or per second are logged once a minute.
        self.problems = LogLimit(log)
        self.guesses = GuessLimit(counters.guesses)
        self.memo = ResponseMemo()
        self.add_writer = self.remove_writer = None
        self.allow_generation = 0
        self._apply(cfg, load_password_check(cfg))
        self.access_log = AccessLog(cfg.http.access_log)
        self.log_requests = self.access_log.enabled
        self.link = self._read_link()
        #: Why `current` cannot be followed, while it cannot.
        self.pointer_problem: str | None = None
        self.tables, self.pointer_problem = self._load(None)
        self.slot.serving(self.tables.current_id)
        #: Lower mirrors waiting for the next snapshot (GET /updmirror/announce).
        self.announce = Announcements(self)
        self._build: asyncio.Task | None = None
        #: The link whose tables failed to build; the once-a-second check retries it.
        self._failed_link: str | None = None
        self._stop: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _apply(self, cfg: Config, passwords: Htpasswd | None) -> None:
        """Take the settings that may change on reload (SIGHUP). A new htpasswd
        object forgets the passwords checked under the old file."""
        self.allow = AllowList(cfg.http.allow)
        self.allow_generation += 1
        self.htpasswd = passwords
        self.auth = self.htpasswd if cfg.http.auth == "basic" else None
        self.status_admin = cfg.http.status_access == "admin"
        self.admin_users = frozenset(cfg.http.admin_users)
        self.cfg = cfg
        # Remembered answers were given under the old settings.
        self.memo = ResponseMemo(enabled=self.auth is None)

    # -- running ------------------------------------------------------------------
    async def run(self, *, handle_signals: bool = True, ready: Any = None) -> None:
        loop = self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # sendfile(2) driven by writability callbacks of the selector loop; a
        # loop without them falls back to loop.sendfile.
        self.add_writer = getattr(loop, "_add_writer", None)
        self.remove_writer = getattr(loop, "_remove_writer", None)
        if handle_signals:
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
            # The master starts workers with these blocked until now.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP, signal.SIGTERM, signal.SIGINT})
        self._listen()
        self._log_serving()
        if self.pointer_problem is not None:
            self._warn_pointer()
        tick = loop.call_later(1.0, self._tick)
        if ready is not None:
            ready()
        try:
            await self._stop.wait()
        finally:
            tick.cancel()
            await self._shutdown()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def stop_threadsafe(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.stop)

    async def _shutdown(self) -> None:
        self.stopping = True
        self._pause_accepting()
        for sock in self.sockets:
            sock.close()
        self.announce.release_all()
        for conn in list(self.connections):
            conn.shut()
        until = time.monotonic() + SHUTDOWN_GRACE
        while self.connections and time.monotonic() < until:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(0)
        self._flush_counters()
        self.access_log.close()

    def _tick(self) -> None:
        now = self.clock = time.monotonic()
        late = [c for c in self.connections if c.deadline < now]
        for conn in late:
            conn.expire()
        self._flush_counters()
        self.access_log.flush()
        self._check_snapshot()
        if self.pointer_problem is not None:
            self._warn_pointer()
        if self._accept_failed:
            self._listen()
        if os.getppid() != self.parent:
            log.error("worker %d: the master process (pid %d) is gone; stopping", self.index, self.parent)
            self.stop()
        self.loop.call_later(1.0, self._tick)

    # -- accepting ------------------------------------------------------------------
    # Not asyncio's Server: it accepts whatever the kernel queued, and on EMFILE
    # logs a traceback for each of up to `backlog` attempts a second. Here no
    # more sockets are accepted than the capacity can hold (the rest wait in
    # the kernel's queue), and a failure is one line a minute.
    def _listen(self) -> None:
        self._accept_failed = False
        if self.accepting or self.stopping:
            return
        for sock in self.sockets:
            self.loop.add_reader(sock.fileno(), self._accept, sock)
        self.accepting = True

    def _pause_accepting(self) -> None:
        if self.accepting:
            for sock in self.sockets:
                self.loop.remove_reader(sock.fileno())
            self.accepting = False

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            if len(self.connections) + self.adopting >= self.capacity.ceiling:
                self._pause_accepting()    # connection_closed() resumes
                return
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                # Out of descriptors or memory (another process may hold them):
                # new clients wait in the queue; the next tick tries again.
                self.problems.log(logging.ERROR, "accept", "worker %d: cannot accept connections (%s); "
                                  "new clients wait until it can: raise the open files limit "
                                  "(LimitNOFILE) or lower [http] max_connections", self.index,
                                  exc.strerror or exc)
                self._pause_accepting()
                self._accept_failed = True
                return
            self.adopting += 1
            self.loop.create_task(self._adopt(conn))

    async def _adopt(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: Connection(self), conn, ssl=self.ssl)
        except Exception as exc:   # a TLS handshake that failed or timed out, a reset
            log.debug("worker %d: a connection ended before it began: %r", self.index, exc)
        finally:
            self.adopting -= 1
            self.connection_closed()

    def connection_closed(self) -> None:
        """A descriptor was freed: accept again once there is room."""
        if (not self.accepting and not self._accept_failed and not self.stopping
                and len(self.connections) + self.adopting < self.capacity.ceiling - ACCEPT_BATCH // 2):
            self._listen()

    # -- snapshots ----------------------------------------------------------------
    def _read_link(self) -> str | None:
        try:
            return os.readlink(self.store.current_link)
        except OSError:
            return None

    def _check_snapshot(self, force: bool = False) -> None:
        link = self._read_link()
        expiry = self.tables.next_expiry
        if not (force or link != self.link or (expiry is not None and time.time() >= expiry)):
            return
        if self._build is not None and not self._build.done():
            return
        self._build = self.loop.create_task(self._rebuild(link))

    def current_moved(self) -> bool:
        """Whether `current` points elsewhere than the tables served (one readlink).

        Asked before answering 404: workers switch on their own clocks, so
        another worker may already have served the index of a snapshot whose
        files this one has not loaded yet.
        """
        if self._build is not None and not self._build.done():
            return True
        link = self._read_link()
        return link != self.link and link != self._failed_link

    async def catch_up(self) -> None:
        """Serve the snapshot `current` points at now: wait for the tables being
        built, or build them (at most twice, within CATCH_UP_SECONDS)."""
        until = time.monotonic() + CATCH_UP_SECONDS
        builds = 0
        while (left := until - time.monotonic()) > 0:
            build = self._build
            if build is not None and not build.done():
                await asyncio.wait({build}, timeout=left)
                continue
            if self._read_link() == self.link or builds >= 2:
                return
            builds += 1
            self._check_snapshot(force=True)

    def _load(self, previous: tables_mod.Tables | None) -> tuple[tables_mod.Tables, str | None]:
        """The tables for the store as it is now, and what is wrong with its
        pointer. A broken pointer changes nothing clients see: the last good
        tables stay; at start-up, the newest snapshot is the last one published
        (a snapshot only reaches snapshots/ by being published)."""
        grace, default_tree = self.cfg.mirror.grace, self.cfg.http.default_tree
        snapshot, problem = self.store.current_state()
        if problem is None:
            return tables_mod.build(self.store, grace, default_tree, previous, current=snapshot), None
        if previous is not None and previous.current is not None:
            return previous, problem
        newest = next(iter(self.store.snapshots()), None)
        return tables_mod.build(self.store, grace, default_tree, previous, current=newest), problem

    async def _rebuild(self, link: str | None) -> None:
        try:
            new, problem = await self.loop.run_in_executor(None, self._load, self.tables)
        except Exception as exc:
            self._failed_link = link
            log.debug("worker %d: building the tables failed", self.index, exc_info=True)
            self.problems.log(logging.ERROR, "tables", "worker %d: cannot load the snapshot tables (%s); "
                              "still serving %s", self.index, exc, self.tables.current_id)
            return
        self._failed_link = None
        changed = new.current_id != self.tables.current_id
        self.tables = new
        self.slot.serving(new.current_id)
        self.memo.renew()
        self.link = link
        was, self.pointer_problem = self.pointer_problem, problem
        if problem is not None and problem != was:
            self.problems.forget("pointer")     # a new kind of damage: say it now
        if problem is None and was is not None:
            self.problems.forget("pointer")
            log.warning("worker %d: the store's current pointer is good again", self.index)
        if changed or (problem is None and was is not None):
            self._log_serving()
        if changed:
            self.announce.switched()

    def _warn_pointer(self) -> None:
        self.problems.log(logging.ERROR, "pointer", "worker %d: the store's current pointer is broken: %s; "
                          "still serving snapshot %s. Run 'updmirror sync' to publish a new snapshot, "
                          "which repairs it", self.index, self.pointer_problem, self.tables.current_id,
                          tally=False)

    def _log_serving(self) -> None:
        t = self.tables
        if t.current is None:
            log.warning("worker %d: the store %s has no snapshot yet; answering 404 until a sync "
                        "publishes one (run: updmirror sync)", self.index, self.store.root)
        else:
            log.info("worker %d: serving snapshot %s (%d files%s)", self.index, t.current_id,
                     len(t.files), f", and files of {len(t.grace_ids)} in their grace period"
                     if t.grace_ids else "")

    # -- SIGHUP ---------------------------------------------------------------------
    def reload(self) -> None:
        """Re-read the allow list and the htpasswd file; open connections stay."""
        try:
            cfg = config.load(self.cfg.path)
            self._apply(cfg, load_password_check(cfg))
            log.info("worker %d: reloaded the allow list and passwords from %s", self.index,
                     self.cfg.path)
        except UpdmirrorError as exc:
            log.error("reload failed, keeping the previous settings: %s", exc)
        try:
            self.access_log.reopen()
        except ConfigError as exc:
            log.error("%s", exc)
        if self.loop is not None:
            self._check_snapshot(force=True)

    def render_tier_manifest(self) -> bytes | None:
        """The manifest of the snapshot served, for lower mirrors (None: it has none)."""
        current = self.tables.current
        return served_tier_manifest(self.store, current) if current is not None else None

    # -- status pages ---------------------------------------------------------------
    def _flush_counters(self) -> None:
        # A gauge read where it lives rather than kept up to date at every change.
        self.slot.announce_waiting = len(self.announce.waiting)
        self.slot.flush()

    def render_status(self, kind: str) -> tuple[bytes, bytes]:
        self._flush_counters()
        render = {"html": status.render_status_html, "json": status.render_status_json,
                  "metrics": status.render_metrics}[kind]
        return render(self.store, self.cfg, self.counters.snapshot()), STATUS_TYPES[kind]
