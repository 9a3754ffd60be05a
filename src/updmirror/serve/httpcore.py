"""HTTP/1.1 message pieces for the hot path: parse a request head, render
a response head, read `Range` and the conditional headers.

Pure functions over bytes, so tests can call them directly and the
protocol (serve/protocol.py) stays a thin layer of I/O around them. Only the
headers the server acts on are kept; everything is ASCII bytes until a
decision needs a string.
"""

from __future__ import annotations

import re
import time

from updmirror.httpfacts import RangeNotSatisfiable
from updmirror.httpfacts import http_date as _http_date
from updmirror.httpfacts import parse_range as _parse_range

#: Longest request line accepted (414 beyond); vendor paths are < 200 bytes.
MAX_REQUEST_LINE = 4096
#: Largest request head accepted (431 beyond): request line and all headers.
MAX_HEAD = 16384
MAX_HEADERS = 100

REASONS = {
    200: "OK", 206: "Partial Content", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 414: "URI Too Long", 416: "Range Not Satisfiable",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
}

STATUS_LINES = {code: f"HTTP/1.1 {code} {reason}\r\n".encode() for code, reason in REASONS.items()}
SERVER = b"Server: updmirror\r\n"


class HttpError(Exception):
    """A request the server answers with an error status, then closes."""

    def __init__(self, status: int, detail: str = ""):
        super().__init__(detail or REASONS.get(status, ""))
        self.status = status
        self.detail = detail


class Request:
    """The parts of a request head the server acts on."""

    __slots__ = ("method", "target", "path", "version", "keep_alive", "user_agent", "range",
                 "if_none_match", "if_modified_since", "if_range", "authorization",
                 "spread_control", "referer", "has_body", "line")

    def __init__(self) -> None:
        self.user_agent = self.range = self.if_none_match = self.if_modified_since = None
        self.if_range = self.authorization = self.spread_control = self.referer = None
        self.has_body = False


#: Header name (lower case) -> Request attribute.
_WANTED = {
    b"user-agent": "user_agent", b"range": "range", b"if-none-match": "if_none_match",
    b"if-modified-since": "if_modified_since", b"if-range": "if_range",
    b"authorization": "authorization", b"eset-spread-control": "spread_control",
    b"referer": "referer",
}


#: Bytes no request head may hold (RFC 9112 2.2, RFC 9110 5.5): control
#: characters but HTAB, a CR not before LF, a LF not after CR.
_INVALID_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n")
#: A method is a token (RFC 9110 9.1).
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: A Host value: reg-name or IP literal, and a port (RFC 9110 7.2); may be empty.
_HOST = re.compile(rb"[A-Za-z0-9._~!$&'()*+,;=:%\[\]-]*")


def parse_head(head: bytes) -> Request:
    """A request head (without the final CRLF CRLF) to a Request.

    Raises HttpError for anything malformed. Strict on purpose: obsolete
    line folding, whitespace before the colon, bare CR or LF, NUL and other
    control bytes, and a missing (HTTP/1.1) or repeated Host are refused, as
    they are the usual tools of request smuggling (RFC 9112 3.2, 5).
    """
    if _INVALID_BYTES.search(head) is not None:
        raise HttpError(400, "control character, bare CR or bare LF in the request head")
    line_end = head.find(b"\r\n")
    line = head if line_end < 0 else head[:line_end]
    if len(line) > MAX_REQUEST_LINE:
        raise HttpError(414, "request line too long")
    parts = line.split(b" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if not _TOKEN.fullmatch(method):
        raise HttpError(400, "malformed request line")
    req = Request()
    req.line = line
    req.method = method
    if version == b"HTTP/1.1":
        req.version, req.keep_alive = 11, True
    elif version == b"HTTP/1.0":
        req.version, req.keep_alive = 10, False
    elif version.startswith(b"HTTP/"):
        raise HttpError(505, "only HTTP/1.0 and HTTP/1.1")
    else:
        raise HttpError(400, "malformed request line")
    if target[:1] != b"/":
        # absolute-form, which proxies send: keep only the path
        lowered = target[:8].lower()
        if lowered.startswith(b"http://") or lowered.startswith(b"https://"):
            slash = target.find(b"/", target.find(b"//") + 2)
            target = b"/" if slash < 0 else target[slash:]
        else:
            raise HttpError(400, "request target must be a path")
    req.target = target
    q = target.find(b"?")
    req.path = target if q < 0 else target[:q]
    if line_end < 0:
        if req.version == 11:
            raise HttpError(400, "HTTP/1.1 request without Host")
        return req
    lines = head[line_end + 2:].split(b"\r\n")
    if len(lines) > MAX_HEADERS:
        raise HttpError(431, "too many header fields")
    hosts = 0
    for h in lines:
        name, sep, value = h.partition(b":")
        if not sep or not name or name[-1:] in (b" ", b"\t") or h[:1] in (b" ", b"\t"):
            raise HttpError(400, "malformed header field")
        name = name.lower()
        attr = _WANTED.get(name)
        if attr is not None:
            setattr(req, attr, value.strip())
        elif name == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                req.keep_alive = False
            elif b"keep-alive" in tokens:
                req.keep_alive = True
        elif name == b"content-length":
            if value.strip() != b"0":
                req.has_body = True
        elif name == b"transfer-encoding":
            req.has_body = True
        elif name == b"host":
            hosts += 1
            if hosts > 1 or not _HOST.fullmatch(value.strip()):
                raise HttpError(400, "more than one Host, or not a host")
    if hosts == 0 and req.version == 11:
        raise HttpError(400, "HTTP/1.1 request without Host")
    return req


def parse_range(value: bytes, size: int) -> tuple[int, int] | None:
    """httpfacts.parse_range, answering 416 for a range outside the file."""
    try:
        return _parse_range(value, size)
    except RangeNotSatisfiable:
        raise HttpError(416) from None


def etag_matches(header: bytes, etag: bytes) -> bool:
    """If-None-Match: `*` or a list holding our ETag (weak comparison)."""
    if header == b"*" or header == etag:
        return True
    for item in header.split(b","):
        item = item.strip()
        if item.startswith(b"W/"):
            item = item[2:]
        if item == etag:
            return True
    return False


def http_date(ts: float) -> bytes:
    return _http_date(ts).encode("ascii")


class DateCache:
    """The `Date` header value, formatted at most once a second."""

    __slots__ = ("second", "value")

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def get(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.value = b"Date: " + http_date(now) + b"\r\n"
        return self.value


def error_response(status: int, date: bytes, *, close: bool, extra: bytes = b"",
                   body: bytes | None = None, head_only: bool = False) -> bytes:
    """A complete small response for an error or a refusal."""
    if body is None:
        body = f"{status} {REASONS.get(status, '')}\n".encode()
    head = (STATUS_LINES[status] + SERVER + date + b"Content-Type: text/plain; charset=utf-8\r\n"
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra
            + (b"Connection: close\r\n" if close else b"") + b"\r\n")
    return head if head_only else head + body
