"""Module sections of an index, the files they name, and filters over them.

Everything here is pure: an index and its URL in, values out. Any `file=`
that would leave the repository is an :class:`UnsafePathError` naming the
section, so nothing downstream ever sees an unsafe path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from updmirror.errors import FormatError, UnsafePathError

from .updatever import Section, UpdateVer

#: Sections that never describe a module file.
NON_MODULE_SECTIONS = frozenset({"HOSTS", "SERVERS", "LINKS", "EXPIRE", "SETUP", "PCUVER"})
#: Sections a mirror removes: clients that see them may go around the mirror.
UPSTREAM_ONLY_SECTIONS = frozenset({"HOSTS", "SERVERS", "LINKS"})

MAX_PATH_LENGTH = 512
#: Characters a repository path may hold; vendor paths use far fewer.
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9._~!$&'()+,;=@-]+$")
_SECTION_NAME = re.compile(r"^(CONTINUOUS_)?([A-Z0-9_]+?)(\d+)$")
_REPEATED_SLASHES = re.compile(r"//+")


@dataclass(frozen=True)
class Module:
    """One module file as an index describes it."""

    section: str
    type: str
    level: int | None          # None for continuous deltas
    continuous: bool
    version: str | None
    versionid: int | None
    build: int | None
    base: int | None
    platform: str | None
    language: int | None
    file: str                  # the `file=` value as written
    path: str                  # normalised, host-relative: "/folder/mod_x/em.nup"
    url: str                   # where to fetch it
    size: int | None


def is_module_section(section: Section) -> bool:
    name = section.name.upper()
    if name in NON_MODULE_SECTIONS or name.startswith(("PICO_", "HASH")):
        return False
    return "file" in section


def modules(index: UpdateVer, index_url: str, *, allowed_hosts: Iterable[str] = (),
            source: str | None = None, root_url: str | None = None) -> list[Module]:
    """The module sections of `index`, with their files resolved.

    `index_url` is where the index was read from; `allowed_hosts` are other
    hosts a full-URL `file=` may point to.
    """
    source = source or index_url
    allowed = {h.lower() for h in allowed_hosts}
    return [module_from_section(s, index_url, allowed, source, root_url)
            for s in index.sections if is_module_section(s)]


def module_from_section(section: Section, index_url: str, allowed_hosts: set[str],
                        source: str, root_url: str | None = None) -> Module:
    where = f"{source} [{section.name}]"
    file_value = section.get("file") or ""
    url, path = resolve_file(file_value, index_url, allowed_hosts, where, root_url)
    m = _SECTION_NAME.match(section.name.upper())
    continuous = section.name.upper().startswith("CONTINUOUS_")
    mtype = section.get("type") or (m.group(2).lower() if m else section.name.lower())
    return Module(
        section=section.name,
        type=mtype.lower(),
        level=None if continuous else _int(section, "level", where),
        continuous=continuous,
        version=section.get("version"),
        versionid=_int(section, "versionid", where),
        build=_int(section, "build", where),
        base=_int(section, "base", where),
        platform=(section.get("platform") or None),
        language=_int(section, "language", where),
        file=file_value,
        path=path,
        url=url,
        size=_int(section, "size", where),
    )


def _int(section: Section, key: str, where: str) -> int | None:
    value = section.get(key)
    if value is None or value == "":
        return None
    try:
        number = int(value, 10)
    except ValueError:
        raise FormatError(f"{where}: {key}={value!r} is not a whole number") from None
    if number < 0 or number > 2**63:
        raise FormatError(f"{where}: {key}={value!r} is out of range")
    return number


def resolve_file(file_value: str, index_url: str, allowed_hosts: set[str] | frozenset[str],
                 where: str, root_url: str | None = None) -> tuple[str, str]:
    """Resolve a `file=` value to (URL to fetch, normalised repository path).

    The three forms: a host-absolute path (against the repository root), a
    bare name (against the index's folder), a full URL (its host must be the
    index's or an allowed one). The repository root `root_url` is the
    index's host unless given: an upstream folder or a mirror under a path
    prefix has its own root, and paths are relative to it.
    """
    if not file_value:
        raise FormatError(f"{where}: file= is empty")
    if len(file_value) > MAX_PATH_LENGTH:
        raise UnsafePathError(f"{where}: file= is {len(file_value)} characters long "
                              f"(limit {MAX_PATH_LENGTH})")
    if "\x00" in file_value or "\\" in file_value or any(ord(c) < 32 for c in file_value):
        raise UnsafePathError(f"{where}: file= {file_value!r} holds a NUL, a backslash "
                              "or a control character")
    base = urlsplit(index_url)
    root = urlsplit(root_url) if root_url else base._replace(path="/", query="", fragment="")
    prefix = root.path.rstrip("/")
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", file_value):
        target = urlsplit(file_value)
        if target.scheme.lower() not in ("http", "https"):
            raise UnsafePathError(f"{where}: file= {file_value!r} uses scheme "
                                  f"{target.scheme!r}; only http and https are fetched")
        if "@" in target.netloc:
            # Shown without them: an index is no place for a password, nor a log.
            raise UnsafePathError(f"{where}: file= {_without_userinfo(target)!r} holds credentials "
                                  "(user:password@); refused: the mirror sends its own only to "
                                  "the upstream and the allowed hosts")
        try:
            origin = _origin(target)
        except ValueError:
            raise UnsafePathError(f"{where}: file= {file_value!r} has a port that is not a number "
                                  "from 1 to 65535") from None
        # The index's own host only as the same origin: another scheme or port on
        # that name is another server, and must be allowed like any other host.
        same_origin = origin == _origin(base)
        host = origin[1]
        if not same_origin and host not in allowed_hosts:
            raise UnsafePathError(f"{where}: file= {file_value!r} points to another server "
                                  f"({_origin_text(target)}; the index is at {_origin_text(base)}); "
                                  "add its host to the allowed hosts "
                                  "if that is intended")
        raw_path = target.path
        if prefix and same_origin and raw_path.startswith(prefix + "/"):
            raw_path = raw_path[len(prefix):]
        url = file_value
    elif file_value.startswith("//"):
        raise UnsafePathError(f"{where}: file= {file_value!r} is a network-path reference "
                              "to another host")
    elif file_value.startswith("/"):
        raw_path = file_value.split("?", 1)[0].split("#", 1)[0]
        path = normalise_path(raw_path, where, file_value)
        return root._replace(path=prefix + path).geturl(), path
    else:
        # Check the name as written: urljoin would silently fold "../".
        _check_segments(merge_slashes(file_value.split("?", 1)[0]), where, file_value)
        url = urljoin(index_url, file_value)
        raw_path = urlsplit(url).path
        if prefix:
            if not raw_path.startswith(prefix + "/"):
                raise UnsafePathError(f"{where}: file= {file_value!r} is outside the repository")
            raw_path = raw_path[len(prefix):]
    path = normalise_path(raw_path, where, file_value)
    return url, path


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url) -> tuple[str, str, int | None]:
    """(scheme, host, port) of a split URL, the port filled in when implied
    (http://h/ and http://h:80/ are one server). ValueError for a bad port."""
    scheme = url.scheme.lower()
    port = url.port
    if port == 0:
        raise ValueError("port 0")
    return scheme, (url.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _origin_text(url) -> str:
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}" + (f":{port}" if port is not None else "")


def _without_userinfo(url) -> str:
    return url._replace(netloc=url.netloc.rpartition("@")[2]).geturl()


def merge_slashes(path: str) -> str:
    """Repeated slashes as one, as nginx's `merge_slashes` does: a client set up
    with `http://mirror:2221/` asks for `//dll/update.ver`, the vendor's servers take it."""
    return _REPEATED_SLASHES.sub("/", path) if "//" in path else path


def normalise_path(raw_path: str, where: str, shown: str | None = None) -> str:
    """A safe host-relative path ("/a/b.nup") or an UnsafePathError.

    Repeated slashes are merged first (an empty segment is never unsafe);
    percent-decoding happens once, after that and before the checks, so no
    encoding of `..` or of a separator gets through (`%2F%2F` stays refused).
    """
    shown = raw_path if shown is None else shown
    raw_path = merge_slashes(raw_path)
    try:
        decoded = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    except UnicodeDecodeError:
        raise UnsafePathError(f"{where}: {shown!r} percent-encodes bytes that are not UTF-8") from None
    if "%" in decoded:
        raise UnsafePathError(f"{where}: {shown!r} is percent-encoded twice")
    if not decoded.startswith("/"):
        decoded = "/" + decoded
    _check_segments(decoded[1:], where, shown)
    if len(decoded) > MAX_PATH_LENGTH:
        raise UnsafePathError(f"{where}: {shown!r} is too long")
    return decoded


def _check_segments(rel: str, where: str, shown: str) -> None:
    if not rel:
        raise UnsafePathError(f"{where}: {shown!r} names no file")
    for segment in rel.split("/"):
        if segment in ("", ".", ".."):
            raise UnsafePathError(f"{where}: {shown!r} has an empty, '.' or '..' path segment; "
                                  "it could leave the repository")
        if not _SAFE_SEGMENT.match(segment):
            raise UnsafePathError(f"{where}: {shown!r} holds characters not allowed in a "
                                  "repository path")


@dataclass(frozen=True)
class Selection:
    """What an administrator chose to mirror; empty tuples mean "all"."""

    platforms: tuple[str, ...] = ()
    languages: tuple[int, ...] = ()
    types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Lower-cased once here, not for every module a sync plans.
        object.__setattr__(self, "platforms", tuple(p.lower() for p in self.platforms))
        object.__setattr__(self, "types", tuple(t.lower() for t in self.types))

    def wants(self, module: Module) -> bool:
        # Sections without a platform or language apply to every client.
        if self.platforms and module.platform and module.platform.lower() not in self.platforms:
            return False
        if self.languages and module.language is not None and module.language not in self.languages:
            return False
        if self.types and module.type not in self.types:
            return False
        return True


def select(mods: Iterable[Module], selection: Selection) -> list[Module]:
    return [m for m in mods if selection.wants(m)]


def database_version(mods: Iterable[Module]) -> int | None:
    """The highest `versionid` over the modules: "the database version"."""
    ids = [m.versionid for m in mods if m.versionid is not None]
    return max(ids) if ids else None
