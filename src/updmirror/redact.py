"""Keep credentials out of everything a person or a log can read."""

from urllib.parse import urlsplit, urlunsplit


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
