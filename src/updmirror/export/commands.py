"""`updmirror export samba|nginx|apache|htaccess`: configurations generated
from mirror.toml, printed on standard output to be saved and run as they are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from updmirror import config
from updmirror.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="print a configuration for Samba, nginx or Apache",
                       description="Print a configuration generated from mirror.toml: the Samba share "
                                   "of the shared folder, or nginx or Apache serving the mirror's current "
                                   "snapshot in place of the integrated server.")
    kinds = p.add_subparsers(dest="export_kind", metavar="SERVER", required=True)
    samba = kinds.add_parser("samba", help="the read-only share of [folder] path, and its account")
    samba.add_argument("-c", "--config", required=True, help="mirror.toml")
    samba.set_defaults(func=samba_command)
    for name, text in (("nginx", "nginx serving the mirror (nginx -p DIR -c FILE)"),
                       ("apache", "Apache httpd serving the mirror (apache2 -f FILE)"),
                       ("htaccess", "the .htaccess that 'export apache --htaccess' leaves "
                                    "authentication to")):
        k = kinds.add_parser(name, help=text, description=text + ".")
        k.add_argument("-c", "--config", required=True, help="mirror.toml")
        if name == "htaccess":
            k.set_defaults(func=web_command, server="apache", htaccess_file=True)
            continue
        k.add_argument("--listen", action="append", metavar="HOST:PORT",
                       help="listen here instead of [http] listen (repeat for several)")
        k.add_argument("--site", action="store_true",
                       help="a site file to include in the server's own configuration, not a full one")
        k.add_argument("--prefix", type=Path, metavar="DIR",
                       help=f"where the pid file, logs and temporary files go "
                            f"(default /var/lib/updmirror-{name})")
        k.add_argument("--user", help="the account the workers run as when started as root (www-data)")
        k.add_argument("--group", help="their group (default: the store's group)")
        if name == "apache":
            k.add_argument("--htaccess", action="store_true",
                           help="leave authentication to an .htaccess at the store's root "
                                "(see 'updmirror export htaccess')")
        k.set_defaults(func=web_command, server=name, htaccess_file=False)


def samba_command(args: argparse.Namespace) -> int:
    from updmirror.export import samba

    sys.stdout.write(samba.render(config.load(args.config)))
    return 0


def web_command(args: argparse.Namespace) -> int:
    from updmirror.export import apache, nginx
    from updmirror.export.site import BCRYPT_WARNING, has_bcrypt_entries, site

    cfg = config.load(args.config)
    s = site(cfg, listen=getattr(args, "listen", None), prefix=getattr(args, "prefix", None),
             user=getattr(args, "user", None), group=getattr(args, "group", None), server=args.server)
    try:
        if args.htaccess_file:
            text = apache.render_htaccess(s)
        elif args.server == "nginx":
            text = nginx.render(s, as_site=args.site)
        else:
            text = apache.render(s, as_site=args.site, htaccess=args.htaccess)
        if s.htpasswd and has_bcrypt_entries(s.htpasswd):
            server = "nginx" if args.server == "nginx" else "Apache"
            print(f"updmirror: warning: {BCRYPT_WARNING.format(server=server)}", file=sys.stderr)
    except ValueError as exc:
        raise ConfigError(f"{cfg.path}: {exc}") from None
    sys.stdout.write(text)
    return 0
