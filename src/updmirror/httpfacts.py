"""What HTTP says, written once: dates, byte ranges, Basic credentials, content types.

Our server (serve/), the fetchers (upstream/), the sync, the exported web
server configurations (export/) and the simulated vendor (vendor/) all read
or write these; each reads them here, so they cannot drift apart. Pure
functions over str or bytes (the server's hot path keeps bytes); stdlib only
and no other updmirror module, so every room may import it.
"""

from __future__ import annotations

import base64
import binascii
import os
from datetime import timezone
from email.utils import formatdate, parsedate_to_datetime

__all__ = ["CONTENT_TYPES", "DEFAULT_CONTENT_TYPE", "MIRROR_EXTENSIONS", "RangeNotSatisfiable", "basic_authorization",
           "basic_challenge", "content_type", "http_date", "parse_basic", "parse_http_date",
           "parse_range"]


# -- dates (RFC 9110 5.6.7) ---------------------------------------------------------

def http_date(ts: float) -> str:
    """`Sun, 06 Nov 1994 08:49:37 GMT` for seconds since the epoch."""
    return formatdate(ts, usegmt=True)


def parse_http_date(value: str | bytes | None) -> float | None:
    """Seconds since the epoch, or None for anything absent or unreadable
    (RFC 9110 13.1.3: such a date is ignored).

    A date without a zone (`-0000`) is taken as UTC, not as the machine's
    local time. A year or offset beyond what `datetime` holds raises
    OverflowError inside, not ValueError: it is unreadable all the same.
    """
    if not value:
        return None
    try:
        if isinstance(value, bytes):
            value = value.decode("ascii")
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    except (ValueError, TypeError, UnicodeDecodeError, IndexError, OverflowError):
        return None


# -- byte ranges (RFC 9110 14) --------------------------------------------------------

class RangeNotSatisfiable(ValueError):
    """The range lies outside the file: answer 416 with `Content-Range: bytes */size`."""


def parse_range(value: str | bytes, size: int) -> tuple[int, int] | None:
    """A single `bytes=` range to (first, last) inclusive, clipped to the file.

    None means "ignore the header and send the whole file" (multiple ranges,
    another unit, a malformed value: RFC 9110 lets a server ignore them).
    Raises RangeNotSatisfiable when the range lies outside the file.
    """
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if not value.startswith(b"bytes=") or b"," in value:
        return None
    first, dash, last = value[6:].strip().partition(b"-")
    if not dash:
        return None
    if not first:
        try:
            n = int(last)
        except ValueError:
            return None
        if n <= 0 or not last.isdigit() or not size:
            raise RangeNotSatisfiable(value)
        return max(0, size - n), size - 1
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size:
        raise RangeNotSatisfiable(value)
    if end < start:
        return None
    return start, min(end, size - 1)


# -- Basic authentication (RFC 7617) ----------------------------------------------------

def parse_basic(header: str | bytes | None) -> tuple[str, str] | None:
    """`Basic base64(user:password)` to (user, password); None for no header,
    another scheme, bad base64 or UTF-8, no colon or an empty user."""
    if not header:
        return None
    if isinstance(header, str):
        header = header.encode("utf-8", "surrogateescape")
    scheme, _, value = header.partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        return None
    return user, password


def basic_authorization(user: str, password: str) -> str:
    """The `Authorization` header value that parse_basic() reads back."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def basic_challenge(realm: str, *, utf8: bool = True) -> str:
    """The `WWW-Authenticate` value asking for Basic credentials; `utf8`: and
    saying they are read as UTF-8 (RFC 7617 2.1), which the vendor does not say."""
    return f'Basic realm="{realm}"' + (', charset="UTF-8"' if utf8 else "")


# -- content types ---------------------------------------------------------------------

#: By file name extension; what the vendor's servers send for the two that matter.
CONTENT_TYPES = {".ver": "text/plain", ".nup": "application/octet-stream",
                 ".txt": "text/plain; charset=utf-8", ".json": "application/json",
                 ".html": "text/html; charset=utf-8", ".xml": "application/xml"}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: What a mirror serves (indexes, module files): the types a web server in front
#: of the store must be told (export/); the others are our server's own pages.
MIRROR_EXTENSIONS = (".ver", ".nup")


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), DEFAULT_CONTENT_TYPE)
