"""Faults the simulated vendor can inject, and how they are written on a command line.

A fault applies to requests whose path (without the leading slash) matches
its glob, for the first `times` of them (None: always). Kinds:

============== =========================================================== ==================
kind           what the server does                                        arg (default)
============== =========================================================== ==================
status         answers with that status (429 comes with Retry-After)       code[,retry] (500)
stall          headers and part of the body, then silence, then close      seconds (30)
slow           drips the body a few bytes at a time                        bytes/second (2048)
truncate       declares the full Content-Length, sends part, closes        bytes sent (half)
wrong_size     indexes list a wrong `size=` for a few files                how many (3)
bad_crc        `.nup` served with a byte of the inner blob changed         -
bad_signature  `.nup` served with a byte of `[update_info]` changed        -
captive_portal an HTML login page with 200, whatever was asked             -
escape         indexes with `file=` entries that leave the repository,     which spelling
               in every spelling the server knows (server.ESCAPES)        (all)
endless        200, no Content-Length, a body that does not end            cap in MiB (256)
shrink         indexes that keep only a share of their module sections     percent kept (10)
pad            indexes padded with comment lines to a size (Content-Length) MiB (17)
============== =========================================================== ==================

Command-line form: ``KIND[:ARG][@GLOB][*TIMES]``, e.g. ``status:429,5@*.nup*2``
or ``stall:5@eset_upd/*``.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass, field

from . import VendorError

#: Where `vendor serve --control` takes fault changes (loopback only).
CONTROL_PATH = "/__vendor/faults"

KINDS = ("status", "stall", "slow", "truncate", "wrong_size", "bad_crc", "bad_signature",
         "captive_portal", "escape", "endless", "shrink", "pad")
#: Kinds that change what an index says; they only apply to index requests.
INDEX_KINDS = frozenset({"wrong_size", "escape", "shrink", "pad"})
#: Kinds that change a `.nup` file's bytes; they only apply to `.nup` requests.
NUP_KINDS = frozenset({"bad_crc", "bad_signature"})

_TIMES = re.compile(r"\*(\d+)$")


@dataclass
class Fault:
    kind: str
    match: str = "*"
    times: int | None = None
    arg: str | int | float | None = None
    #: How many requests it has hit so far (kept by the server).
    hits: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise VendorError(f"unknown fault {self.kind!r}; known: {', '.join(KINDS)}")
        if self.times is not None and self.times < 0:
            raise VendorError(f"fault {self.kind}: times must be 0 or more, not {self.times}")
        self.match = self.match.lstrip("/") or "*"
        if self.arg not in (None, ""):
            for part in str(self.arg).split(","):
                try:
                    float(part)
                except ValueError:
                    raise VendorError(f"fault {self.kind}: argument {self.arg!r} is not a number "
                                      "(or two, like 429,5 for a status with Retry-After)") from None

    def applies_to(self, path: str) -> bool:
        """Whether this fault is meant for `path` (no leading slash), ignoring `times`."""
        if self.kind in INDEX_KINDS and not path.endswith("update.ver"):
            return False
        if self.kind in NUP_KINDS and not path.endswith(".nup"):
            return False
        return fnmatch.fnmatchcase(path, self.match)

    def number(self, default: float) -> float:
        if self.arg is None or self.arg == "":
            return default
        try:
            return float(str(self.arg).split(",")[0])
        except ValueError:
            raise VendorError(f"fault {self.kind}: argument {self.arg!r} is not a number") from None

    def to_json(self) -> dict:
        return {"kind": self.kind, "match": self.match, "times": self.times, "arg": self.arg, "hits": self.hits}

    @classmethod
    def from_json(cls, raw: dict) -> Fault:
        if not isinstance(raw, dict) or "kind" not in raw:
            raise VendorError(f"a fault is an object with at least 'kind', not {raw!r}")
        unknown = set(raw) - {"kind", "match", "times", "arg", "hits"}
        if unknown:
            raise VendorError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(kind=raw["kind"], match=raw.get("match") or "*", times=raw.get("times"), arg=raw.get("arg"))

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``KIND[:ARG][@GLOB][*TIMES]`` (the `--fault` option)."""
        rest = spec.strip()
        times = None
        m = _TIMES.search(rest)  # a trailing "*N" is always the count, never the glob
        if m:
            times, rest = int(m.group(1)), rest[: m.start()]
        rest, _, glob = rest.partition("@")
        kind, _, arg = rest.partition(":")
        if not re.fullmatch(r"[a-z_]+", kind):
            raise VendorError(f"--fault {spec!r}: expected KIND[:ARG][@GLOB][*TIMES], e.g. status:429@*.nup*2")
        return cls(kind=kind, match=glob or "*", times=times, arg=arg or None)

class FaultSet:
    """The faults in force, shared by the server's handlers and the tests' thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def set(self, faults: list[Fault]) -> None:
        with self._lock:
            self._faults = list(faults)

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take(self, path: str) -> list[Fault]:
        """The faults that hit this request, counting each use against `times`."""
        hit = []
        with self._lock:
            for f in self._faults:
                if not f.applies_to(path):
                    continue
                if f.times is not None and f.hits >= f.times:
                    continue
                f.hits += 1
                hit.append(f)
        return hit
