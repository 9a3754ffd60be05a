"""HTTP Basic authentication for the server: the header and the challenge.

The password check itself, and the memory of good checks that spares a
client bcrypt on every request, live in serve/auth.py (the htpasswd file).
"""

from __future__ import annotations

import base64
import binascii

#: The realm clients are asked to log in to (the exported nginx and Apache
#: configurations ask for the same one, so saved credentials keep working).
REALM = "updmirror"
CHALLENGE = f'WWW-Authenticate: Basic realm="{REALM}", charset="UTF-8"\r\n'.encode()


def parse_basic(header: bytes | None) -> tuple[str, str] | None:
    """`Basic base64(user:password)` to (user, password), or None."""
    if not header:
        return None
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
