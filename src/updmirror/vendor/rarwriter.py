"""Write a RAR-wrapped `update.ver`, as the vendor served its indexes until ~2019.

For the simulated vendor (`vendor serve --rar-index`) and the tests only: the
mirror reads RAR with :mod:`updmirror.eset.rar` and never writes it. No free
RAR compressor exists, so this writes a RAR 4 archive whose one member uses
the *store* method. That is a real RAR file (``unrar``, ``bsdtar`` and
``rarfile`` read it), but not the compressed form the vendor served: the
tests read compressed archives from rarfile's own test files for that.
"""

from __future__ import annotations

import struct
import time
import zlib

RAR4_MARKER = b"Rar!\x1a\x07\x00"


def _header(head_type: int, flags: int, body: bytes) -> bytes:
    size = 7 + len(body)
    rest = struct.pack("<BHH", head_type, flags, size) + body
    return struct.pack("<H", zlib.crc32(rest) & 0xFFFF) + rest


def _dos_time(t: float) -> int:
    tm = time.gmtime(t)
    return ((tm.tm_year - 1980) << 25 | tm.tm_mon << 21 | tm.tm_mday << 16
            | tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec // 2)


def write_stored(name: str, payload: bytes, mtime: float = 0.0) -> bytes:
    """A RAR 4 archive holding `payload` as `name`, stored uncompressed."""
    encoded = name.encode("ascii")
    main = _header(0x73, 0, struct.pack("<HI", 0, 0))
    file_body = struct.pack(
        "<IIBIIBBHI",
        len(payload),              # packed size
        len(payload),              # unpacked size
        2,                         # host OS: Win32
        zlib.crc32(payload),
        _dos_time(mtime or 315532800.0),
        20,                        # version needed: 2.0
        0x30,                      # method: store
        len(encoded),
        0x20,                      # attributes: archive
    ) + encoded
    file_head = _header(0x74, 0x8000, file_body)
    end = _header(0x7B, 0x4000, b"")
    return RAR4_MARKER + main + file_head + payload + end
