"""The master process: check the configuration, bind the ports, start the
worker processes, restart a crashed one, pass on SIGHUP, stop on SIGTERM;
and, when given one, run a schedule coroutine beside them (`updmirror run`
passes the daemon's, which starts each sync as a process of its own).

Everything that can fail because of the configuration (a port in use, a
missing certificate, an unreadable htpasswd file) is tried here before any
worker starts, so it ends in one line and exit code 2.

Workers each get their own listening socket with SO_REUSEPORT, so the
kernel spreads new connections over them; they share nothing but the
counters' shared memory and the store on disk.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable

from updmirror.config import Config, parse_listen
from updmirror.errors import ConfigError

from .accesslog import AccessLog
from .allow import is_loopback_host
from .capacity import capacity, raise_open_files_limit
from .counters import Counters
from .worker import BACKLOG, SHUTDOWN_GRACE, Worker, load_password_check, tls_context

log = logging.getLogger(__name__)

#: Signals held back while a process cannot yet handle them (see Master.run).
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
#: A worker that exits with this code hit a configuration error: no restart.
EXIT_CONFIG = 3
#: More crashes than this within CRASH_WINDOW seconds and the server gives up.
MAX_CRASHES = 5
CRASH_WINDOW = 60.0


def worker_count(cfg: Config) -> int:
    if cfg.http.workers:
        return cfg.http.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def bind(cfg: Config, copies: int) -> list[list[socket.socket]]:
    """One listening socket per listen address for each of `copies` workers.

    Raises ConfigError naming the address and the cause (exit 2).
    """
    per_worker: list[list[socket.socket]] = [[] for _ in range(copies)]
    endpoints = [parse_listen(item) for item in cfg.http.listen]
    for item, (host, port) in zip(cfg.http.listen, endpoints, strict=True):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # "[::]:p" next to "0.0.0.0:p" must not also take the IPv4 side.
        v6only = family == socket.AF_INET6 and any(
            ":" not in h and p == port for h, p in endpoints)
        try:
            if copies == 1:
                per_worker[0].append(_listening(family, host, port, v6only, reuse_port=False))
                continue
            # A plain bind first: SO_REUSEPORT would otherwise happily share the
            # port with another server (or another updmirror) already on it.
            probe = _listening(family, host, port, v6only, reuse_port=False, listen=False)
            port = probe.getsockname()[1]
            probe.close()
            for i in range(copies):
                per_worker[i].append(_listening(family, host, port, v6only, reuse_port=True))
        except OSError as exc:
            for socks in per_worker:
                for s in socks:
                    s.close()
            raise ConfigError(_bind_error(cfg, item, exc)) from None
    return per_worker


def _listening(family: int, host: str, port: int, v6only: bool, *, reuse_port: bool,
               listen: bool = True) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
        sock.bind((host, port))
        if listen:
            sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_error(cfg: Config, item: str, exc: OSError) -> str:
    where = f"{cfg.path}: [http] listen {item!r}"
    if exc.errno == errno.EADDRINUSE:
        return (f"{where}: address already in use; another program (or another updmirror) "
                "listens there: stop it or choose another port")
    if exc.errno == errno.EACCES:
        return (f"{where}: permission denied; ports below 1024 need root or "
                "CAP_NET_BIND_SERVICE: choose a port such as 2221")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: this machine has no such address; use one of its own or 0.0.0.0"
    return f"{where}: cannot listen ({exc.strerror or exc})"


def exposure_warning(cfg: Config) -> str | None:
    """The loud warning for an unauthenticated server on a non-loopback address."""
    if cfg.http.auth != "none":
        return None
    exposed = [item for item in cfg.http.listen if not is_loopback_host(parse_listen(item)[0])]
    if not exposed:
        return None
    bar = "!" * 76
    return (f"\n{bar}\n"
            f"!! updmirror listens on {', '.join(exposed)} WITHOUT AUTHENTICATION (auth = \"none\").\n"
            "!! This mirror serves licensed vendor updates: it MUST NOT be reachable from the\n"
            "!! Internet. Keep it behind a firewall, narrow [http] allow to your networks, or\n"
            f"!! set auth = \"basic\" with an htpasswd file (in {cfg.path}).\n{bar}")


class Master:
    """Runs the server until SIGTERM/SIGINT; `schedule` (for `run`) runs beside it."""

    def __init__(self, cfg: Config, *, schedule: Callable[[asyncio.Event], Awaitable[None]] | None = None,
                 workers: int | None = None):
        self.cfg = cfg
        self.schedule = schedule
        self.workers = workers or worker_count(cfg)
        self.pids: dict[int, int] = {}      # pid -> worker index
        self.crashes: list[float] = []
        self.stopping = False

    def check(self) -> None:
        """Everything the configuration can get wrong, before anything starts."""
        self.ssl = tls_context(self.cfg)
        load_password_check(self.cfg)
        if self.cfg.http.access_log is not None:
            AccessLog(self.cfg.http.access_log).close()

    def run(self) -> int:
        self.check()
        self.sockets = bind(self.cfg, self.workers)
        self.counters = Counters(self.workers)
        warning = exposure_warning(self.cfg)
        if warning:
            log.warning("%s", warning)
        self._fit_open_files()
        scheme = "https" if self.ssl else "http"
        where = ", ".join(f"{scheme}://{_shown(s.getsockname())}" for s in self.sockets[0])
        log.info("listening on %s with %d worker process%s", where, self.workers,
                 "es" if self.workers > 1 else "")
        # Until the event loops handle them, signals wait (a SIGTERM right after
        # start must mean "stop gracefully", not "die"); children start blocked.
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        for i in range(self.workers):
            self._spawn(i)
        try:
            return asyncio.run(self._supervise())
        finally:
            for socks in self.sockets:
                for s in socks:
                    s.close()

    def _fit_open_files(self) -> None:
        """Each client is a descriptor (two while a file is sent): lift the soft
        limit to the hard one, and say so when even that holds fewer
        connections than configured (the workers lower their cap to fit)."""
        http = self.cfg.http
        limit = raise_open_files_limit()
        cap = capacity(http.max_connections, http.max_connections_per_address, self.workers, limit)
        if cap.lowered_from is not None:
            log.warning("the open files limit is %d descriptors per process, enough for %d connections "
                        "per worker: serving at most %d at once, not the %d of [http] max_connections; "
                        "raise LimitNOFILE (systemd) or ulimit -n to serve more", limit,
                        cap.connections, cap.connections * self.workers, http.max_connections)

    def _spawn(self, index: int) -> None:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            self.pids[pid] = index
            return
        code = 1
        try:
            code = self._worker_main(index)
        finally:
            logging.shutdown()
            os._exit(code)

    def _worker_main(self, index: int) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass
        for i, socks in enumerate(self.sockets):
            if i != index:
                for s in socks:
                    s.close()
        try:
            worker = Worker(self.cfg, self.sockets[index], self.counters, index=index,
                            ssl_context=self.ssl)
            asyncio.run(worker.run())
            return 0
        except ConfigError as exc:
            log.error("worker %d: %s", index, exc)
            return EXIT_CONFIG
        except KeyboardInterrupt:
            return 0
        except BaseException:
            log.exception("worker %d failed", index)
            return 1

    async def _supervise(self) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def request_stop() -> None:
            self.stopping = True
            stop.set()

        loop.add_signal_handler(signal.SIGTERM, request_stop)
        loop.add_signal_handler(signal.SIGINT, request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._forward_hup)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        scheduled = loop.create_task(self.schedule(stop)) if self.schedule else None
        result = 0
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.25)
            except asyncio.TimeoutError:
                pass
            verdict = self._reap()
            if verdict is not None:
                result = verdict
                stop.set()
        if scheduled is not None:
            scheduled.cancel()
            try:
                await asyncio.wait_for(scheduled, SHUTDOWN_GRACE)
            except (asyncio.CancelledError, asyncio.TimeoutError):
                pass
            except Exception:
                log.exception("the sync schedule failed while stopping")
        await self._stop_workers()
        # Stopping already: a repeated SIGTERM must not kill the exit on the way.
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        return result

    def _forward_hup(self) -> None:
        log.info("SIGHUP: workers reload the allow list, passwords and access log")
        for pid in self.pids:
            _kill(pid, signal.SIGHUP)

    def _reap(self) -> int | None:
        """Collect exited workers; restart crashed ones. An exit code to stop with, or None.

        Only the workers' pids are waited for: the schedule may have children
        of its own (the daemon's sync processes), whose exit is its business."""
        for pid in list(self.pids):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done == 0:
                continue
            index = self.pids.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                continue
            if code == EXIT_CONFIG:
                return 2
            now = time.monotonic()
            self.crashes = [t for t in self.crashes if now - t < CRASH_WINDOW] + [now]
            if len(self.crashes) > MAX_CRASHES:
                log.error("workers keep failing (%d exits within %.0f s); stopping",
                          len(self.crashes), CRASH_WINDOW)
                return 1
            log.error("worker %d (pid %d) exited with %d; starting a new one", index, pid, code)
            self._spawn(index)
        return None

    async def _stop_workers(self) -> None:
        for pid in self.pids:
            _kill(pid, signal.SIGTERM)
        until = time.monotonic() + SHUTDOWN_GRACE + 5
        while self.pids and time.monotonic() < until:
            for pid in list(self.pids):
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if done:
                    self.pids.pop(pid, None)
            await asyncio.sleep(0.05)
        for pid in list(self.pids):
            log.warning("worker pid %d did not stop in time; killing it", pid)
            _kill(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.pids.clear()


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _shown(sockname: tuple) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(cfg: Config, *, workers: int | None = None,
          schedule: Callable[[asyncio.Event], Awaitable[None]] | None = None) -> int:
    """Serve until stopped; the exit code. Raises UpdmirrorError for a bad configuration."""
    return Master(cfg, schedule=schedule, workers=workers).run()
