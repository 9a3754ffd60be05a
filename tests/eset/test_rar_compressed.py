"""The decompression path for the vendor's RAR-compressed update.ver, on real
compressed archives (WinRAR's, from rarfile's sdist: see tests/rarkit.py).

What this proves: rarfile plus the installed extractor (bsdtar in CI) turn
a compressed member into exactly the bytes WinRAR compressed (checked against
a stored copy in the same archive and the size and CRC the archive records),
`UpdateVer.parse` takes that path and hands the text to the index parser,
and a missing extractor is one line naming the package. What it does not
prove: that a vendor's RAR index is read, since none is in the fixtures and
no archive here holds an index (their text is "000\\n001\\n..."); the RAR
method and version the vendor used are a guess (RAR 2.9 in a RAR 4 archive).
"""

import io
import shutil
import zlib

import pytest
import rarfile

from rarkit import (
    COMPRESSED,
    UNDECODABLE,
    archive,
    path_without_extractors,
    recorded,
    require_extractor,
    stored_copy,
)
from updmirror.errors import FormatError, MissingToolError
from updmirror.eset import rar
from updmirror.eset.updatever import UpdateVer


@pytest.fixture
def no_extractor(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", path_without_extractors(tmp_path))
    monkeypatch.setattr(rarfile, "CURRENT_SETUP", None)   # forget the tool found before


@pytest.mark.parametrize("name", sorted(COMPRESSED))
def test_a_compressed_member_is_decompressed_to_what_winrar_compressed(name):
    require_extractor()
    info = rarfile.RarFile(io.BytesIO(archive(name))).infolist()[0]
    assert info.compress_type != rarfile.RAR_M0 and info.compress_size < info.file_size / 10
    text = rar.extract_single(archive(name), name)
    assert (len(text), zlib.crc32(text)) == recorded(name, info.filename)
    if COMPRESSED[name]:
        assert text == stored_copy(name, COMPRESSED[name])
    assert text == b"".join(b"%03d\n" % i for i in range(512))


@pytest.mark.parametrize("name", sorted(COMPRESSED))
def test_update_ver_parse_reads_a_compressed_index_through_the_extractor(name):
    require_extractor()
    with pytest.raises(FormatError) as info:
        UpdateVer.parse(archive(name), "upstream/update.ver")
    # The text parser's complaint about the first decompressed line: the
    # archive was decompressed, and its text is no index.
    assert str(info.value) == "upstream/update.ver, line 1: text before the first [SECTION]; not an update.ver"


def test_an_archive_the_extractor_cannot_decode_is_refused_not_taken_as_text():
    require_extractor()
    with pytest.raises(FormatError, match=r"broken RAR archive \(Corrupt file - CRC check failed"):
        UpdateVer.parse(archive(UNDECODABLE), "upstream/update.ver")


def test_without_an_extractor_a_compressed_index_is_one_line_naming_the_package(no_extractor):
    with pytest.raises(MissingToolError) as info:
        UpdateVer.parse(archive("rar3-solid.rar"), "http://up/eset_upd/update.ver")
    message = str(info.value)
    assert message == ("http://up/eset_upd/update.ver is RAR-compressed and no RAR extractor is installed; "
                       "install a RAR extractor: apt-get install libarchive-tools (bsdtar)")
    assert rar.extractor() is None


def test_a_stored_index_needs_no_extractor(no_extractor):
    # The stored member of a WinRAR archive: rarfile reads it by itself.
    assert stored_copy("seektest.rar", "stest2.txt") == b"".join(b"%03d\n" % i for i in range(512))


def test_bsdtar_is_preferred_to_a_7zip_that_cannot_read_rar():
    # rarfile alone picks 7-Zip first; Debian's (package 7zip) has no RAR codec.
    if not (shutil.which("bsdtar") and (shutil.which("7zz") or shutil.which("7z"))):
        pytest.skip("needs bsdtar and Debian's 7-Zip side by side (package 7zip absent)")
    assert rar.extractor() == "bsdtar"
    assert rar.extract_single(archive("rar3-solid.rar"), "x") == b"".join(b"%03d\n" % i for i in range(512))
