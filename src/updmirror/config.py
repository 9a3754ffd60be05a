"""The one configuration file (`mirror.toml`), validated in one place.

Every error names the file and the key (`mirror.toml: [upstream] url: ...`).
Passwords are kept out of `repr()` so that a logged config leaks nothing.

Each default exists once: in the dataclass a room reads (UpstreamConfig is
upstream/'s, the others are here). SCHEMA says, per table and key, what a
value must be (kind, bounds, choices) and takes the default from that
dataclass; the parser reads every key through it, and a test holds
deploy/mirror.toml.example to it (every key, every default shown).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from updmirror.errors import ConfigError
from updmirror.eset.trees import CHANNELS, TREES
from updmirror.unc import is_valid_name, parse_account, parse_share
from updmirror.upstream.settings import ANNOUNCE_MODES, LAYOUTS, UpstreamConfig

DEFAULT_PORT = 2221
VENDOR_FINGERPRINT = "A9EBA18B69CA83765FBD72139BD8A6AFB8C9B029"
#: The vendor's old DSA key: it signs every file, and alone the modules of 2010 still
#: listed; its public part is in no file, so the mirror cannot check its signatures.
VENDOR_LEGACY_KEY_ID = "C8FCA002067B03C9"
UNVERIFIABLE_POLICIES = ("accept", "refuse")
AUTH_METHODS = ("none", "basic")
STATUS_ACCESS = ("allow", "admin")
PLATFORMS = ("x86", "x64", "arm64")
#: The largest module file fetched; a section without size= is fetched up to this.
DEFAULT_MAX_FILE_SIZE = 1 << 30
PRIVATE_NETWORKS = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                    "::1/128", "fc00::/7")


#: A mirror's name ([mirror] name): lower mirrors show it in their hops, status
#: pages and metrics labels, so a host name's letters only (no URL, no account).
MIRROR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_NOT_IN_MIRROR_NAME = re.compile(r"[^A-Za-z0-9._:-]")


def clean_mirror_name(value: object, fill: str = "?") -> str:
    """`value` in the letters a mirror's name may hold (any other is `fill`), cut to 64."""
    return _NOT_IN_MIRROR_NAME.sub(fill, str(value))[:64]


def default_mirror_name() -> str:
    """The host name, in the letters a mirror's name may hold."""
    return clean_mirror_name(socket.gethostname(), "-").lstrip("._:-") or "updmirror"


@dataclass(frozen=True)
class MirrorConfig:
    root: Path
    trees: tuple[str, ...] = ("ep11",)
    channels: tuple[str, ...] = ("regular",)
    platforms: tuple[str, ...] = ()
    languages: tuple[int, ...] = ()
    types: tuple[str, ...] = ()
    interval: float = 3600.0
    grace: float = 7200.0
    #: Refuse to publish an index that would drop more than this share of files.
    max_drop: float = 0.5
    #: Bytes: no module file is fetched beyond this, whatever its size= says (or without one).
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    #: What this mirror is called in the chain of mirrors (the hops) that lower mirrors see.
    name: str = field(default_factory=lambda: default_mirror_name())


@dataclass(frozen=True)
class VerifyConfig:
    signing_keys: tuple[str, ...] = (VENDOR_FINGERPRINT,)
    key_files: tuple[Path, ...] = ()
    #: A file signed only by `legacy_key_ids`, none of which the mirror can check:
    #: "accept" it after its size and inner CRC-32 check (reported as not
    #: signature-checked), or "refuse" it.
    unverifiable: str = "accept"
    legacy_key_ids: tuple[str, ...] = (VENDOR_LEGACY_KEY_ID,)


@dataclass(frozen=True)
class HttpConfig:
    listen: tuple[str, ...] = (f"0.0.0.0:{DEFAULT_PORT}",)
    auth: str = "none"
    htpasswd: Path | None = None
    allow: tuple[str, ...] = PRIVATE_NETWORKS
    tls_cert: Path | None = None
    tls_key: Path | None = None
    default_tree: str | None = None
    workers: int = 0               # 0: one per core
    max_connections: int = 20000
    #: ... of them from one client address (an IPv6 /64), so no one takes them all.
    max_connections_per_address: int = 1000
    #: Lower mirrors' announcement requests held open at once (about 10 KiB each with its connection).
    announce_waiters: int = 2000
    status_access: str = "allow"   # allow | admin
    admin_users: tuple[str, ...] = ()
    access_log: Path | None = None


FOLDER_LAYOUTS = ("flat", "vendor")


@dataclass(frozen=True)
class FolderConfig:
    """[folder]: the shared folder published after each sync, and the Samba share of it.

    Off unless `path` (a local folder) or `unc` (a remote share) is set.
    """

    path: Path | None = None
    unc: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int = 445
    layout: str = "flat"
    #: What `updmirror export samba` calls the share of `path`, and who reads it.
    share: str = "eset_upd"
    read_account: str = "WORKGROUP\\NODUSER"

    @property
    def enabled(self) -> bool:
        return self.path is not None or self.unc is not None


@dataclass(frozen=True)
class Config:
    path: Path
    upstream: UpstreamConfig
    mirror: MirrorConfig
    verify: VerifyConfig
    http: HttpConfig
    folder: FolderConfig = field(default_factory=FolderConfig)


REQUIRED = object()   # a key without a default: the file must give it


@dataclass(frozen=True)
class Key:
    """One key of a table: the kind of value (the _Table reader that reads
    it), its bounds or choices, and its default (from the dataclass field of
    the same name unless given here)."""

    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    #: "choice": the allowed values; "strs": the allowed items, in the order shown.
    choices: tuple[str, ...] = ()
    #: What an item of a "strs" list with choices is called in an error ("tree").
    noun: str = ""


def _with_defaults(cls: type, keys: dict[str, Key]) -> dict[str, Key]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    table = {}
    for name, key in keys.items():
        f = fields.get(name)
        if f is not None and key.default is None:
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                # Computed where the mirror runs (the host name): no default to show.
                default = None
            else:
                default = REQUIRED
            # As TOML writes it: a list, not the dataclass's tuple.
            key = dataclasses.replace(key, default=list(default) if isinstance(default, tuple) else default)
        table[name] = key
    return table


#: Every table and key of mirror.toml.
SCHEMA: dict[str, dict[str, Key]] = {
    "upstream": _with_defaults(UpstreamConfig, {
        "url": Key("str"),
        "layout": Key("choice", choices=LAYOUTS),
        "username": Key("opt_str"),
        "password": Key("opt_str"),
        "password_file": Key("opt_str"),
        "user_agent": Key("opt_str"),
        "proxy": Key("opt_str"),
        "connect_timeout": Key("number", low=0.1),
        "stall_timeout": Key("number", low=0.1),
        "min_speed": Key("integer", low=0),
        "parallel": Key("integer", low=1, high=64),
        "retries": Key("integer", low=0, high=20),
        "allowed_hosts": Key("strs"),
        "announce": Key("choice", choices=ANNOUNCE_MODES),
        "announce_jitter": Key("number", low=0.0, high=600.0),
    }),
    "mirror": _with_defaults(MirrorConfig, {
        "root": Key("str"),
        "trees": Key("strs", choices=tuple(sorted(TREES)), noun="tree"),
        "channels": Key("strs", choices=CHANNELS, noun="channel"),
        "platforms": Key("strs", choices=PLATFORMS, noun="platform"),
        "languages": Key("lcids"),
        "types": Key("strs"),
        "interval": Key("duration"),
        "grace": Key("duration"),
        "max_drop": Key("number", low=0.0, high=1.0),
        "max_file_size": Key("size", low=1024),
        "name": Key("opt_str"),
    }),
    "verify": _with_defaults(VerifyConfig, {
        "signing_keys": Key("strs"),
        "key_files": Key("strs"),
        "legacy_key_ids": Key("strs"),
        "unverifiable": Key("choice", choices=UNVERIFIABLE_POLICIES),
    }),
    "http": _with_defaults(HttpConfig, {
        "listen": Key("strs"),
        "auth": Key("choice", choices=AUTH_METHODS),
        "htpasswd": Key("opt_str"),
        "allow": Key("strs"),
        "tls_cert": Key("opt_str"),
        "tls_key": Key("opt_str"),
        "default_tree": Key("opt_str"),       # None: the first of [mirror] trees
        "workers": Key("integer", low=0, high=64),
        "max_connections": Key("integer", low=1),
        "max_connections_per_address": Key("integer", low=1),
        "announce_waiters": Key("integer", low=0),
        "status_access": Key("choice", choices=STATUS_ACCESS),
        "admin_users": Key("strs"),
        "access_log": Key("opt_str"),
    }),
    "folder": _with_defaults(FolderConfig, {
        "path": Key("opt_str"),
        "unc": Key("opt_str"),
        "username": Key("opt_str"),
        "password": Key("opt_str"),
        "password_file": Key("opt_str"),
        "port": Key("integer", low=1, high=65535),
        "layout": Key("choice", choices=FOLDER_LAYOUTS),
        "share": Key("str"),
        "read_account": Key("str"),
    }),
}
#: Tables the file must have.
REQUIRED_TABLES = ("upstream", "mirror")


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse(raw, path)


def parse(raw: dict[str, Any], path: Path) -> Config:
    _only(raw, set(SCHEMA), path, None)
    base = path.parent
    up = _Table(raw, "upstream", path)
    mirror = _Table(raw, "mirror", path)
    verify = _Table(raw, "verify", path)
    http = _Table(raw, "http", path)

    upstream_cfg = _upstream(up, base)
    mirror_cfg = _mirror(mirror, base)
    verify_cfg = _verify(verify, base)
    http_cfg = _http(http, base, mirror_cfg)
    if upstream_cfg.layout == "product-mirror" and set(mirror_cfg.channels) != {"regular"}:
        up.fail("layout", "a product's own mirror serves one channel, at its URL: "
                'set [mirror] channels = ["regular"]')
    folder = _Table(raw, "folder", path)
    folder_cfg = _folder(folder, base, mirror_cfg)
    for t in (up, mirror, verify, http, folder):
        t.finish()
    return Config(path, upstream_cfg, mirror_cfg, verify_cfg, http_cfg, folder_cfg)


def _upstream(t: _Table, base: Path) -> UpstreamConfig:
    url = t.value("url")
    parts = urlsplit(url)
    if url.startswith("/") or parts.scheme == "file":
        # A local folder (e.g. a shared folder mounted on the mirror).
        folder = Path(parts.path if parts.scheme == "file" else url)
        if not folder.is_dir():
            t.fail("url", f"{folder} is not a folder")
        url = folder.as_uri()
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        t.fail("url", f"{url!r} is not an http:// or https:// URL, nor a folder")
    if parts.username or parts.password:
        t.fail("url", "must not hold credentials; use username and password")
    if not url.endswith("/"):
        url += "/"
    password = _password(t, base)
    username = t.value("username")
    if username and ":" in username:
        t.fail("username", "must not contain ':' (HTTP Basic authentication cannot carry it)")
    if username and not password:
        t.fail("password", "a username is set but no password or password_file")
    return UpstreamConfig(
        url=url,
        username=username,
        password=password,
        user_agent=t.value("user_agent"),
        proxy=t.value("proxy"),
        connect_timeout=t.value("connect_timeout"),
        stall_timeout=t.value("stall_timeout"),
        min_speed=t.value("min_speed"),
        parallel=t.value("parallel"),
        retries=t.value("retries"),
        allowed_hosts=tuple(h.lower() for h in t.value("allowed_hosts")),
        layout=t.value("layout"),
        announce=t.value("announce"),
        announce_jitter=t.value("announce_jitter"),
    )


def _mirror(t: _Table, base: Path) -> MirrorConfig:
    return MirrorConfig(
        root=_path(base, t.value("root")),
        trees=tuple(t.value("trees")),
        channels=tuple(t.value("channels")),
        platforms=tuple(t.value("platforms")),
        languages=tuple(t.value("languages")),
        types=tuple(x.lower() for x in t.value("types")),
        interval=t.value("interval"),
        grace=t.value("grace"),
        max_drop=t.value("max_drop"),
        max_file_size=t.value("max_file_size"),
        name=_mirror_name(t),
    )


def _mirror_name(t: _Table) -> str:
    # Shown to every lower mirror and in metrics labels: a host name's letters only.
    name = t.str("name") if "name" in t.raw else default_mirror_name()
    if not MIRROR_NAME.fullmatch(name):
        t.fail("name", f"{name!r}: a name of up to 64 letters, digits and . _ : - (such as the host name)")
    return name


def _verify(t: _Table, base: Path) -> VerifyConfig:
    unverifiable = t.value("unverifiable")
    legacy = []
    for value in t.value("legacy_key_ids"):
        key_id = value.replace(" ", "").upper().removeprefix("0X")
        if not re.fullmatch(r"[0-9A-F]{16}", key_id):
            t.fail("legacy_key_ids", f"{value!r} is not a 16-hex-digit OpenPGP key ID")
        legacy.append(key_id)
    signing_keys = tuple(_fingerprint(t, k) for k in t.value("signing_keys"))
    for key_id in legacy:
        if any(fp.endswith(key_id) for fp in signing_keys):
            t.fail("legacy_key_ids", f"{key_id} is a pinned key in signing_keys: its signatures are "
                   "checked, so it cannot also be a key whose signatures are taken unchecked")
    return VerifyConfig(
        signing_keys=signing_keys,
        key_files=tuple(_path(base, p) for p in t.value("key_files")),
        unverifiable=unverifiable,
        legacy_key_ids=tuple(legacy),
    )


def _http(t: _Table, base: Path, mirror: MirrorConfig) -> HttpConfig:
    listen = t.value("listen")
    for item in listen:
        try:
            parse_listen(item)
        except ValueError as exc:
            t.fail("listen", str(exc))
    auth = t.value("auth")
    htpasswd = t.value("htpasswd")
    if auth == "basic" and not htpasswd:
        t.fail("htpasswd", 'auth = "basic" needs an htpasswd file')
    allow = t.value("allow")
    for net in allow:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            t.fail("allow", f"{net!r} is not an address or network (e.g. 10.0.0.0/8)")
    cert, key = t.value("tls_cert"), t.value("tls_key")
    if bool(cert) != bool(key):
        t.fail("tls_cert" if key else "tls_key", "tls_cert and tls_key go together")
    default_tree = t.value("default_tree")
    if default_tree is not None and default_tree not in mirror.trees:
        t.fail("default_tree", f"{default_tree!r} is not among [mirror] trees")
    status_access = t.value("status_access")
    access_log = t.value("access_log")
    return HttpConfig(
        listen=tuple(listen),
        auth=auth,
        htpasswd=_path(base, htpasswd) if htpasswd else None,
        allow=tuple(allow),
        tls_cert=_path(base, cert) if cert else None,
        tls_key=_path(base, key) if key else None,
        default_tree=default_tree or (mirror.trees[0] if mirror.trees else None),
        workers=t.value("workers"),
        max_connections=t.value("max_connections"),
        max_connections_per_address=t.value("max_connections_per_address"),
        announce_waiters=t.value("announce_waiters"),
        status_access=status_access,
        admin_users=tuple(t.value("admin_users")),
        access_log=_path(base, access_log) if access_log else None,
    )


def _password(t: _Table, base: Path) -> str | None:
    """`password`, or the first line of `password_file` (not both)."""
    password = t.value("password")
    password_file = t.value("password_file")
    if password is not None and password_file is not None:
        t.fail("password_file", "give either password or password_file, not both")
    if password_file is not None:
        pf = _path(base, password_file)
        try:
            password = pf.read_text("utf-8").strip()
        except OSError as exc:
            t.fail("password_file", f"cannot read {pf} ({exc.strerror})")
    return password


def _folder(t: _Table, base: Path, mirror: MirrorConfig) -> FolderConfig:
    path, unc = t.value("path"), t.value("unc")
    if path and unc:
        t.fail("unc", "give either path (a local folder) or unc (a remote share), not both")
    folder = _path(base, path) if path else None
    if folder is not None:
        resolved, root = folder.resolve(), mirror.root.resolve()
        if resolved == root or root in resolved.parents or resolved in root.parents:
            t.fail("path", f"{folder} overlaps the store ([mirror] root = {mirror.root}); "
                           "the shared folder must be a folder of its own")
    if unc:
        try:
            parse_share(unc)
        except ConfigError as exc:
            t.fail("unc", str(exc))
    username = t.value("username")
    if username:
        try:
            parse_account(username)
        except ConfigError as exc:
            t.fail("username", str(exc))
    password = _password(t, base)
    if unc and not (username and password):
        t.fail("username" if not username else "password",
               "a remote share (unc) needs username and password or password_file")
    layout = t.value("layout")
    share = t.value("share")
    if not is_valid_name(share):
        t.fail("share", f"{share!r} is not a valid share name")
    read_account = t.value("read_account")
    try:
        parse_account(read_account)
    except ConfigError as exc:
        t.fail("read_account", str(exc))
    return FolderConfig(folder, unc, username, password, t.value("port"), layout, share, read_account)


def parse_listen(item: str) -> tuple[str, int]:
    """`"0.0.0.0:2221"`, `"[::1]:2221"` or `":2221"` to (host, port)."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]*):(\d+)", item)
    if not m:
        raise ValueError(f"{item!r} is not host:port (e.g. 0.0.0.0:2221 or [::1]:2221)")
    host = m.group(1) or m.group(3) or "0.0.0.0"
    port = int(m.group(2) or m.group(4))
    if not 0 <= port <= 65535:
        raise ValueError(f"{item!r}: port out of range")
    return host, port


def _fingerprint(t: _Table, value: str) -> str:
    fp = value.replace(" ", "").upper()
    if not re.fullmatch(r"[0-9A-F]{40}", fp):
        t.fail("signing_keys", f"{value!r} is not a 40-hex-digit OpenPGP fingerprint")
    return fp


def _path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _only(raw: dict, allowed: set[str], path: Path, table: str | None) -> None:
    for key in raw:
        if key not in allowed:
            where = f"[{table}] " if table else ""
            raise ConfigError(f"{path}: {where}unknown key {key!r}; known: {', '.join(sorted(allowed))}")


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|m|h|d)?")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?", re.I)
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class _Table:
    """One `[table]` of the file: reads by SCHEMA that name the key on error,
    and a check at the end that it holds no key SCHEMA does not know (a typo)."""

    def __init__(self, raw: dict, name: str, path: Path):
        self.name, self.path = name, path
        self.schema = SCHEMA[name]
        value = raw.get(name)
        if value is None:
            if name in REQUIRED_TABLES:
                raise ConfigError(f"{path}: missing table [{name}]")
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name} must be a table ([{name}])")
        self.raw = value

    def fail(self, key: str, message: str) -> None:
        raise ConfigError(f"{self.path}: [{self.name}] {key}: {message}")

    def value(self, key: str) -> Any:
        """The key's value read and checked as SCHEMA says, or its default."""
        spec = self.schema[key]
        default = None if spec.default is REQUIRED else spec.default
        if spec.kind in ("number", "integer"):
            return getattr(self, spec.kind)(key, default, spec.low, spec.high)
        if spec.kind == "size":
            return self.size(key, default, spec.low or 0)
        if spec.kind == "duration":
            return self.duration(key, default)
        if spec.kind == "choice":
            found = self.str(key, default)
            if found not in spec.choices:
                self.fail(key, f"{found!r} is not one of: {', '.join(spec.choices)}")
            return found
        if spec.kind == "strs":
            items = self.strs(key, default)
            for item in items if spec.choices else ():
                if item not in spec.choices:
                    self.fail(key, f"unknown {spec.noun} {item!r}; known: {', '.join(spec.choices)}")
            return items
        if spec.kind == "lcids":
            found = self.get(key, default)
            if not isinstance(found, list) or not all(isinstance(x, int) and not isinstance(x, bool)
                                                      for x in found):
                self.fail(key, "must be a list of Windows LCIDs (numbers such as 1033)")
            return found
        return getattr(self, spec.kind)(key, default) if spec.kind == "str" else self.opt_str(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def str(self, key: str, default: str | None = None) -> str:
        value = self.get(key, default)
        if value is None:
            self.fail(key, "missing value")
        if not isinstance(value, str) or not value:
            self.fail(key, f"must be a non-empty string, not {type(value).__name__}")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(key, f"must be a string, not {type(value).__name__}")
        return value or None

    def strs(self, key: str, default: list[str]) -> list[str]:
        value = self.get(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            self.fail(key, "must be a list of strings")
        return value

    def number(self, key: str, default: float, low: float | None = None,
               high: float | None = None) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"must be a number, not {type(value).__name__}")
        self._within(key, value, low, high)
        return value

    def integer(self, key: str, default: int, low: int | None = None, high: int | None = None) -> int:
        """A whole number: a count of things is never 2.5 (nor 2.0, which TOML calls a float)."""
        value = self.get(key, default)
        if isinstance(value, float):
            self.fail(key, f"must be a whole number, not {value}")
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number, not {type(value).__name__}")
        self._within(key, value, low, high)
        return value

    def _within(self, key: str, value: float, low: float | None, high: float | None) -> None:
        if low is not None and high is not None and not low <= value <= high:
            self.fail(key, f"must be {low} to {high}, not {value}")
        if low is not None and value < low:
            self.fail(key, f"must be at least {low}, not {value}")
        if high is not None and value > high:
            self.fail(key, f"must be at most {high}, not {value}")

    def duration(self, key: str, default: float) -> float:
        value = self.get(key, default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        elif isinstance(value, str) and (m := _DURATION.fullmatch(value.strip())):
            seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2) or "s"]
        else:
            self.fail(key, f"{value!r} is not a duration (seconds, or e.g. '90s', '30m', '1h')")
        if seconds < 0:
            self.fail(key, "must not be negative")
        return seconds

    def size(self, key: str, default: int, low: int = 0) -> int:
        """Bytes: a whole number, or a string such as "512 MiB", "2GB"."""
        value = self.get(key, default)
        if isinstance(value, int) and not isinstance(value, bool):
            size = value
        elif isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
            size = int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()])
        else:
            self.fail(key, f"{value!r} is not a size (bytes, or e.g. '512 MiB', '2 GB')")
        if size < low:
            self.fail(key, f"{size} bytes is less than {low}")
        return size

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - set(self.schema))
        if unknown:
            self.fail(unknown[0], f"unknown key (a typo?); known: {', '.join(self.schema)}")
