"""What a fetch from the upstream can fail with.

All derive from :class:`updmirror.errors.UpstreamError`, so a caller that
does not care why can catch that one. Every message names the URL (redacted,
never a password) and the cause.
"""

from updmirror.errors import UpstreamError


class AuthError(UpstreamError):
    """The upstream refused the credentials (HTTP 401 or 403). Not retried."""


class NotFoundError(UpstreamError):
    """The upstream has no such file (HTTP 404 or 410, or a missing file in a folder). Not retried."""


class TooLargeError(UpstreamError):
    """The body is longer than its bound (max_bytes or the index's size). Not retried."""


class StalledError(UpstreamError):
    """No byte for stall_timeout, or slower than min_speed over that window."""


def first_line(exc: BaseException) -> str:
    """An exception's message, first line only (libraries' messages can run to pages)."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


__all__ = ["UpstreamError", "AuthError", "NotFoundError", "TooLargeError", "StalledError"]
