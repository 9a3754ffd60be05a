"""HTTP Basic authentication for the server: the header, and a short memory
of good checks so the slow password hash is not paid on every request.

The memory holds keyed hashes of (user, password), never a password, and
is forgotten on reload (SIGHUP), so a removed user loses access at once.
The password check itself lives in serve/auth.py (the htpasswd file).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time

#: How long a successful check is remembered, per worker.
REMEMBER_SECONDS = 60.0
MAX_REMEMBERED = 10000

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


class CheckMemory:
    """Recently verified (user, password) pairs, as keyed hashes with an expiry."""

    def __init__(self, seconds: float = REMEMBER_SECONDS):
        self.seconds = seconds
        self._key = os.urandom(32)      # per process: the hashes mean nothing elsewhere
        self._until: dict[bytes, float] = {}

    def _digest(self, user: str, password: str) -> bytes:
        h = hashlib.blake2b(key=self._key, digest_size=32)
        h.update(user.encode("utf-8") + b"\0" + password.encode("utf-8"))
        return h.digest()

    def knows(self, user: str, password: str) -> bool:
        until = self._until.get(self._digest(user, password))
        return until is not None and until > time.monotonic()

    def remember(self, user: str, password: str) -> None:
        if len(self._until) >= MAX_REMEMBERED:
            now = time.monotonic()
            self._until = {k: v for k, v in self._until.items() if v > now}
            if len(self._until) >= MAX_REMEMBERED:
                self._until.clear()
        self._until[self._digest(user, password)] = time.monotonic() + self.seconds

    def forget(self) -> None:
        self._until.clear()
