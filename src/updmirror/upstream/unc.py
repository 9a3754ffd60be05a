"""Shared folders as users write them: `\\\\server\\share\\path` and `DOMAIN\\User`.

One home for reading (and writing back) a UNC path and a Windows account
name, for the SMB fetcher, the reference client and whoever publishes to a
share. Inside the program a share location is also a URL,
`smb://server[:port]/share/path/`, so it can stand wherever an upstream URL
does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from updmirror import redact
from updmirror.errors import ConfigError

SMB_PORT = 445
#: Host names, IPv4 addresses, or IPv6 in brackets (the URL form).
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,252})|\[[0-9A-Fa-f:.]+\])$")
#: Characters Windows forbids in share, folder and file names, and control characters.
_BAD_NAME = re.compile(r'[\x00-\x1f"*/:<>?\\|]')


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
    shown = redact.url(text)
    if text.lower().startswith("smb://"):
        parts = urlsplit(text)
        try:
            url_port = parts.port
        except ValueError:
            raise ConfigError(f"{shown}: the port is not a number") from None
        if parts.username or parts.password:
            raise ConfigError(f"{shown}: credentials do not belong in the location; "
                              "give the account separately (DOMAIN\\User)")
        host = parts.hostname or ""
        names = [unquote(p) for p in parts.path.split("/") if p]
        port = port if port is not None else (url_port or SMB_PORT)
    elif text.startswith(("\\\\", "//")):
        names = [p for p in re.split(r"[\\/]", text[2:])]
        while names and names[-1] == "":
            names.pop()                     # a trailing separator
        host, names = (names[0], names[1:]) if names else ("", [])
        port = SMB_PORT if port is None else port
    else:
        raise ConfigError(f"{shown}: not a share (expected \\\\server\\share[\\path])")
    if not host or not _HOST.match(host):
        raise ConfigError(f"{shown}: {host!r} is not a server name or address")
    if not names:
        raise ConfigError(f"{shown}: no share name (expected \\\\{host}\\share[\\path])")
    for name in names:
        if name in ("", ".", "..") or _BAD_NAME.search(name):
            raise ConfigError(f"{shown}: {name!r} is not a usable folder or share name")
    if not 0 < port < 65536:
        raise ConfigError(f"{shown}: port {port} is out of range")
    return ShareLocation(host.strip("[]") if host.startswith("[") else host, names[0],
                         tuple(names[1:]), port)


@dataclass(frozen=True)
class Account:
    """A Windows account: `DOMAIN\\User`, `WORKGROUP\\User`, or a bare `User`."""

    user: str
    domain: str | None = None

    def __str__(self) -> str:
        return f"{self.domain}\\{self.user}" if self.domain else self.user


def parse_account(text: str) -> Account:
    """`DOMAIN\\User` (or `WORKGROUP\\User`, or `User`) to an Account; ConfigError if malformed."""
    domain, sep, user = text.rpartition("\\")
    if not user or (sep and not domain) or "\\" in domain or "@" in domain:
        raise ConfigError(f"{text!r} is not an account name (expected DOMAIN\\User or User)")
    for part in (domain, user):
        if re.search(r'[\x00-\x1f"/\[\]:;|=,+*?<>]', part):
            raise ConfigError(f"{text!r}: {part!r} holds characters an account name cannot have")
    return Account(user, domain or None)
