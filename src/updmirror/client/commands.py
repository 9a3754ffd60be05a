"""`updmirror client update` and `updmirror client status`: the reference client on the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from updmirror.config import VENDOR_FINGERPRINT, VENDOR_LEGACY_KEY_ID
from updmirror.errors import ConfigError
from updmirror.eset.trees import TREES
from updmirror.units import human_bytes

from . import Client, Endpoint, Source, UpdateResult, installed
from ._update import PLATFORMS

EXIT_CODES = """\
exit codes:
  0    DIR is up to date: a new version was installed, or it already held the newest
  1    no source could update DIR (each source's reason is printed); DIR is unchanged
  2    bad command line: unknown tree, malformed source, unreadable password file
  3    DIR cannot be used: not writable, or another update is running on it
  130  interrupted; DIR is as before or as after, never in between
"""

UPDATE_HELP = """\
Update DIR from update sources as one of the vendor's endpoints would: ask for
the tree's index with that product's User-Agent, work out from what DIR holds
which files it needs (a full module, or the chain of deltas from the build it
has), download and verify them (size, inner size and CRC, signature by a
pinned key), and install them in one atomic step.

Sources are tried in priority order, one --source per priority; several
locations after one --source have equal priority and are tried in random
order. A source is given up (and the next one tried) when it is down, refuses
the credentials, or serves a broken, truncated or older index, or a bad file.

  updmirror client update --source http://mirror:2221 --source '\\\\mirror\\share' \\
      --tree ep11 --platform x64 --dest /var/lib/av --user 'WORKGROUP\\NODUSER' --password-file pw

sources: http://host[:port][/path], https://..., \\\\server\\share[\\path] (SMB,
with --user DOMAIN\\User or WORKGROUP\\User), or a local folder.
"""


def register(subparsers) -> None:
    client = subparsers.add_parser("client", help="the reference update client: update a folder from mirrors",
                                   description="The reference update client.")
    sub = client.add_subparsers(dest="client_command", metavar="ACTION", required=True)

    up = sub.add_parser("update", help="bring DIR up to date from sources in priority order",
                        description=UPDATE_HELP, epilog=EXIT_CODES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    up.add_argument("--source", action="append", nargs="+", required=True, metavar="LOCATION",
                    help="an update source; repeat for lower priorities; several after one --source "
                         "are of equal priority (tried in random order)")
    up.add_argument("--tree", required=True, choices=sorted(TREES), metavar="TREE",
                    help="the product generation, e.g. ep11, v16, v5")
    up.add_argument("--platform", default="x64", choices=PLATFORMS, help="default x64")
    up.add_argument("--language", default="1033", metavar="LCID",
                    help="Windows language id of language-specific modules (default 1033; 'none': none)")
    up.add_argument("--dest", required=True, type=Path, metavar="DIR", help="the folder to install into")
    up.add_argument("--user", help="account for the sources (HTTP Basic, or DOMAIN\\User for a share)")
    up.add_argument("--password-file", type=Path, metavar="FILE",
                    help="file holding the password ('-': read it from standard input)")
    up.add_argument("--smb-port", type=int, metavar="PORT", help="port of SMB sources (default 445)")
    up.add_argument("--signing-key", action="append", metavar="FINGERPRINT",
                    help="trust modules signed by this key (repeatable; default: the vendor's key)")
    up.add_argument("--strict", action="store_true",
                    help="refuse modules signed only by the vendor's old DSA key, which no public key "
                         "checks (default: take them on their size and inner CRC, and say so)")
    up.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                    help="give a source up after this long without data (default 30; connecting: a third)")
    up.add_argument("--retries", type=int, default=1, help="attempts per request after the first (default 1)")
    up.add_argument("--json", action="store_true", help="print the result as JSON")
    up.set_defaults(func=_update)

    st = sub.add_parser("status", help="show what DIR holds")
    st.add_argument("--dest", required=True, type=Path, metavar="DIR")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=_status)


def _update(args: argparse.Namespace) -> int:
    password = _password(args.password_file)
    if args.password_file is not None and not args.user:
        raise ConfigError("--password-file is given but no --user")
    language = None if args.language.lower() == "none" else _lcid(args.language)
    endpoint = Endpoint(args.tree, args.platform, language,
                        pinned=tuple(args.signing_key or (VENDOR_FINGERPRINT,)),
                        legacy_key_ids=() if args.strict else (VENDOR_LEGACY_KEY_ID,))
    sources = [[Source.parse(text, user=args.user, password=password, smb_port=args.smb_port)
                for text in group] for group in args.source]
    if args.timeout <= 0 or args.retries < 0:
        raise ConfigError("--timeout must be above 0 and --retries 0 or more")
    show = sys.stderr.isatty() and not args.json and not getattr(args, "quiet", False)
    result = asyncio.run(_run(args, sources, endpoint, show))
    if args.json:
        print(json.dumps(_to_json(result), indent=1))
    else:
        print(_summary(result))
    return 0


async def _run(args: argparse.Namespace, sources, endpoint: Endpoint, show: bool) -> UpdateResult:
    progress = _TerminalProgress() if show else None
    async with Client(max_connections=4, connect_timeout=max(1.0, args.timeout / 3),
                      stall_timeout=args.timeout, retries=args.retries) as client:
        try:
            return await client.update(args.dest, sources, endpoint, progress=progress)
        finally:
            if progress:
                progress.stop()


def _status(args: argparse.Namespace) -> int:
    now = installed(args.dest)
    if args.json:
        print(json.dumps({k: v for k, v in now.to_json().items() if k != "validators"}, indent=1))
        return 0
    if now.id is None:
        print(f"{args.dest}: nothing installed yet")
        return 0
    size = sum(m.size or 0 for m in now.modules)
    print(f"{args.dest}: {now.tree} {now.platform}, database version {now.version}, "
          f"{len(now.modules)} module files ({human_bytes(size)}), from {now.source}")
    return 0


def _password(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        text = sys.stdin.readline() if str(path) == "-" else path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"--password-file {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--password-file {path}: not UTF-8 text") from None
    password = text.strip("\r\n")
    if not password:
        raise ConfigError(f"--password-file {path}: the file is empty")
    return password


def _lcid(text: str) -> int:
    if not text.isdigit():
        raise ConfigError(f"--language {text!r}: a Windows LCID is a number such as 1033, or 'none'")
    return int(text)


def _summary(r: UpdateResult) -> str:
    skipped = "".join(f"\n  skipped: {f.message}" for f in r.failures)
    if r.status == "current":
        return f"{r.dest}: up to date, database version {r.version} (checked at {r.source}){skipped}"
    got = f"{r.downloaded_files} files, {human_bytes(r.downloaded_bytes)} downloaded"
    if r.reused_files:
        got += f", {r.reused_files} verified earlier"
    if r.unchecked_files:
        got += (f", {r.unchecked_files} NOT signature-checked (signed only by the vendor's old DSA key; "
                "size and inner CRC checked)")
    return (f"{r.dest}: updated to database version {r.version} (was {r.previous_version or 'none'}) "
            f"from {r.source}: {got}, {r.kept_files} kept, {r.installed_files} installed, "
            f"{r.seconds:.1f} s{skipped}")


def _to_json(r: UpdateResult) -> dict:
    out = dict(r.__dict__)
    out["dest"] = str(r.dest)
    out["failures"] = [f.__dict__ for f in r.failures]
    return out


class _TerminalProgress:
    """A bar of bytes for the files being downloaded, redrawn for each source tried."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        self._rich = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                              TransferSpeedColumn(), TimeRemainingColumn(), transient=True,
                              console=Console(stderr=True))
        self._task = None
        self._files = 0
        self._done = 0

    def planned(self, source: str, files: int, total_bytes: int) -> None:
        if self._task is None:
            self._rich.start()
        else:
            self._rich.remove_task(self._task)
        self._files, self._done = files, 0
        self._task = self._rich.add_task(self._label(source), total=total_bytes)
        self._source = source

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._rich.advance(self._task, n)

    def file_done(self, name: str) -> None:
        self._done += 1
        if self._task is not None:
            self._rich.update(self._task, description=self._label(self._source))

    def _label(self, source: str) -> str:
        return f"{source}: {self._done}/{self._files} files"

    def stop(self) -> None:
        if self._task is not None:
            self._rich.stop()
