"""`updmirror demo`: the whole chain on one machine, on loopback.

A simulated vendor (signed synthetic repository, Basic authentication), a
mirror that syncs from it and serves on port 2221, a second-tier mirror
(an `updmirror run` daemon) that replicates from that mirror, planning from
its manifest, and serves on the next port, and endpoints updating from
each; then the vendor releases a new build, the mirror syncs only what
changed, the second-tier mirror hears of it by the mirror's announcement
(not by its hourly schedule) and syncs within seconds, and the endpoints
update again. Each mirror's status page shows the chain of hops and its
age against the vendor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from updmirror import config
from updmirror.errors import UpdmirrorError

VENDOR_USER = "EAV-0123456789"
VENDOR_PASSWORD = "Demo-Pass1"   # the simulated vendor's licence; a real one lives in password_file
TREES = ("ep11", "v16", "v5")
CLIENTS = (   # (tree, platform, language): v5 asks for /update.ver, the others for /dll/update.ver
    ("ep11", "x64", 1033), ("ep11", "x64", 1049), ("ep11", "x86", 1033), ("ep11", "arm64", 1031),
    ("v16", "x64", 1033), ("v16", "x86", 1058), ("v5", "x86", 1033), ("v5", "x64", 1049),
)
#: The endpoints of the branch office, which update from the second-tier mirror.
BRANCH_CLIENTS = (("ep11", "x64", 1033), ("v16", "x64", 1031), ("v5", "x86", 1033))
MIRROR, BRANCH = "mirror-1", "branch-mirror"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run a simulated vendor, a mirror on port 2221 and clients",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="demo-data", help="where the demo keeps its files (default: ./demo-data)")
    p.add_argument("--port", type=int, default=config.DEFAULT_PORT,
                   help="mirror port (default 2221; the second-tier mirror takes the next free one)")
    p.add_argument("--size-mb", type=float, default=8, help="size of the simulated repository")
    p.add_argument("--serve", action="store_true",
                   help="keep the mirrors serving at the end until Ctrl-C (see their /status pages)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return asyncio.run(Demo(args).run())


class Demo:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.dir = Path(args.dir).resolve()
        self.console = Console(highlight=False)
        self.vendor_root = self.dir / "vendor"
        self.config_path = self.dir / "mirror.toml"
        self.branch_config_path = self.dir / "branch-mirror.toml"
        self.mirror: subprocess.Popen | None = None
        self.branch: subprocess.Popen | None = None
        self.port = args.port
        self.branch_port = args.port + 1

    def say(self, text: str) -> None:
        # The demo tells the story itself; the sync's own log lines would repeat it.
        logging.getLogger("updmirror.sync").setLevel(logging.WARNING)
        self.console.print(f"[bold cyan]demo[/] {text}")

    async def run(self) -> int:
        """The demo; SIGTERM or SIGHUP end it as Ctrl-C does, servers stopped."""
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        stopped_by: list[int] = []

        def stop(sig: int) -> None:
            stopped_by.append(sig)
            main.cancel()

        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop, sig)
        try:
            return await self._run()
        except asyncio.CancelledError:
            if not stopped_by:
                raise
            self.say(f"stopped by {signal.Signals(stopped_by[0]).name}; the mirrors and the vendor are stopped")
            return 128 + stopped_by[0]
        finally:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    async def _run(self) -> int:
        from updmirror.vendor.generate import VendorState, generate
        from updmirror.vendor.server import VendorServer

        self.dir.mkdir(parents=True, exist_ok=True)
        if not (self.vendor_root / "vendor.json").exists():
            self.say(f"generating a simulated vendor repository ({self.args.size_mb:g} MB) in {self.vendor_root}")
            report = await asyncio.to_thread(generate, self.vendor_root, seed=1, size_mb=self.args.size_mb,
                                             trees=TREES)
            self.console.print(report.summary())
        state = VendorState.load(self.vendor_root)
        vendor = VendorServer(self.vendor_root / "www", VENDOR_USER, VENDOR_PASSWORD).start()
        try:
            self.say(f"simulated vendor at {vendor.url} (Basic auth as {VENDOR_USER}), "
                     f"signing key {state.fingerprint}")
            self.port = _free_port(self.port)
            legacy = state.other_fingerprint[-16:]
            base = f"http://127.0.0.1:{self.port}"
            self.branch_port = _free_port(self.port + 1, avoid=self.port)
            branch = f"http://127.0.0.1:{self.branch_port}"
            self._write_config(self.config_path, MIRROR, vendor.url, self.port, "store", state.fingerprint, legacy,
                               account=(VENDOR_USER, VENDOR_PASSWORD))
            self._write_config(self.branch_config_path, BRANCH, base + "/", self.branch_port, "branch-store",
                               state.fingerprint, legacy)
            cfg = config.load(self.config_path)
            branch_cfg = config.load(self.branch_config_path)
            await self._sync(cfg, f"first sync of {MIRROR}: the whole repository from the vendor")
            self.mirror = self._start_server(self.config_path, self.port)
            self.say(f"{MIRROR} serving on {base} (status page: {base}/status)")
            await self._sync(branch_cfg, f"first sync of the second-tier mirror {BRANCH}, from {MIRROR}")
            self.branch = self._start_server(self.branch_config_path, self.branch_port, command="run")
            self.say(f"{BRANCH} serving on {branch} (status page: {branch}/status) as 'updmirror run': "
                     f"it syncs every hour, and at once when {MIRROR} announces a new snapshot")
            versions = await self._clients(base, CLIENTS, state.fingerprint, legacy,
                                           f"clients update from {MIRROR}")
            branch_versions = await self._clients(branch, BRANCH_CLIENTS, state.fingerprint, legacy,
                                                  f"branch-office clients update from {BRANCH}", "branch-clients")

            from updmirror.vendor.publish import publish
            self.say("the vendor releases a new build")
            release = await asyncio.to_thread(publish, self.vendor_root)
            self.console.print(release.summary())
            report = await self._sync(cfg, f"second sync of {MIRROR}: only what the release changed")
            await self._wait_serving(self.port, report.published)
            published, since = time.monotonic(), report.finished or time.time()
            await self._sync(cfg, f"third sync of {MIRROR}: nothing changed upstream (one request per index)")
            self.say(f"{BRANCH} hears of {MIRROR}'s new snapshot (GET /updmirror/announce) and syncs")
            tier = await self._wait_branch_sync(branch_cfg, since - 1)
            await self._wait_serving(self.branch_port, tier["published"])
            self.console.print(f"  {tier['message']}")
            self.console.print(f"  served by {BRANCH} {time.monotonic() - published:.1f} s after {MIRROR} "
                               "published it (its hourly schedule was not due)")
            self.console.print(f"  {tier['files_confirmed_by_manifest']} file(s) kept on the manifest's word "
                               f"without reading them; {tier['files_fetched']} new file(s) fetched and verified "
                               f"with {BRANCH}'s own pinned key ({tier['bytes_hashed']:,} bytes hashed)")
            after = await self._clients(base, CLIENTS, state.fingerprint, legacy, "clients update again")
            newer = sum(1 for k in after if (after[k] or 0) > (versions.get(k) or 0))
            self.say(f"{newer} of {len(after)} clients got a newer version; the mirror fetched "
                     f"{report.files_fetched} new files, not the whole repository")
            branch_after = await self._clients(branch, BRANCH_CLIENTS, state.fingerprint, legacy,
                                               "branch-office clients update again", "branch-clients")
            newer = sum(1 for k in branch_after if (branch_after[k] or 0) > (branch_versions.get(k) or 0))
            self.say(f"{newer} of {len(branch_after)} branch-office clients got a newer version")
            self._show_chain(branch_cfg)
            self.say(f"status pages: {base}/status and {branch}/status (also /status.json and /metrics)")
            if self.args.serve:
                self.say(f"the mirrors keep serving on {base} and {branch} - press Ctrl-C to stop")
                while self.mirror.poll() is None and self.branch.poll() is None:
                    await asyncio.sleep(1)
            return 0
        finally:
            self._stop_server(self.branch)
            self._stop_server(self.mirror)
            vendor.stop()

    async def _wait_branch_sync(self, cfg: config.Config, since: float, timeout: float = 60) -> dict:
        """The run record of the daemon's first sync started after `since` (epoch) that published."""
        from updmirror.store import Store
        from updmirror.store.records import read_runs

        state = Store(cfg.mirror.root).state
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for run in reversed(read_runs(state, limit=5)):
                if run.get("started", 0) < since:
                    continue
                if not run.get("ok"):
                    raise UpdmirrorError(f"{BRANCH}'s sync failed: {run.get('message')}")
                if run.get("published"):
                    return run
            if self.branch is not None and self.branch.poll() is not None:
                raise UpdmirrorError(f"{BRANCH}'s daemon exited with code {self.branch.returncode}")
            await asyncio.sleep(0.1)
        raise UpdmirrorError(f"{BRANCH} did not sync {MIRROR}'s new snapshot within {timeout:g} s")

    def _show_chain(self, cfg: config.Config) -> None:
        """The chain of mirrors the second-tier mirror's status shows, vendor-facing first."""
        from updmirror.status import collect_status, duration
        from updmirror.store import Store

        facts = collect_status(Store(cfg.mirror.root), cfg, {})
        for index in facts["indexes"][:1]:
            steps = " -> ".join(f"{h['name']} (synced {time.strftime('%H:%M:%S', time.gmtime(h['synced_at']))}, "
                                f"lag {duration(h['lag_seconds'])})" for h in index["hops"])
            self.say(f"the chain of {index['tree']} at {BRANCH}: vendor -> {steps} UTC; its data is "
                     f"{duration(index['age_vs_vendor_seconds'])} old against the vendor")

    def _write_config(self, path: Path, name: str, upstream_url: str, port: int, store: str,
                      fingerprint: str, legacy_key_id: str, account: tuple[str, str] | None = None) -> None:
        q = json.dumps   # a JSON string is a TOML basic string, quotes and backslashes escaped
        login = f"username = {q(account[0])}\npassword = {q(account[1])}\n" if account else ""
        path.write_text(f"""# written by 'updmirror demo'
[upstream]
url = {q(upstream_url)}
{login}
[mirror]
name = {q(name)}
root = {q(str(self.dir / store))}
trees = {q(list(TREES))}
channels = ["regular"]

[verify]
# the simulated vendor's key; a real mirror pins the vendor's fingerprint
signing_keys = [{q(fingerprint)}]
# its legacy DSA key, which alone signs its modules of 2010 (the vendor's: C8FCA002067B03C9)
legacy_key_ids = [{q(legacy_key_id)}]

[http]
listen = [{q(f"127.0.0.1:{port}")}]
default_tree = "ep11"
workers = 1
""")

    async def _sync(self, cfg: config.Config, title: str):
        from updmirror.sync.engine import run_sync

        self.say(title)
        report = await run_sync(cfg, progress=True)
        if not report.ok:
            raise UpdmirrorError(f"demo sync failed: {report.message}")
        self.console.print(f"  {report.message} ({report.requests} requests)")
        return report

    def _start_server(self, config_path: Path, port: int, command: str = "serve") -> subprocess.Popen:
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        server = subprocess.Popen([sys.executable, "-m", "updmirror", "-q", command, "-c",
                                   str(config_path)], env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise UpdmirrorError(f"the mirror server exited with code {server.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return server
            except OSError:
                time.sleep(0.1)
        self._stop_server(server)
        raise UpdmirrorError(f"the mirror server did not listen on 127.0.0.1:{port} within 20 s")

    async def _wait_serving(self, port: int, snapshot: str | None) -> None:
        """Until the server on `port` serves `snapshot` (it looks for a new one about
        once a second), read from its tier manifest; at most 10 s."""
        if snapshot is None:
            return
        import urllib.request

        from updmirror.store.tiers import TIER_MANIFEST_PATH

        url = f"http://127.0.0.1:{port}/{TIER_MANIFEST_PATH}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:   # noqa: S310 - loopback
                    if json.loads(resp.read()).get("snapshot") == snapshot:
                        return
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.1)
        raise UpdmirrorError(f"the mirror server on 127.0.0.1:{port} did not serve snapshot {snapshot} "
                             "within 10 s")

    @staticmethod
    def _stop_server(server: subprocess.Popen | None) -> None:
        if server and server.poll() is None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()

    async def _clients(self, base: str, clients, fingerprint: str, legacy_key_id: str,
                       title: str, folder: str = "clients") -> dict[str, int | None]:
        from rich.table import Table

        from updmirror.client import Client, Endpoint, Source, UpdateFailed

        self.say(title)
        source = Source.parse(base)
        endpoints = [Endpoint(tree, platform, lang, pinned=(fingerprint,),
                              legacy_key_ids=(legacy_key_id,)) for tree, platform, lang in clients]

        async def one(e: Endpoint):
            try:
                return await client.update(self._client_dir(e, folder), [source], e)
            except UpdateFailed as exc:
                return exc

        async with Client() as client:
            results = await asyncio.gather(*(one(e) for e in endpoints))
        table = Table("client", "asks for", "version", "downloaded", "kept", "result")
        versions = {}
        for e, r in zip(endpoints, results, strict=True):
            key = f"{e.tree} {e.platform} {e.language}"
            if isinstance(r, UpdateFailed):
                table.add_row(key, "/" + e.index_paths[0], "-", "-", "-", f"[red]{r.failures[0].message}[/]")
                continue
            versions[key] = r.version
            table.add_row(key, "/" + e.index_paths[0], str(r.version),
                          f"{r.downloaded_files} ({r.downloaded_bytes:,} B)", str(r.kept_files),
                          _result(r))
        self.console.print(table)
        done = [r for r in results if not isinstance(r, UpdateFailed)]
        self.console.print(f"  {sum(r.downloaded_files for r in done)} files "
                           f"({sum(r.downloaded_bytes for r in done):,} bytes) downloaded in all; each client "
                           f"installs into its own folder under {self.dir / folder}")
        failed = [r for r in results if isinstance(r, UpdateFailed)]
        if failed:
            raise UpdmirrorError(f"{len(failed)} client(s) failed: {failed[0]}")
        return versions

    def _client_dir(self, e, folder: str) -> Path:
        return self.dir / folder / f"{e.tree}-{e.platform}-{e.language}"


def _result(r) -> str:
    done = "[green]installed[/]" if r.status == "updated" else "up to date"
    if r.unchecked_files:
        done += f", [yellow]{r.unchecked_files} legacy DSA-only not signature-checked[/]"
    return done


def _free_port(wanted: int, avoid: int | None = None) -> int:
    if wanted != avoid:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", wanted))
                return wanted
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    Console(stderr=True).print(f"[yellow]demo: port {wanted} is in use; the mirror uses {port} instead[/]")
    return port
