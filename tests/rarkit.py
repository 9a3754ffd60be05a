"""Compressed RAR archives made by WinRAR, from rarfile's source distribution.

No free RAR compressor exists, so the project cannot make a compressed RAR
of its own, and the simulated vendor writes only the stored form. rarfile's
sdist ships archives that WinRAR made (`test/files/`); `make install` (so
`make test` and CI) downloads the sdist of the pinned rarfile into the venv
(`.venv/sdist/`), and these helpers read archives straight out of it.

The archives used, each holding `stest1.txt` (2048 bytes of text)
compressed and, in most, `stest2.txt`, the same text stored:

- `rar3-solid.rar`: RAR 4 archive, RAR 2.9 "normal" method (0x33), the
  generation the vendor served update.ver in (a guess: no vendor RAR index
  is in the fixtures);
- `seektest.rar`: RAR 4 archive, "best" method (0x35);
- `rar5-crc.rar`: RAR 5 archive;
- `rar15-comment.rar`: RAR 1.5 compression, which bsdtar cannot decode.
"""

from __future__ import annotations

import importlib.metadata
import io
import re
import sys
import tarfile
from pathlib import Path

from tools import missing
from updmirror.eset import rar

SDIST_DIR = Path(sys.prefix) / "sdist"
#: Compressed member first, the same text stored second (None: no stored copy).
COMPRESSED = {"rar3-solid.rar": None, "seektest.rar": "stest2.txt", "rar5-crc.rar": "stest2.txt"}
UNDECODABLE = "rar15-comment.rar"


def sdist() -> Path:
    version = importlib.metadata.version("rarfile")
    path = SDIST_DIR / f"rarfile-{version}.tar.gz"
    if not path.is_file():
        missing(f"rarfile's source distribution is not installed ({path}): run 'make install'")
    return path


def _member(name: str) -> bytes:
    with tarfile.open(sdist()) as tar:
        top = tar.getnames()[0].split("/")[0]
        f = tar.extractfile(f"{top}/test/files/{name}")
        assert f is not None, name
        return f.read()


def archive(name: str) -> bytes:
    """The bytes of one archive of rarfile's test files."""
    return _member(name)


def recorded(name: str, member: str) -> tuple[int, int]:
    """(size, CRC-32) of `member` as rarfile's expected dump (`NAME.exp`) records them."""
    text = _member(name + ".exp").decode()
    for block in re.split(r"\n(?=\S)", text):
        if re.search(rf"\bname={re.escape(member)}\n", block + "\n"):
            size = int(re.search(r"\bdec=(\d+)", block).group(1))
            crc = int(re.search(r"\bcrc=0x([0-9a-f]+)", block).group(1), 16)
            return size, crc
    raise AssertionError(f"{member} not in {name}.exp")


def stored_copy(name: str, member: str) -> bytes:
    """A stored member, read by rarfile itself (no extractor involved)."""
    import rarfile

    info = rarfile.RarFile(io.BytesIO(archive(name))).getinfo(member)
    assert info.compress_type == rarfile.RAR_M0, f"{member} of {name} is not stored"
    return rarfile.RarFile(io.BytesIO(archive(name))).read(info)


def require_extractor() -> str:
    tool = rar.extractor()
    if tool is None:
        missing(f"RAR extractor not installed (bsdtar: apt-get install {rar.EXTRACTOR_PACKAGE})")
    return tool


def path_without_extractors(tmp: Path) -> str:
    """A PATH on which no RAR extractor (nor anything else) is found."""
    empty = tmp / "bin-without-rar"
    empty.mkdir(exist_ok=True)
    return str(empty)
