"""What a web server in front of the mirror must do, computed from the same
tables the integrated server routes with (eset/trees.py, serve/), as data
that the nginx and Apache writers only have to spell:

- which tree a client's User-Agent gets: for each generation pattern of
  `AGENT_PATTERNS` and each major it can name (0..999), the answer of
  `route_generation()`; majors with the same answer become one regular
  expression (the pattern with its number group replaced by those majors);
- which channel an `Eset-Spread-Control` header asks for (`CHANNEL_BY_DOMAIN`);
- which index file answers `/update.ver` and `/dll/update.ver` for each
  channel and tree (`index_for_request()`).

Nothing here is written out by hand: a new tree, alias or agent pattern in
eset/trees.py changes the exported configurations by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from updmirror.eset.trees import (
    AGENT_PATTERNS,
    CHANNEL_BY_DOMAIN,
    TREES,
    index_for_request,
    route_generation,
)

#: The paths clients ask for an index at; answered by User-Agent and channel.
ROUTED_PATHS = ("/update.ver", "/dll/update.ver")
#: How the agent patterns write the major; replaced by the majors of one answer.
MAJOR_GROUP = r"(\d{1,3})"
MAJORS = range(1000)


@dataclass(frozen=True)
class AgentRule:
    """Clients whose User-Agent matches `pattern` (case-insensitive) get `tree`."""

    pattern: str
    tree: str


@dataclass(frozen=True)
class ChannelRule:
    """An `Eset-Spread-Control` header matching `pattern` (case-insensitive) asks for `channel`."""

    pattern: str
    channel: str


@dataclass(frozen=True)
class Routing:
    default_tree: str
    #: First match wins; no match: `default_tree`.
    agent_rules: tuple[AgentRule, ...]
    #: First match wins; no match: "regular".
    channel_rules: tuple[ChannelRule, ...]
    #: (channel, tree, routed path) -> the index's path in the snapshot ("/eset_upd/...").
    indexes: dict[tuple[str, str, str], str]


def routing(trees: tuple[str, ...], channels: tuple[str, ...], default_tree: str | None) -> Routing:
    published = sorted(trees)
    default = default_tree if default_tree in published else published[0]
    rules = []
    for prefix, pattern in AGENT_PATTERNS:
        if pattern.pattern.count(MAJOR_GROUP) != 1 or pattern.flags & ~(re.I | re.U):
            raise AssertionError(f"cannot export the agent pattern {pattern.pattern!r}")
        by_tree: dict[str, list[int]] = {}
        for major in MAJORS:
            tree = route_generation(f"{prefix}{major}", published, default)
            by_tree.setdefault(tree, []).append(major)
        for tree, majors in sorted(by_tree.items(), key=lambda item: item[1][0]):
            rules.append(AgentRule(pattern.pattern.replace(MAJOR_GROUP, f"(?:{numbers_regex(majors)})"), tree))
    channel_rules = []
    for channel in channels:
        if channel == "regular":
            continue
        values = sorted(v for v, c in CHANNEL_BY_DOMAIN.items() if c == channel)
        if values:
            alternatives = "|".join(re.escape(v).replace("\\-", "-") for v in values)
            channel_rules.append(ChannelRule(rf"(?:^|;)\s*domain\s*=\s*(?:{alternatives})\s*(?:;|$)", channel))
    indexes = {}
    for channel in channels:
        for tree in published:
            for path in ROUTED_PATHS:
                index = index_for_request(TREES[tree], path, channel)
                if index:
                    indexes[(channel, tree, path)] = "/" + index
    return Routing(default, tuple(rules), tuple(channel_rules), indexes)


def numbers_regex(numbers: list[int]) -> str:
    """A regular expression matching exactly the decimal numbers given (0..999),
    written with up to three digits (leading zeros allowed, as `\\d{1,3}` reads them)."""
    pieces = []
    for low, high in _runs(sorted(set(numbers))):
        for digits in (1, 2, 3):
            lo, hi = max(low, 0 if digits == 1 else 10 ** (digits - 1)), min(high, 10 ** digits - 1)
            if lo > hi:
                continue
            zeros = "0?" * (3 - digits)
            pieces += [zeros + p for p in _same_length(str(lo), str(hi))]
    return "|".join(pieces)


def _runs(numbers: list[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return runs


def _same_length(a: str, b: str) -> list[str]:
    """Patterns for the numbers a..b, both written with the same number of digits."""
    if a == b:
        return [a]
    if len(a) == 1:
        return [f"[{a}-{b}]"]
    if a[0] == b[0]:
        return [a[0] + p for p in _same_length(a[1:], b[1:])]
    rest = len(a) - 1
    out = []
    first, last = int(a[0]), int(b[0])
    if a[1:] != "0" * rest:
        out += [a[0] + p for p in _same_length(a[1:], "9" * rest)]
        first += 1
    tail = []
    if b[1:] != "9" * rest:
        tail = [b[0] + p for p in _same_length("0" * rest, b[1:])]
        last -= 1
    if first <= last:
        lead = str(first) if first == last else f"[{first}-{last}]"
        out.append(lead + "[0-9]" * rest)
    return out + tail
