"""The watchdog over a body as it arrives: silence and slow drip both end a download.

aiohttp's read timeout restarts with every byte, so an upstream that sends one
byte a second keeps a connection (and a download slot) forever. This counts
bytes per window of `stall_timeout` seconds and gives up when a window has
fewer than `min_speed` bytes/s on average, or when no byte came for a whole
window. Pure bookkeeping over a clock the caller passes in, so tests can
drive it directly.
"""

from __future__ import annotations


class Pace:
    def __init__(self, stall_timeout: float, min_speed: float, now: float):
        self.window = stall_timeout
        self.min_speed = min_speed
        self.window_start = now
        self.window_bytes = 0
        self.last_byte = now

    def wait_limit(self, now: float) -> float:
        """How long the next read may wait before `check` must look again."""
        return max(0.0, min(self.last_byte, self.window_start) + self.window - now)

    def feed(self, n: int, now: float) -> str | None:
        """Record `n` bytes arriving at `now`; the reason to give up, if there is one."""
        if n:
            self.window_bytes += n
            self.last_byte = now
        return self.check(now)

    def check(self, now: float) -> str | None:
        """Why the body should be given up at `now` (None: keep reading)."""
        if now - self.last_byte >= self.window:
            return f"no data for {self.window:g} s (stalled connection)"
        elapsed = now - self.window_start
        if elapsed >= self.window:
            rate = self.window_bytes / elapsed
            if rate < self.min_speed:
                return (f"only {rate:.0f} bytes/s over the last {elapsed:.1f} s, below the "
                        f"minimum of {self.min_speed:g} bytes/s ([upstream] min_speed)")
            self.window_start = now
            self.window_bytes = 0
        return None
