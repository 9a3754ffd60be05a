"""`updmirror demo`: the whole chain on one machine, on loopback.

A simulated vendor (signed synthetic repository, Basic authentication), a
mirror that syncs from it and serves on port 2221, and endpoints updating
from the mirror; then the vendor releases a new build, the mirror syncs
only what changed, and the endpoints update again.
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run a simulated vendor, a mirror on port 2221 and clients",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default="demo-data", help="where the demo keeps its files (default: ./demo-data)")
    p.add_argument("--port", type=int, default=config.DEFAULT_PORT, help="mirror port (default 2221)")
    p.add_argument("--size-mb", type=float, default=8, help="size of the simulated repository")
    p.add_argument("--serve", action="store_true",
                   help="keep the mirror serving at the end until Ctrl-C (see its /status page)")
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
        self.mirror: subprocess.Popen | None = None
        self.port = args.port

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
            self.say(f"stopped by {signal.Signals(stopped_by[0]).name}; the mirror and the vendor are stopped")
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
            self._write_config(vendor.url, state.fingerprint, legacy)
            cfg = config.load(self.config_path)
            await self._sync(cfg, "first sync: the whole repository")
            self._start_mirror()
            base = f"http://127.0.0.1:{self.port}"
            self.say(f"mirror serving on {base} (status page: {base}/status)")
            versions = await self._clients(base, state.fingerprint, legacy, "clients update from the mirror")

            from updmirror.vendor.publish import publish
            self.say("the vendor releases a new build")
            release = await asyncio.to_thread(publish, self.vendor_root)
            self.console.print(release.summary())
            report = await self._sync(cfg, "second sync: only what the release changed")
            await self._sync(cfg, "third sync: nothing changed upstream (one request per index)")
            await asyncio.sleep(1.5)   # the server notices the new snapshot within a second
            after = await self._clients(base, state.fingerprint, legacy, "clients update again")
            newer = sum(1 for k in after if (after[k] or 0) > (versions.get(k) or 0))
            self.say(f"{newer} of {len(after)} clients got a newer version; the mirror fetched "
                     f"{report.files_fetched} new files, not the whole repository")
            if self.args.serve:
                self.say(f"the mirror keeps serving on {base} - press Ctrl-C to stop")
                while self.mirror.poll() is None:
                    await asyncio.sleep(1)
            return 0
        finally:
            self._stop_mirror()
            vendor.stop()

    def _write_config(self, vendor_url: str, fingerprint: str, legacy_key_id: str) -> None:
        q = json.dumps   # a JSON string is a TOML basic string, quotes and backslashes escaped
        self.config_path.write_text(f"""# written by 'updmirror demo'
[upstream]
url = {q(vendor_url)}
username = {q(VENDOR_USER)}
password = {q(VENDOR_PASSWORD)}

[mirror]
root = {q(str(self.dir / "store"))}
trees = {q(list(TREES))}
channels = ["regular"]

[verify]
# the simulated vendor's key; a real mirror pins the vendor's fingerprint
signing_keys = [{q(fingerprint)}]
# its legacy DSA key, which alone signs its modules of 2010 (the vendor's: C8FCA002067B03C9)
legacy_key_ids = [{q(legacy_key_id)}]

[http]
listen = [{q(f"127.0.0.1:{self.port}")}]
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

    def _start_mirror(self) -> None:
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        self.mirror = subprocess.Popen([sys.executable, "-m", "updmirror", "-q", "serve", "-c",
                                        str(self.config_path)], env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.mirror.poll() is not None:
                raise UpdmirrorError(f"the mirror server exited with code {self.mirror.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise UpdmirrorError(f"the mirror server did not listen on 127.0.0.1:{self.port} within 20 s")

    def _stop_mirror(self) -> None:
        if self.mirror and self.mirror.poll() is None:
            self.mirror.terminate()
            try:
                self.mirror.wait(15)
            except subprocess.TimeoutExpired:
                self.mirror.kill()

    async def _clients(self, base: str, fingerprint: str, legacy_key_id: str,
                       title: str) -> dict[str, int | None]:
        from rich.table import Table

        from updmirror.client import Client, Endpoint, Source, UpdateFailed

        self.say(title)
        source = Source.parse(base)
        endpoints = [Endpoint(tree, platform, lang, pinned=(fingerprint,),
                              legacy_key_ids=(legacy_key_id,)) for tree, platform, lang in CLIENTS]

        async def one(e: Endpoint):
            try:
                return await client.update(self._client_dir(e), [source], e)
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
                           f"installs into its own folder under {self.dir / 'clients'}")
        failed = [r for r in results if isinstance(r, UpdateFailed)]
        if failed:
            raise UpdmirrorError(f"{len(failed)} client(s) failed: {failed[0]}")
        return versions

    def _client_dir(self, e) -> Path:
        return self.dir / "clients" / f"{e.tree}-{e.platform}-{e.language}"


def _result(r) -> str:
    done = "[green]installed[/]" if r.status == "updated" else "up to date"
    if r.unchecked_files:
        done += f", [yellow]{r.unchecked_files} legacy DSA-only not signature-checked[/]"
    return done


def _free_port(wanted: int) -> int:
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
