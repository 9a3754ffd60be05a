"""Keep credentials out of everything a person or a log can read.

The one home of credential scrubbing: `url` for a URL about to go into a
message, `Scrubber` for text that came from elsewhere (a library's error,
a run record) and may hold a password or a URL with one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

#: What a secret is replaced with.
MASK = "***"

#: `scheme://user:password@` inside running text.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]*@")


def url(u: str) -> str:
    """Return `u` without any user-info part (`user:password@`)."""
    try:
        parts = urlsplit(u)
    except ValueError:
        return "<unparseable URL>"
    if parts.username is None and parts.password is None:
        return u
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def userinfo(text: str) -> str:
    """`text` with the user-info of every URL in it removed."""
    return _USERINFO.sub(r"\1", text)


def password_of(u: str | None) -> str | None:
    """The password a URL carries (a proxy URL may), to scrub it elsewhere."""
    if not u:
        return None
    try:
        return urlsplit(u).password
    except ValueError:
        return None


class Scrubber:
    """Removes URL user-info and the given secrets from text.

    `min_length`: secrets shorter than this are not replaced (a two-letter
    "password" would blank out ordinary words in a status page; the URL rule
    still covers those). Longer secrets are replaced first, so that a
    secret inside another one cannot leave the rest of it behind.
    """

    def __init__(self, secrets: Iterable[str | None] = (), *, min_length: int = 1):
        found = {s for s in secrets if s and len(s) >= min_length}
        self.secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = userinfo(text)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text
