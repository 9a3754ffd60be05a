"""A problem that recurs per request or per second is logged once per interval.

Out of descriptors, a failing disk or a broken `current` pointer would
otherwise write a line (or a traceback) per request or per accept: tens of
megabytes of log in seconds, and the one line that matters lost among them.
The first occurrence of a kind is logged at once; the next one after the
interval says how many were not logged meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: Seconds between two lines about the same kind of problem.
INTERVAL = 60.0


class LogLimit:
    def __init__(self, logger: logging.Logger, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, level: int, kind: str, message: str, *args: object, tally: bool = True) -> bool:
        """Log `message % args` unless `kind` was logged within the interval; True when logged.

        `tally`: say how many occurrences were held back (False for a state
        checked once a second, whose count means nothing).
        """
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        self._last[kind] = now
        held = self._held.pop(kind, 0)
        if held and tally:
            message += f" (and {held} more time{'s' if held > 1 else ''} since the last such line)"
        self.logger.log(level, message, *args)
        return True

    def forget(self, kind: str) -> None:
        """The problem is over: its next occurrence is logged at once."""
        self._last.pop(kind, None)
        self._held.pop(kind, None)
