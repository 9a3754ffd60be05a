"""`updmirror vendor generate|publish|serve`."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from updmirror.config import parse_listen
from updmirror.errors import ConfigError

from . import VendorError
from .faults import CONTROL_PATH, KINDS, Fault
from .generate import DEFAULT_TREES, VendorState, generate
from .publish import publish


def register(subparsers) -> None:
    vendor = subparsers.add_parser("vendor", help="the simulated vendor: generate, publish, serve",
                                   description="A simulated vendor repository for tests, benchmarks and the demo.")
    sub = vendor.add_subparsers(dest="vendor_command", metavar="ACTION", required=True)

    gen = sub.add_parser("generate", help="write a fresh signed repository")
    gen.add_argument("--root", required=True, type=Path, help="folder for www/, keys and state")
    gen.add_argument("--seed", type=int, default=1, help="same seed, same repository (default 1)")
    gen.add_argument("--size-mb", type=float, default=8, help="total size of the files (default 8)")
    gen.add_argument("--trees", nargs="+", default=list(DEFAULT_TREES), metavar="TREE",
                     help=f"trees to publish (default: {' '.join(DEFAULT_TREES)})")
    gen.add_argument("--no-dsa", action="store_true",
                     help="unlike the vendor, nothing signed with the legacy DSA key: no second signature, "
                          "no DSA-only modules")
    gen.set_defaults(func=_generate)

    pub = sub.add_parser("publish", help="release the next build into an existing repository")
    pub.add_argument("--root", required=True, type=Path)
    pub.set_defaults(func=_publish)

    srv = sub.add_parser("serve", help="serve a repository like the vendor, until interrupted")
    srv.add_argument("--root", required=True, type=Path)
    srv.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (default 127.0.0.1:8080)")
    srv.add_argument("--user", default="EAV-0123456789", help="Basic auth user name")
    srv.add_argument("--password", required=True, help="Basic auth password (never printed)")
    srv.add_argument("--gzip", action="store_true", help="gzip bodies for clients that accept it")
    srv.add_argument("--rar-index", action="store_true", help="serve update.ver as a RAR archive")
    srv.add_argument("--fault", action="append", default=[], metavar="KIND[:ARG][@GLOB][*TIMES]",
                     help=f"inject a fault; kinds: {', '.join(KINDS)}")
    srv.add_argument("--control", action="store_true",
                     help=f"accept fault changes from loopback at POST {CONTROL_PATH} (JSON)")
    srv.set_defaults(func=_serve)


def _generate(args: argparse.Namespace) -> int:
    print(f"generating {args.size_mb:g} MiB, seed {args.seed}, trees {' '.join(args.trees)} ...", flush=True)
    report = generate(args.root, seed=args.seed, size_mb=args.size_mb, trees=args.trees, dsa=not args.no_dsa)
    print(report.summary())
    return 0


def _publish(args: argparse.Namespace) -> int:
    print(publish(args.root).summary())
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        host, port = parse_listen(args.listen)
    except (ConfigError, ValueError) as exc:
        raise VendorError(f"--listen {args.listen!r}: {exc}") from None
    from .server import VendorServer  # aiohttp's server: only for this command

    state = VendorState.load(args.root)
    faults = [Fault.parse(spec) for spec in args.fault]
    server = VendorServer(args.root / "www", args.user, args.password, host=host, port=port,
                          gzip=args.gzip, rar_index=args.rar_index, control=args.control)
    server.set_faults(faults)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    try:
        print(f"serving {args.root / 'www'} at {server.url} (user {args.user})", flush=True)
        print(f"fingerprint {state.fingerprint} (release {state.release}, trees {', '.join(state.trees)})",
              flush=True)
        for f in faults:
            print(f"fault: {f.kind} arg={f.arg} on {f.match} times={f.times or 'always'}", flush=True)
        if args.control:
            print(f"control: POST {server.url.rstrip('/')}{CONTROL_PATH} (loopback only)", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
    print("stopped", flush=True)
    return 0
