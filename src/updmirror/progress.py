"""The progress display of a sync on a terminal: files, bytes, speed, time left.

Off the terminal (a cron job, the daemon, a pipe) it shows nothing: the
log lines and the summary say what happened.
"""

from __future__ import annotations

import sys

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    def __init__(self, enabled: bool, files: int, total_bytes: int):
        self.enabled = enabled and sys.stderr.isatty()
        self._rich: RichProgress | None = None
        self._files_task = self._bytes_task = None
        self.files, self.total_bytes = files, total_bytes

    def __enter__(self) -> Progress:
        if self.enabled:
            self._rich = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                transient=False,
            )
            self._rich.__enter__()
            self._files_task = self._rich.add_task("files", total=self.files)
            self._bytes_task = self._rich.add_task("bytes", total=self.total_bytes)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.__exit__(None, None, None)

    def advance_bytes(self, n: int) -> None:
        if self._rich is not None:
            self._rich.advance(self._bytes_task, n)

    def file_done(self, unannounced_bytes: int = 0) -> None:
        """One more file; `unannounced_bytes`: its size, when the index gave none."""
        if self._rich is not None:
            self._rich.advance(self._files_task, 1)
            if unannounced_bytes:
                self.total_bytes += unannounced_bytes
                self._rich.update(self._bytes_task, total=self.total_bytes)
