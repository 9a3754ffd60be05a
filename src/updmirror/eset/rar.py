"""RAR-wrapped indexes: the vendor served `update.ver` this way until ~2019.

Reading goes through `rarfile` (a well-kept library). It reads stored
(uncompressed) members itself; compressed members need an external
extractor, and without one the error says which Debian package to install.

Writing is only for the simulated vendor: no free RAR compressor exists, so
it writes a RAR 4 archive whose one member uses the *store* method. That is
a real RAR file (``unrar``, ``bsdtar`` and ``rarfile`` read it).
"""

from __future__ import annotations

import io
import struct
import time
import zlib

from updmirror.errors import FormatError, MissingToolError

RAR4_MARKER = b"Rar!\x1a\x07\x00"
RAR5_MARKER = b"Rar!\x1a\x07\x01\x00"
_INSTALL_HINT = ("install a RAR extractor: 'apt-get install libarchive-tools' (bsdtar) "
                 "or 'apt-get install unrar-free'")


def is_rar(data: bytes) -> bool:
    return data.startswith(b"Rar!\x1a\x07")


def extract_single(data: bytes, source: str, max_bytes: int = 16 * 1024 * 1024) -> bytes:
    """The first file member of a RAR archive, bounded by `max_bytes`."""
    import rarfile  # here, not at the top: every server worker would carry it otherwise

    try:
        archive = rarfile.RarFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
        if not members:
            raise FormatError(f"{source}: RAR archive holds no file")
        member = members[0]
        if member.file_size > max_bytes:
            raise FormatError(f"{source}: RAR member {member.filename!r} is {member.file_size} bytes, "
                              f"over the {max_bytes} byte limit for an index")
        return archive.read(member)
    except rarfile.RarCannotExec as exc:
        raise MissingToolError(f"{source} is RAR-compressed and no RAR extractor is installed: "
                               f"{_INSTALL_HINT}") from exc
    except rarfile.Error as exc:
        raise FormatError(f"{source}: broken RAR archive ({exc})") from exc
    except (EOFError, struct.error, ValueError) as exc:
        raise FormatError(f"{source}: broken RAR archive ({type(exc).__name__})") from exc


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
