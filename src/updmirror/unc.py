"""Windows names as administrators write them: `\\\\server\\share\\folder` and
`DOMAIN\\User` (or `WORKGROUP\\User`, or `user@domain`).

One home for reading (and writing back) a UNC path and an account name, for
the configuration, the shared folder's writer (folder/), the SMB fetcher
(upstream/), the reference client and the Samba export. Inside the program a
share location is also a URL, `smb://server[:port]/share/path/`, so it can
stand wherever an upstream URL does. Pure parsing, no I/O; errors are
ConfigError, naming the text (without a password) and what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from updmirror import redact
from updmirror.errors import ConfigError

SMB_PORT = 445
#: Host names, IPv4 addresses, or IPv6 in brackets (the URL form).
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}|\[[0-9A-Fa-f:.]+\]")
#: Characters Windows refuses in a share, folder or file name, and control characters.
_BAD_NAME = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
#: ... and in an account name (besides those).
_BAD_ACCOUNT = re.compile(r'[\x00-\x1f"/\[\]:;|=,+*?<>]')
_DOMAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


@dataclass(frozen=True)
class ShareLocation:
    """A folder on an SMB share: `\\\\host\\share\\a\\b` is ("host", "share", ("a", "b"))."""

    host: str
    share: str
    folders: tuple[str, ...] = ()
    port: int = SMB_PORT

    @property
    def unc(self) -> str:
        """As a user writes it; the port, which UNC cannot carry, is left out."""
        return "\\\\" + "\\".join((self.host, self.share, *self.folders))

    @property
    def url(self) -> str:
        """`smb://host[:port]/share/a/b/`, always ending with a slash."""
        netloc = self.host if self.port == SMB_PORT else f"{self.host}:{self.port}"
        path = "/".join(quote(p, safe="") for p in (self.share, *self.folders))
        return f"smb://{netloc}/{path}/"

    def join(self, relative: str) -> str:
        """The UNC path of `relative` ("a/b.nup", forward slashes) below this one."""
        return "\\".join((self.unc, *[p for p in relative.split("/") if p]))

    def __str__(self) -> str:
        return self.unc if self.port == SMB_PORT else f"{self.unc} (port {self.port})"


def is_share(text: str) -> bool:
    """Whether `text` names a share (`\\\\host\\share...`, `//host/share...` or `smb://...`)."""
    return text.startswith(("\\\\", "//")) or text.lower().startswith("smb://")


def parse_share(text: str, port: int | None = None) -> ShareLocation:
    """A share location from `\\\\host\\share[\\path]`, `//host/share[/path]` or an smb:// URL.

    `port` overrides the URL's (UNC has none). Raises ConfigError naming the
    problem; a `..` or an empty name is refused, never resolved.
    """
    shown = repr(redact.url(text.strip()))
    raw = text.strip()
    if raw.lower().startswith("smb://"):
        parts = urlsplit(raw)
        try:
            url_port = parts.port
        except ValueError:
            raise ConfigError(f"{shown}: the port is not a number") from None
        if parts.username or parts.password:
            raise ConfigError(f"{shown}: credentials do not belong in the location; "
                              "give the account separately (DOMAIN\\User)")
        host = parts.netloc.rpartition("@")[2]
        host = host if host.startswith("[") else host.partition(":")[0]
        names = [unquote(p) for p in parts.path.split("/") if p]
        port = port if port is not None else (url_port or SMB_PORT)
    elif raw.startswith(("\\\\", "//")):
        names = re.split(r"[\\/]", raw[2:])
        while names and names[-1] == "":
            names.pop()                     # a trailing separator
        host, names = (names[0], names[1:]) if names else ("", [])
        port = SMB_PORT if port is None else port
    else:
        raise ConfigError(f"{shown} is not a UNC path (\\\\server\\share\\folder)")
    if not _HOST.fullmatch(host):
        raise ConfigError(f"{shown}: {host!r} is not a server name or address")
    if not names:
        raise ConfigError(f"{shown} names no share (\\\\{host}\\share[\\folder])")
    for name in names:
        if not is_valid_name(name):
            raise ConfigError(f"{shown}: {name!r} is not a valid share or folder name")
    if not 0 < port < 65536:
        raise ConfigError(f"{shown}: port {port} is out of range")
    return ShareLocation(host.strip("[]"), names[0], tuple(names[1:]), port)


def is_valid_name(name: str) -> bool:
    """Whether `name` can be a share, folder or file name on Windows and Samba."""
    return bool(name) and name not in (".", "..") and not _BAD_NAME.search(name) and len(name) <= 255


@dataclass(frozen=True)
class Account:
    """A Windows account: `domain` is "" when none was given."""

    domain: str
    user: str

    def __str__(self) -> str:
        return f"{self.domain}\\{self.user}" if self.domain else self.user


def parse_account(text: str) -> Account:
    """`DOMAIN\\User`, `WORKGROUP\\User`, `user@domain` or a bare `User`; ConfigError if malformed."""
    raw = text.strip()
    if "\\" in raw:
        domain, _, user = raw.partition("\\")
    elif "@" in raw:
        user, _, domain = raw.partition("@")
    else:
        domain, user = "", raw
    if ("\\" in raw or "@" in raw) and not domain:
        raise ConfigError(f"{text!r} names no domain (DOMAIN\\User or WORKGROUP\\User)")
    if not user or "@" in user or "\\" in user or _BAD_ACCOUNT.search(user):
        raise ConfigError(f"{text!r} is not an account name (DOMAIN\\User or WORKGROUP\\User)")
    if domain and not _DOMAIN.fullmatch(domain):
        raise ConfigError(f"{text!r}: {domain!r} is not a domain or workgroup name")
    return Account(domain, user)
