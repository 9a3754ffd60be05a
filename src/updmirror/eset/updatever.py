"""Read and write `update.ver`, the index of an update tree.

The reader is liberal (CRLF or LF, comments, quoted values, unknown sections
and keys, a RAR-compressed body) and lossless: every line is kept with its
own line ending, so writing what was read gives the same bytes back. The
writer is strict: what we add is CRLF, like the vendor's files.

Raises :class:`~updmirror.errors.FormatError` for anything that is not an
index (an HTML page, binary garbage, a line that is neither a section, a
comment nor ``key=value``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from updmirror.errors import FormatError

from . import rar

#: An index larger than this is refused: real ones are tens of kilobytes.
MAX_INDEX_BYTES = 16 * 1024 * 1024

_SECTION_RE = re.compile(r"^\[([^\[\]\x00-\x1f]{1,200})\]\s*$")
_KEY_RE = re.compile(r"^([A-Za-z0-9_.\-]{1,100})=(.*)$")


@dataclass
class Line:
    """One physical line: its text (without line ending) and its ending."""

    text: str
    eol: str  # "\r\n", "\n" or "" (last line without ending)


@dataclass
class Section:
    """A `[NAME]` section: its header line and the lines under it.

    Lookups by key are case-insensitive; the lines keep their spelling.
    """

    name: str
    header: Line
    lines: list[Line] = field(default_factory=list)

    def _find(self, key: str) -> int | None:
        want = key.lower()
        for i, line in enumerate(self.lines):
            m = _KEY_RE.match(line.text)
            if m and m.group(1).lower() == want:
                return i
        return None

    def items(self) -> Iterator[tuple[str, str]]:
        """``(key, value)`` pairs in file order, values unquoted."""
        for line in self.lines:
            m = _KEY_RE.match(line.text)
            if m:
                yield m.group(1), unquote(m.group(2))

    def keys(self) -> list[str]:
        return [k for k, _ in self.items()]

    def get(self, key: str, default: str | None = None) -> str | None:
        i = self._find(key)
        if i is None:
            return default
        return unquote(_KEY_RE.match(self.lines[i].text).group(2))

    def raw(self, key: str) -> str | None:
        """The value as written, quotes included."""
        i = self._find(key)
        return None if i is None else _KEY_RE.match(self.lines[i].text).group(2)

    def __contains__(self, key: str) -> bool:
        return self._find(key) is not None

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def set(self, key: str, value: str, *, quote: bool = False) -> None:
        """Change `key` in place, or append it with the section's line ending."""
        _check_value(key, value)
        text = f'{key}="{value}"' if quote else f"{key}={value}"
        i = self._find(key)
        if i is not None:
            self.lines[i].text = text
            return
        # Append after the last key line, before trailing blank lines.
        at = len(self.lines)
        while at > 0 and not self.lines[at - 1].text.strip():
            at -= 1
        self.lines.insert(at, Line(text, self.header.eol or "\r\n"))


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _check_value(key: str, value: str) -> None:
    if not _KEY_RE.match(f"{key}=x"):
        raise FormatError(f"invalid key {key!r} for update.ver")
    if any(c in value for c in "\r\n\x00"):
        raise FormatError(f"value of {key!r} contains a line break or NUL")


@dataclass
class UpdateVer:
    """A parsed index: the lines before the first section, then the sections."""

    preamble: list[Line] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    # -- reading ---------------------------------------------------------
    @classmethod
    def parse(cls, data: bytes, source: str = "update.ver") -> UpdateVer:
        """Parse an index body (plain text or RAR-compressed).

        `source` names the file or URL in error messages.
        """
        if len(data) > MAX_INDEX_BYTES:
            raise FormatError(f"{source}: {len(data)} bytes is too large for an index "
                              f"(limit {MAX_INDEX_BYTES}); is the URL right?")
        if rar.is_rar(data):
            data = rar.extract_single(data, source)
        return cls._parse_text(data, source)

    @classmethod
    def _parse_text(cls, data: bytes, source: str) -> UpdateVer:
        if data[:3] == b"\xef\xbb\xbf":
            raise FormatError(f"{source}: starts with a UTF-8 byte order mark; not a vendor index")
        if b"\x00" in data:
            raise FormatError(f"{source}: contains NUL bytes; this is binary data, not an index")
        head = data[:512].lstrip().lower()
        if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in head:
            raise FormatError(f"{source}: an HTML page came instead of update.ver "
                              "(a captive portal or proxy login page?)")
        text = data.decode("utf-8", errors="surrogateescape")
        doc = cls()
        current: Section | None = None
        seen: set[str] = set()
        for number, line in enumerate(_split_lines(text), start=1):
            stripped = line.text.strip()
            if any(ord(c) < 32 and c != "\t" for c in line.text):
                raise FormatError(f"{source}, line {number}: control character in line")
            m = _SECTION_RE.match(line.text)
            if m:
                name = m.group(1)
                if name.upper() in seen:
                    raise FormatError(f"{source}, line {number}: section [{name}] appears twice")
                seen.add(name.upper())
                current = Section(name, line)
                doc.sections.append(current)
                continue
            if not stripped or stripped.startswith(";") or stripped.startswith("#"):
                (current.lines if current else doc.preamble).append(line)
                continue
            if current is None:
                raise FormatError(f"{source}, line {number}: text before the first [SECTION]; "
                                  "not an update.ver")
            if not _KEY_RE.match(line.text):
                raise FormatError(f"{source}, line {number} in [{current.name}]: "
                                  f"expected key=value, got {_excerpt(line.text)}")
            current.lines.append(line)
        if not doc.sections:
            raise FormatError(f"{source}: no [SECTION] found; not an update.ver")
        return doc

    # -- writing ---------------------------------------------------------
    def to_bytes(self) -> bytes:
        out = []
        for line in self.preamble:
            out.append(line.text + line.eol)
        for section in self.sections:
            out.append(section.header.text + section.header.eol)
            for line in section.lines:
                out.append(line.text + line.eol)
        return "".join(out).encode("utf-8", errors="surrogateescape")

    # -- editing ---------------------------------------------------------
    def section(self, name: str) -> Section | None:
        want = name.upper()
        for s in self.sections:
            if s.name.upper() == want:
                return s
        return None

    def remove_sections(self, names: set[str] | frozenset[str]) -> None:
        upper = {n.upper() for n in names}
        self.sections = [s for s in self.sections if s.name.upper() not in upper]
        self.end_last_line()

    def add_section(self, name: str, items: list[tuple[str, str]] | dict[str, str],
                    eol: str = "\r\n") -> Section:
        if self.section(name) is not None:
            raise FormatError(f"section [{name}] already exists")
        if not _SECTION_RE.match(f"[{name}]"):
            raise FormatError(f"invalid section name {name!r}")
        self.end_last_line()
        section = Section(name, Line(f"[{name}]", eol))
        pairs = items.items() if isinstance(items, dict) else items
        for key, value in pairs:
            _check_value(key, value)
            section.lines.append(Line(f"{key}={value}", eol))
        self.sections.append(section)
        return section

    def end_last_line(self) -> None:
        """Give the last line a CRLF ending if it has none (before appending)."""
        last = None
        if self.sections:
            s = self.sections[-1]
            last = s.lines[-1] if s.lines else s.header
        elif self.preamble:
            last = self.preamble[-1]
        if last is not None and not last.eol:
            last.eol = "\r\n"


def _split_lines(text: str) -> Iterator[Line]:
    start = 0
    n = len(text)
    while start < n:
        end = text.find("\n", start)
        if end < 0:
            yield Line(text[start:], "")
            return
        if end > start and text[end - 1] == "\r":
            yield Line(text[start:end - 1], "\r\n")
        else:
            yield Line(text[start:end], "\n")
        start = end + 1


def _excerpt(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")
