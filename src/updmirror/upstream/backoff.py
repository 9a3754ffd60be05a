"""When to try again: exponential backoff with jitter, and the server's Retry-After."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from updmirror.httpfacts import parse_http_date

#: The first retry waits about this long (seconds); each further one twice as long.
BACKOFF_BASE = 1.0
#: No backoff pause is longer than this (seconds).
BACKOFF_CAP = 60.0
#: A Retry-After longer than this (seconds) is not waited for: the run fails and says so.
MAX_RETRY_AFTER = 300.0


def backoff_delay(attempt: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP,
                  rng: random.Random | None = None) -> float:
    """Pause before retry number `attempt` (0 for the first retry).

    Half fixed, half random: parallel downloads that failed together do not
    all come back in the same instant, and none comes back at once.
    """
    delay = min(cap, base * (2 ** attempt))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (a number or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = parse_http_date(value)
    if when is None:
        return None
    return max(0.0, when - (now or datetime.now(timezone.utc)).timestamp())
