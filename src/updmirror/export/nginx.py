"""`updmirror export nginx`: a configuration nginx runs as it is.

How the snapshot switch stays atomic behind nginx: `root` is the store's
`current/tree` *through* the `current` link, which nginx resolves anew for
every request, so the sync's one rename of that link switches nginx too;
a file the current snapshot lacks is looked up in the pool, which holds
the files of every snapshot still in its grace period at the same path;
an index is only ever taken from the current snapshot.
"""

from __future__ import annotations

from updmirror.httpfacts import CONTENT_TYPES, DEFAULT_CONTENT_TYPE, MIRROR_EXTENSIONS

from .site import Site


def quote(value: str) -> str:
    """An nginx string in double quotes; backslashes in regexes stay as they are."""
    if '"' in value or "\n" in value or value.endswith("\\"):
        raise ValueError(f"cannot quote {value!r} for nginx")
    return f'"{value}"'


def render(site: Site, *, as_site: bool = False) -> str:
    header = site.header("nginx", [
        "",
        *(["A site file: include it in the http {} block of nginx.conf (e.g. /etc/nginx/sites-enabled/)."]
          if as_site else [
              f"Run:   mkdir -p {site.prefix} && nginx -p {site.prefix} -c THIS_FILE",
              f"Check: nginx -t -p {site.prefix} -c THIS_FILE    (stop: nginx -p ... -s quit)"]),
        f"Reading: {site.read_note}.",
        *(_auth_notes(site) if site.htpasswd else []),
    ])
    lines = ["# " + h if h else "#" for h in header] + [""]
    body = _site_lines(site)
    if as_site:
        return "\n".join(lines + body) + "\n"
    p = site.prefix
    workers = "auto" if site.workers == 0 else str(site.workers)
    main = [
        f"worker_processes {workers};",
        f"worker_rlimit_nofile {2 * site.max_connections + 64};",
        f"pid {p}/nginx.pid;",
        f"error_log {p}/error.log warn;",
        f"user {site.user} {site.group};   # only when started as root",
        "",
        "events {",
        f"    worker_connections {site.max_connections};",
        "}",
        "",
        "http {",
        "    types {",
        *(f"        {CONTENT_TYPES[ext]} {ext[1:]};" for ext in MIRROR_EXTENSIONS),
        "    }",
        f"    default_type {DEFAULT_CONTENT_TYPE};",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    tcp_nodelay on;",
        f"    keepalive_timeout {site.keepalive_seconds}s;",
        "    keepalive_requests 100000;",
        "    server_tokens off;",
        "    client_max_body_size 1k;",
        f"    access_log {site.access_log} combined;" if site.access_log else "    access_log off;",
        *(f"    {kind}_temp_path {p}/{kind}_temp;" for kind in ("client_body", "proxy", "fastcgi",
                                                               "uwsgi", "scgi")),
        "",
        *("    " + line if line else "" for line in body),
        "}",
    ]
    return "\n".join(lines + main) + "\n"


def _auth_notes(site: Site) -> list[str]:
    return [
        f"Users: {site.htpasswd} (Basic, realm \"{site.realm}\"); nginx reads bcrypt ($2y$/$2b$, what",
        "'updmirror passwd' writes) through the system's crypt(3) - libxcrypt on Debian 12 - and apr1",
        "and {SHA} itself. But it checks the hash on every request, with no memory of good checks,",
        "so each request with a bcrypt entry costs one bcrypt of CPU time: see 'updmirror export'",
        "on standard error and BENCHMARKS.md before using it with authentication.",
    ]


def _site_lines(site: Site) -> list[str]:
    r = site.routing
    out = ["# Which channel a client asks for (Eset-Spread-Control: domain=...), else regular.",
           "map $http_eset_spread_control $updmirror_channel {",
           "    default regular;"]
    out += [f"    {quote('~*' + rule.pattern)} {rule.channel};" for rule in r.channel_rules]
    out += ["}", "",
            "# Which tree a client's User-Agent gets (eset/trees.py route(), for each major).",
            "map $http_user_agent $updmirror_tree {",
            f"    default {r.default_tree};"]
    out += [f"    {quote('~*' + rule.pattern)} {rule.tree};" for rule in r.agent_rules]
    out += ["}", "",
            "# The index that answers /update.ver and /dll/update.ver, per channel and tree.",
            'map "$updmirror_channel:$updmirror_tree:$uri" $updmirror_index {',
            '    default "";']
    for (channel, tree, path), index in sorted(r.indexes.items()):
        out.append(f"    {quote(f'{channel}:{tree}:{path}')} {index};")
    out += ["}", "", "server {"]
    for host, port in site.listen:
        address = f"[{host}]" if ":" in host else host
        out.append(f"    listen {address}:{port} backlog={site.backlog}{' ssl' if site.tls else ''};")
    out += ["    server_name _;", f"    root {site.tree_dir};", "    autoindex off;"]
    if site.tls:
        out += [f"    ssl_certificate {site.tls[0]};", f"    ssl_certificate_key {site.tls[1]};",
                "    ssl_protocols TLSv1.2 TLSv1.3;"]
    out += ["", "    # The same network allow-list as [http] allow."]
    out += [f"    allow {net};" for net in site.allow] + ["    deny all;"]
    if site.htpasswd:
        out += ["", f'    auth_basic "{site.realm}";', f"    auth_basic_user_file {site.htpasswd};"]
    for path in ("/update.ver", "/dll/update.ver"):
        out += ["", f"    location = {path} {{",
                f'        add_header Vary "{site.vary}";',
                "        try_files $updmirror_index =404;",
                "    }"]
    out += ["",
            "    # Any other index only from the current snapshot, never from an older one.",
            r"    location ~ /update\.ver$ {",
            "        try_files $uri =404;",
            "    }",
            "",
            "    # Module files: the current snapshot, then those still in their grace period.",
            "    location / {",
            "        try_files $uri @grace;",
            "    }",
            "    location @grace {",
            f"        root {site.pool_dir};",
            "        try_files $uri =404;",
            "    }",
            "}"]
    return out
