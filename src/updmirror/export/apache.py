"""`updmirror export apache` (and `htaccess`): a configuration Apache httpd 2.4
runs as it is (`apache2 -f FILE`), or a site file to include.

The snapshot switch behind Apache works as behind nginx: DocumentRoot is the
store's `current/tree` through the `current` link (Apache follows it anew
per request, `Options FollowSymLinks`); mod_rewrite answers the routed index
paths from the current snapshot and, for a file the current snapshot lacks,
looks in the pool, where the files of snapshots in their grace period are.

mod_rewrite sets variables in order and the last one set wins, so the rules
that win first in the routing tables are written last here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from updmirror.httpfacts import CONTENT_TYPES, MIRROR_EXTENSIONS

from .site import Site

MODULE_DIRS = ("/usr/lib/apache2/modules", "/usr/lib64/httpd/modules", "/usr/lib/httpd/modules",
               "/usr/libexec/apache2")
BASE_MODULES = ("mpm_event", "authz_core", "authz_host", "rewrite", "headers", "mime")
AUTH_MODULES = ("authn_core", "authn_file", "auth_basic", "authz_user")
TLS_MODULES = ("ssl", "socache_shmcb")
ROUTED = r"^/(?:dll/)?update\.ver$"
#: Requests served at once (threads); idle keep-alive connections cost no thread.
MAX_REQUEST_WORKERS = 1024


def modules_dir() -> Path:
    for d in MODULE_DIRS:
        if (Path(d) / "mod_rewrite.so").exists():
            return Path(d)
    return Path(MODULE_DIRS[0])


def quote(value: str | Path) -> str:
    text = str(value)
    if '"' in text or "\n" in text or text.endswith("\\"):
        raise ValueError(f"cannot quote {text!r} for Apache")
    return f'"{text}"'


def htaccess_path(site: Site) -> Path:
    """Where the `.htaccess` goes: the store's root, above everything Apache serves from it."""
    return site.store_root / ".htaccess"


def render_htaccess(site: Site) -> str:
    """The authentication of the site as an `.htaccess` file."""
    if site.htpasswd is None:
        raise ValueError("[http] auth is \"none\": there is no authentication to put in an .htaccess")
    lines = ["# " + h if h else "#" for h in site.header("Apache .htaccess", [
        "", f"Goes to {htaccess_path(site)}; the configuration from 'updmirror export apache --htaccess'",
        "allows it (AllowOverride AuthConfig) and keeps the network allow-list itself."])]
    return "\n".join(lines + ["", *_auth_lines(site, merge=True)]) + "\n"


def _auth_lines(site: Site, merge: bool = False) -> list[str]:
    # No mod_authn_socache: it caches the hash it looked up, not the check, so it
    # would still pay one bcrypt per request (measured in BENCHMARKS.md).
    return [
        "AuthType Basic",
        f"AuthName {quote(site.realm)}",
        "AuthBasicProvider file",
        f"AuthUserFile {quote(site.htpasswd)}",
        *(["AuthMerging And"] if merge else []),
        "Require valid-user",
    ]


def render(site: Site, *, as_site: bool = False, htaccess: bool = False) -> str:
    if htaccess and site.htpasswd is None:
        raise ValueError("--htaccess needs [http] auth = \"basic\" (an htpasswd file)")
    notes = [f"Users: {site.htpasswd} (Basic, realm \"{site.realm}\"): bcrypt, apr1 and {{SHA}} entries; "
             "Apache checks the", "hash on every request (see 'updmirror export' on standard error)."] \
        if site.htpasswd else []
    how = (["", "A site file: put it in /etc/apache2/sites-available/ and a2ensite it; it needs "
            f"the modules {', '.join(_modules(site))} (a2enmod)."]
           if as_site else
           ["", f"Run:   mkdir -p {site.prefix} && apache2 -f THIS_FILE -k start   (stop: -k stop)",
            "Check: apache2 -t -f THIS_FILE"])
    if htaccess:
        how += [f"Authentication: from {htaccess_path(site)}; make it with",
                f"  updmirror export htaccess -c {site.config_path} > {htaccess_path(site)}"]
    lines = ["# " + h if h else "#" for h in site.header("Apache httpd", [*how, f"Reading: {site.read_note}.",
                                                                          *notes])]
    lines.append("")
    if not as_site:
        lines += _main(site)
    lines += _site(site, htaccess, as_site)
    return "\n".join(lines) + "\n"


def _modules(site: Site) -> list[str]:
    names = list(BASE_MODULES)
    if site.htpasswd:
        names += AUTH_MODULES
    if site.tls:
        names += TLS_MODULES
    return list(dict.fromkeys(names))


def _main(site: Site) -> list[str]:
    p, mods = site.prefix, modules_dir()
    # Every thread from the start: the event MPM closes keep-alive connections whenever
    # all its threads are busy, and an update storm arrives all at once.
    threads = 64
    servers = max(1, math.ceil(min(site.max_connections, MAX_REQUEST_WORKERS) / threads))
    out = [f"ServerRoot {quote(p)}", "ServerName updmirror", f"PidFile {quote(p / 'apache.pid')}",
           f"DefaultRuntimeDir {quote(p)}", f"Mutex file:{p} default", f"ErrorLog {quote(p / 'error.log')}",
           "LogLevel warn", f"User {site.user}", f"Group {site.group}", ""]
    out += [f"LoadModule {m}_module {quote(mods / f'mod_{m}.so')}" for m in _modules(site)]
    out += ["", "TypesConfig /dev/null", "ServerTokens Prod", "ServerSignature Off", "TraceEnable Off",
            "Timeout 60", "KeepAlive On", "MaxKeepAliveRequests 0",
            f"KeepAliveTimeout {site.keepalive_seconds}", f"ListenBacklog {site.backlog}",
            f"ServerLimit {servers}", f"StartServers {servers}", f"ThreadsPerChild {threads}",
            f"MaxRequestWorkers {servers * threads}", f"MinSpareThreads {threads}",
            f"MaxSpareThreads {servers * threads}", "AsyncRequestWorkerFactor 4",
            "<Directory />", "    AllowOverride None", "    Require all denied", "</Directory>", ""]
    return out


def _site(site: Site, htaccess: bool, as_site: bool) -> list[str]:
    out = []
    if as_site:
        out += [f"<IfModule !{m}_module>\n    Error \"updmirror: enable mod_{m} (a2enmod {m})\"\n</IfModule>"
                for m in _modules(site) if not m.startswith("mpm_") and m != "socache_shmcb"]
    for host, port in site.listen:
        out.append(f"Listen {_address(host, port)}" + (" https" if site.tls else ""))
    hosts = " ".join(_address(h, p) for h, p in site.listen)
    out += ["", f"<VirtualHost {hosts}>", "    ServerName updmirror",
            f"    DocumentRoot {quote(site.tree_dir)}",
            *(f"    AddType {CONTENT_TYPES[ext]} {ext}" for ext in MIRROR_EXTENSIONS)]
    if site.tls:
        out += ["    SSLEngine on", f"    SSLCertificateFile {quote(site.tls[0])}",
                f"    SSLCertificateKeyFile {quote(site.tls[1])}", "    SSLProtocol -all +TLSv1.2 +TLSv1.3"]
    if site.access_log:
        out.append(f"    CustomLog {quote(site.access_log)} combined")
    out += ["", f"    <Directory {quote(site.store_root)}>",
            "        Options FollowSymLinks",
            f"        AllowOverride {'AuthConfig' if htaccess else 'None'}",
            "        # The same network allow-list as [http] allow.",
            "        <RequireAll>" if site.htpasswd and not htaccess else "        <RequireAny>",
            "            Require ip " + " ".join(site.allow)]
    if site.htpasswd and not htaccess:
        out += ["            Require valid-user", "        </RequireAll>"]
        out += ["        " + line for line in _auth_lines(site) if line != "Require valid-user"]
    else:
        out.append("        </RequireAny>")
    out += ["    </Directory>", ""]
    out += ["    " + line if line else "" for line in _rewrites(site)]
    out += [f'    Header set Vary "{site.vary}" env=UPDMIRROR_INDEX', "</VirtualHost>"]
    return out


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _rewrites(site: Site) -> list[str]:
    r = site.routing
    tree_dir, pool_dir = site.tree_dir, site.pool_dir
    out = ["RewriteEngine On", "",
           "# Which channel a client asks for (Eset-Spread-Control: domain=...), else regular.",
           f"RewriteRule {ROUTED} - [E=UPDMIRROR_CHANNEL:regular]"]
    for rule in reversed(r.channel_rules):
        out += [f"RewriteCond %{{HTTP:Eset-Spread-Control}} {quote(rule.pattern)} [NC]",
                f"RewriteRule {ROUTED} - [E=UPDMIRROR_CHANNEL:{rule.channel}]"]
    out += ["", "# Which tree a client's User-Agent gets (eset/trees.py route(), for each major).",
            f"RewriteRule {ROUTED} - [E=UPDMIRROR_TREE:{r.default_tree}]"]
    for rule in reversed(r.agent_rules):
        out += [f"RewriteCond %{{HTTP_USER_AGENT}} {quote(rule.pattern)} [NC]",
                f"RewriteRule {ROUTED} - [E=UPDMIRROR_TREE:{rule.tree}]"]
    out += ["", "# The index that answers /update.ver and /dll/update.ver, per channel and tree:",
            "# always from the current snapshot."]
    for (channel, tree, path), index in sorted(r.indexes.items()):
        out += [f"RewriteCond %{{ENV:UPDMIRROR_CHANNEL}}:%{{ENV:UPDMIRROR_TREE}} ={channel}:{tree}",
                f"RewriteRule ^{re.escape(path)}$ {quote(str(tree_dir) + index)} [L,E=UPDMIRROR_INDEX:1]"]
    out += [f"RewriteRule {ROUTED} - [R=404,L]", "",
            "# Any other index only from the current snapshot, never from an older one.",
            r"RewriteRule /update\.ver$ - [L]", "",
            "# Other files: the current snapshot, then the snapshots still in their grace period.",
            f"RewriteCond {quote(str(tree_dir) + '/$1')} !-f",
            f"RewriteCond {quote(str(pool_dir) + '/$1')} -f",
            f"RewriteRule ^/(.+)$ {quote(str(pool_dir) + '/$1')} [L]", ""]
    return out
