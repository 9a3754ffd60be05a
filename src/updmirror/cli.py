"""The `updmirror` command line.

Each room adds its own sub-commands through a `register(subparsers)`
function in its `commands` module; this file only wires them and turns
errors into one clear line and an exit code (a traceback only with --debug).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from updmirror import __version__
from updmirror.errors import UpdmirrorError

#: Modules whose `register(subparsers)` adds sub-commands, in help order.
COMMAND_MODULES = (
    "updmirror.daemon.commands",    # sync, run
    "updmirror.serve.commands",     # serve, passwd
    "updmirror.status.commands",    # status
    "updmirror.folder.commands",    # folder publish
    "updmirror.export.commands",    # export samba|nginx|apache
    "updmirror.vendor.commands",    # vendor generate|publish|serve
    "updmirror.client.commands",    # client update|status
    "updmirror.demo",               # demo
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="updmirror",
        description="Update mirror server for ESET-style antivirus update repositories.",
    )
    parser.add_argument("--version", action="version", version=f"updmirror {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        command_module(name).register(sub)
    return parser


def command_module(name: str):
    """Import a module of COMMAND_MODULES. Every one is part of the program:
    a command that is missing or broken is an error that names the module,
    never a command that silently disappears from the help."""
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        raise CommandModuleError(f"the commands of {name} cannot be loaded: "
                                 f"{type(exc).__name__}: {exc}; the installation is incomplete or "
                                 "broken (reinstall updmirror)") from exc
    if not callable(getattr(module, "register", None)):
        raise CommandModuleError(f"{name} has no register(subparsers) function; "
                                 "the installation is broken (reinstall updmirror)")
    return module


class CommandModuleError(UpdmirrorError):
    """A module of COMMAND_MODULES cannot be loaded."""


def setup_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S")
    # Library chatter (aiohttp's access log is ours to write) stays quiet.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # smbprotocol logs every SMB message at INFO and a closed connection as an
    # exception; the SMB fetcher reports what matters in its own errors.
    if not debug:
        logging.getLogger("smbprotocol").setLevel(logging.CRITICAL)
        logging.getLogger("spnego").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
    except CommandModuleError as exc:
        print(f"updmirror: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(args.debug, args.quiet)
    try:
        return int(args.func(args) or 0)
    except UpdmirrorError as exc:
        if args.debug:
            raise
        print(f"updmirror: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("updmirror: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`updmirror status --json | head`): not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
