"""The access log, in the combined format web log tools read.

    host - user [time] "request line" status bytes "referer" "user agent"

Never a credential: the Authorization header is not logged at all, only the
name of an authenticated user. Lines are gathered in memory and written
once a second with a single write(2) on an O_APPEND file, so the lines of
several workers never interleave mid-line. Without a file, lines go to the
`updmirror.access` logger.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from updmirror.errors import ConfigError

logger = logging.getLogger("updmirror.access")

# Quotes, backslashes and control characters are escaped so a client cannot
# forge log lines or fields.
_ESCAPE = {i: f"\\x{i:02x}" for i in list(range(32)) + list(range(127, 256))}
_ESCAPE[ord('"')] = '\\"'
_ESCAPE[ord("\\")] = "\\\\"


def _field(value: bytes | None) -> str:
    if not value:
        return "-"
    return value.decode("latin-1").translate(_ESCAPE)


class AccessLog:
    def __init__(self, path: Path | None):
        self.path = path
        self._fd: int | None = None
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""
        if path is not None:
            self.reopen()

    @property
    def enabled(self) -> bool:
        return self._fd is not None or logger.isEnabledFor(logging.INFO)

    def reopen(self) -> None:
        """(Re)open the file, e.g. after logrotate moved it (SIGHUP)."""
        if self.path is None:
            return
        self.flush()
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot open the access log ({exc.strerror}); "
                              "check [http] access_log and the folder's permissions") from None
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd

    def _time(self) -> str:
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))
        return self._stamp

    def record(self, host: str, user: str | None, request_line: bytes | None, status: int,
               size: int, referer: bytes | None, user_agent: bytes | None) -> None:
        user_field = user.translate(_ESCAPE).replace(" ", "\\x20") if user else "-"
        line = (f'{host} - {user_field} [{self._time()}] "{_field(request_line)}" {status} '
                f'{size if size else "-"} "{_field(referer)}" "{_field(user_agent)}"')
        if self._fd is None:
            logger.info(line)
        else:
            self._lines.append(line)

    def flush(self) -> None:
        if not self._lines or self._fd is None:
            return
        data = ("\n".join(self._lines) + "\n").encode("utf-8", "backslashreplace")
        self._lines.clear()
        try:
            os.write(self._fd, data)
        except OSError as exc:
            logger.warning("cannot write the access log %s (%s)", self.path, exc.strerror)

    def close(self) -> None:
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
