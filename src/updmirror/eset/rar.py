"""RAR-wrapped indexes: the vendor served `update.ver` this way until ~2019.

Reading goes through `rarfile` (a well-kept library). It reads a stored
(uncompressed) member itself; a compressed member, the form the vendor
served, is decompressed by an external extractor that rarfile runs: on
Debian, `bsdtar` from the package libarchive-tools (rarfile also takes
`unrar`, `unar` or `7z`, whichever it finds first). Without one, the error
is one line that names the package to install.

Nothing here writes RAR: the simulated vendor's writer is in
:mod:`updmirror.vendor.rarwriter`.
"""

from __future__ import annotations

import io
import struct

from updmirror.errors import FormatError, MissingToolError

#: The Debian package whose `bsdtar` the tests and CI decompress with.
EXTRACTOR_PACKAGE = "libarchive-tools"
INSTALL_HINT = f"install a RAR extractor: apt-get install {EXTRACTOR_PACKAGE} (bsdtar)"


def is_rar(data: bytes) -> bool:
    """RAR 4 (`Rar!\\x1a\\x07\\x00`) or RAR 5 (`Rar!\\x1a\\x07\\x01\\x00`)."""
    return data.startswith(b"Rar!\x1a\x07")


def extract_single(data: bytes, source: str, max_bytes: int = 16 * 1024 * 1024) -> bytes:
    """The first file member of a RAR archive, bounded by `max_bytes`.

    Raises FormatError for a broken or empty archive or a member over the
    bound, MissingToolError when the member is compressed and no extractor
    is installed.
    """
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
        if member.compress_type != rarfile.RAR_M0:
            _tool_setup()
        return archive.read(member)
    except rarfile.RarCannotExec as exc:
        raise missing_extractor(f"{source} is RAR-compressed") from exc
    except rarfile.Error as exc:
        raise FormatError(f"{source}: broken RAR archive ({exc})") from exc
    except (EOFError, struct.error, ValueError) as exc:
        raise FormatError(f"{source}: broken RAR archive ({type(exc).__name__})") from exc


def extractor() -> str | None:
    """The extractor rarfile would run for a compressed member (`bsdtar`, `unrar`, ...), or None."""
    import rarfile

    try:
        setup = _tool_setup()
    except rarfile.RarCannotExec:
        return None
    return setup.get_cmdline("check_cmd", None)[0]


#: The extractors tried, in order: unrar (RAR's own), bsdtar (the one CI tests),
#: then unar and 7-Zip. rarfile alone would try 7-Zip before bsdtar, and
#: Debian's 7zip cannot read RAR (its RAR codec is non-free): a machine with
#: both could then decompress nothing.
_PREFERENCE = ({"unrar": True}, {"bsdtar": True}, {"unar": True}, {"sevenzip": True, "sevenzip2": True})
_NONE = {"unrar": False, "unar": False, "bsdtar": False, "sevenzip": False, "sevenzip2": False}
_chosen = None


def _tool_setup():
    """The extractor rarfile is to run, chosen in our order, bsdtar's command line mended.

    rarfile 4.5 runs `bsdtar -x --to-stdout -f -- ARCHIVE`: bsdtar takes `--`
    for the archive's name, so no compressed member can be read through it
    (the real archives of tests/eset/test_rar_compressed.py showed it; rarfile's
    own bsdtar test reads only empty members). The mended line puts `--` after
    the archive, where it still keeps a member name from reading as an option.
    Left alone once rarfile writes the line right. Raises RarCannotExec when
    there is no extractor.
    """
    global _chosen
    import rarfile

    if _chosen is not None and rarfile.CURRENT_SETUP is _chosen:
        return _chosen
    for choice in _PREFERENCE:
        try:
            setup = rarfile.tool_setup(force=True, **{**_NONE, **choice})
            break
        except rarfile.RarCannotExec:
            continue
    else:
        raise rarfile.RarCannotExec("Cannot find working tool")
    if setup.setup is rarfile.BSDTAR_CONFIG and setup.open_cmdline(None, "ARCHIVE")[-3:] == ["-f", "--", "ARCHIVE"]:
        setup = rarfile.CURRENT_SETUP = _mended_bsdtar(rarfile)
    _chosen = setup
    return setup


def _mended_bsdtar(rarfile):
    class MendedBsdtar(rarfile.ToolSetup):
        def open_cmdline(self, pwd, rarfn, filefn=None):
            line = self.get_cmdline("open_cmd", pwd, nodash=True) + [rarfn, "--"]
            return line + [filefn] if filefn else line

    return MendedBsdtar(rarfile.BSDTAR_CONFIG)


def missing_extractor(what: str) -> MissingToolError:
    """The one-line error for `what` ("X is RAR-compressed") when no extractor is there."""
    return MissingToolError(f"{what} and no RAR extractor is installed; {INSTALL_HINT}")
