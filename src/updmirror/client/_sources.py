"""Where a client updates from: sources as users write them, and the fetchers that read them.

A source is an update server URL (`http://mirror:2221`), a share
(`\\\\mirror\\share[\\path]`) or a local folder. The fetchers are the
upstream room's: one per (source, User-Agent, account), shared by every
update made through the same :class:`updmirror.client.Client`, and every
HTTP fetcher draws on one connection pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from updmirror import redact
from updmirror.errors import ConfigError
from updmirror.unc import is_share, parse_account, parse_share


@dataclass(frozen=True)
class Source:
    """One place to update from, with the account to use there (if any)."""

    kind: str                     # "http", "share" or "folder"
    #: Where the fetcher reads it: an http(s)://, smb:// or file:// URL ending with "/".
    url: str
    #: How messages name it: as the user wrote it, never with a password.
    shown: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str, *, user: str | None = None, password: str | None = None,
              smb_port: int | None = None) -> Source:
        """A source from `http://host[:port][/path]`, `\\\\server\\share[\\path]` (or
        `smb://server[:port]/share`), or a folder path; ConfigError when it is none of them.

        `smb_port` is the port for a share (UNC paths cannot carry one).
        """
        text = text.strip()
        if not text:
            raise ConfigError("an empty --source")
        lowered = text.lower()
        if lowered.startswith(("http://", "https://")):
            parts = urlsplit(text)
            if not parts.hostname:
                raise ConfigError(f"{redact.url(text)}: no host in the URL")
            if parts.username or parts.password:
                raise ConfigError(f"{redact.url(text)}: the URL holds credentials; give them with "
                                  "--user and --password-file instead")
            try:
                _ = parts.port
            except ValueError:
                raise ConfigError(f"{text}: the port is not a number") from None
            url = text if text.endswith("/") else text + "/"
            return cls("http", url, text.rstrip("/"), user, password)
        if is_share(text):
            where = parse_share(text, smb_port)
            if user is None:
                raise ConfigError(f"{where}: a share needs an account: --user DOMAIN\\User "
                                  "(or WORKGROUP\\User) and --password-file")
            parse_account(user)
            return cls("share", where.url, str(where), user, password)
        if "://" in text:
            raise ConfigError(f"{redact.url(text)}: not a source this client reads "
                              "(http://, https://, \\\\server\\share or a folder)")
        folder = Path(text).expanduser().absolute()
        return cls("folder", folder.as_uri().rstrip("/") + "/", str(folder), user, password)

    def file_url(self, path: str) -> str:
        """The URL of a repository path ("/dll/update.ver") on this source."""
        return self.url + path.lstrip("/")
