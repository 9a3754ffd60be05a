"""Windows names as administrators write them: `\\\\server\\share\\folder` and
`DOMAIN\\User` (or `WORKGROUP\\User`, or `user@domain`).

Pure parsing, no I/O: the shared folder's writer and the configuration use
it, and so can anything else that reads a UNC path or an account name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Characters Windows refuses in a file or folder name (and in a share name).
_BAD_NAME = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


@dataclass(frozen=True)
class Unc:
    """`\\\\server\\share\\a\\b`: the server, the share and the folders below it."""

    server: str
    share: str
    parts: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "\\\\" + "\\".join((self.server, self.share, *self.parts))

    def join(self, relative: str) -> str:
        """The UNC path of `relative` ("a/b.nup", forward slashes) below this one."""
        return "\\".join((str(self), *[p for p in relative.split("/") if p]))


def parse_unc(text: str) -> Unc:
    """`\\\\server\\share[\\folder...]` (forward slashes accepted too); ValueError says why not."""
    raw = text.strip()
    if not (raw.startswith("\\\\") or raw.startswith("//")):
        raise ValueError(f"{text!r} is not a UNC path (\\\\server\\share\\folder)")
    pieces = [p for p in re.split(r"[\\/]", raw[2:]) if p]
    if len(pieces) < 2:
        raise ValueError(f"{text!r} names no share (\\\\server\\share)")
    server, share, *parts = pieces
    if not _HOST.fullmatch(server):
        raise ValueError(f"{text!r}: {server!r} is not a host name or address")
    for name in (share, *parts):
        if not is_valid_name(name):
            raise ValueError(f"{text!r}: {name!r} is not a valid share or folder name")
    return Unc(server, share, tuple(parts))


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
    """`DOMAIN\\User`, `WORKGROUP\\User`, `user@domain` or a bare `User`."""
    raw = text.strip()
    if "\\" in raw:
        domain, _, user = raw.partition("\\")
    elif "@" in raw:
        user, _, domain = raw.partition("@")
    else:
        domain, user = "", raw
    if ("\\" in raw or "@" in raw) and not domain:
        raise ValueError(f"{text!r} names no domain (DOMAIN\\User or WORKGROUP\\User)")
    if not user or "@" in user or _BAD_NAME.search(user):
        raise ValueError(f"{text!r} is not an account name (DOMAIN\\User or WORKGROUP\\User)")
    if domain and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}", domain):
        raise ValueError(f"{text!r}: {domain!r} is not a domain or workgroup name")
    return Account(domain, user)
