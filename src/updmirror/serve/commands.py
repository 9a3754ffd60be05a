"""`updmirror serve` and `updmirror passwd` (`run` is the daemon's, `status` the status room's)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys

from updmirror import config
from updmirror.errors import ConfigError, UpdmirrorError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    text = "serve the current snapshot over HTTP (port 2221)"
    p = sub.add_parser("serve", help=text, description=f"{text}. {SERVER_NOTE}")
    add_server_arguments(p)
    p.set_defaults(func=serve_command)

    p = sub.add_parser("passwd", help="add a user or change a password in the htpasswd file",
                       description="Write USER's password (bcrypt) into [http] htpasswd, keeping the "
                                   "other users. A running server reads the file again on SIGHUP.")
    p.add_argument("-c", "--config", required=True, help="mirror.toml")
    p.add_argument("user", metavar="USER")
    p.add_argument("--stdin", action="store_true",
                   help="read the password from the first line of standard input instead of asking twice")
    p.set_defaults(func=run_passwd)


#: What every command that starts the server (serve, run) says of it.
SERVER_NOTE = ("Stops gracefully on SIGTERM; SIGHUP reloads the allow list, the htpasswd file and the "
               "access log. Exit 2 on a configuration error (port in use, missing certificate, "
               "unreadable htpasswd).")


def add_server_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of a command that starts the server: its configuration and workers."""
    p.add_argument("-c", "--config", required=True, help="mirror.toml")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: [http] workers, 0 = one per core)")


def quiet_access_logger(cfg: config.Config, *, debug: bool = False) -> None:
    """Without [http] access_log, the access log goes to the console only with
    --debug: a line per request would drown everything else at 10,000 clients."""
    if cfg.http.access_log is None and not debug:
        logging.getLogger("updmirror.access").setLevel(logging.WARNING)


def serve_command(args: argparse.Namespace) -> int:
    from updmirror.serve import master

    cfg = config.load(args.config)
    quiet_access_logger(cfg, debug=getattr(args, "debug", False))
    return master.serve(cfg, workers=args.workers)


def run_passwd(args: argparse.Namespace) -> int:
    from updmirror.serve.auth import Htpasswd, set_password

    cfg = config.load(args.config)
    path = cfg.http.htpasswd
    if path is None:
        raise ConfigError(f"{cfg.path}: [http] htpasswd is not set; add e.g. "
                          'htpasswd = "/etc/updmirror/htpasswd" (and auth = "basic")')
    if args.stdin:
        line = sys.stdin.readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        password = getpass.getpass(f"New password for {args.user}: ")
        if getpass.getpass("Again: ") != password:
            raise UpdmirrorError("the two passwords differ; nothing was changed")
    added = set_password(path, args.user, password)
    try:
        Htpasswd.load(path)  # says which line is wrong if the rest of the file is damaged
    except ConfigError as exc:
        raise ConfigError(f"{cfg.path}: [http] htpasswd: {exc}") from None
    print(f"updmirror: {'added' if added else 'changed the password of'} user {args.user} in {path}")
    if cfg.http.auth != "basic":
        print(f'updmirror: note: [http] auth is "{cfg.http.auth}" in {cfg.path}; set auth = "basic" '
              "for the server to ask for it")
    print("updmirror: a running server picks this up on SIGHUP "
          "(systemctl reload updmirror, or kill -HUP <pid>)")
    return 0
