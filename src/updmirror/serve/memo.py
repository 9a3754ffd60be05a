"""Answers to identical request heads, remembered for the current second.

A mirror's clients send the same few request heads over and over (the same
path, agent and headers), and the answer to a head depends only on the
snapshot, the head and the second (the Date header). Remembering complete
responses per head for the current second makes a repeated request a
dictionary lookup and one write, without parsing (for a module file: the
rendered head and the span of the file to send). Only answers that need no
password are kept (no credential is ever a key),
the whole memory is bounded, and it is dropped every second, on a snapshot
switch and on reload.
"""

from __future__ import annotations

import time

#: Bytes of responses kept at most (per worker).
MEMO_BYTES = 8 * 1024 * 1024
#: Request heads longer than this are not remembered.
MAX_KEY = 2048


class ResponseMemo:
    __slots__ = ("enabled", "answers", "second", "size", "limit")

    def __init__(self, enabled: bool = True, limit: int = MEMO_BYTES):
        self.enabled = enabled
        self.limit = limit
        self.answers: dict[bytes, tuple] = {}
        self.second = int(time.time())
        self.size = 0

    def renew(self) -> None:
        self.answers = {}
        self.size = 0
        self.second = int(time.time())

    def put(self, key: bytes, answer: tuple) -> None:
        if not self.enabled or len(key) > MAX_KEY:
            return
        n = len(key) + len(answer[2])
        if self.size + n > self.limit:
            return
        self.answers[key] = answer
        self.size += n
