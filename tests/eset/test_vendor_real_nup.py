"""Genuine vendor `.nup` files verify with the configuration's defaults.

The simulated vendor is checked against these elsewhere; here the reader and
verifier meet the real bytes directly.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import pytest

import vendor_real
from updmirror import config
from updmirror.errors import FormatError, SignatureError
from updmirror.eset import nup, openpgp


def default_pins() -> tuple[str, ...]:
    # No [verify] section: the pinned key is the configuration's default.
    cfg = config.parse({"upstream": {"url": "http://update.eset.com/"}, "mirror": {"root": "/tmp/m"}},
                       Path("mirror.toml"))
    return cfg.verify.signing_keys


def inner_blob(data: bytes) -> bytes:
    _, body = literal_packet(data)
    literal = body[6 + body[1]:]
    return literal[literal.index(b"[update_data]\r\n\x1a\x00") + 17:]


def test_default_configuration_pins_the_vendors_key():
    assert default_pins() == (vendor_real.FINGERPRINT,)


@pytest.mark.parametrize("name", sorted(vendor_real.RSA_SIGNED))
def test_real_file_verifies_by_the_vendors_key(name):
    info = nup.verify(vendor_real.path(name), name, default_pins())
    assert info.signed_by == vendor_real.FINGERPRINT
    assert info.embedded_key_fingerprint == vendor_real.FINGERPRINT
    assert info.update_info["name"] == vendor_real.RSA_SIGNED[name]
    blob = inner_blob(vendor_real.read(name))
    assert (info.filesize, info.crc) == (len(blob), zlib.crc32(blob))
    assert int(info.update_info["filesize"]) == len(blob)
    assert [(s.algorithm, s.hash, s.verified) for s in info.signatures] == [
        ("RSA", "SHA512", True), ("DSA", "SHA1", False)]


@pytest.mark.parametrize("name", sorted({**vendor_real.RSA_SIGNED, **vendor_real.DSA_ONLY}))
def test_real_literal_data_starts_with_crlf(name):
    tag, body = literal_packet(vendor_real.read(name))
    assert body[6 + body[1]:].startswith(b"\r\n[update_info]\r\nname=")


def test_dsa_only_real_file_has_good_size_and_crc_but_no_checkable_signature():
    name = "nod1F1C.nup"
    info = nup.inspect(vendor_real.path(name), name)
    blob = inner_blob(vendor_real.read(name))
    assert info.update_info["name"] == vendor_real.DSA_ONLY[name]
    assert (info.filesize, info.crc) == (len(blob), zlib.crc32(blob))
    assert info.embedded_key_fingerprint is None
    assert [(s.key_id, s.algorithm) for s in info.signatures] == [(vendor_real.LEGACY_DSA_KEY_ID, "DSA")]
    with pytest.raises(SignatureError, match=r"nod1F1C.nup: no signature by a pinned key .*"
                                             r"C8FCA002067B03C9 \(DSA/SHA1\): public key not available"):
        nup.verify(vendor_real.path(name), name, default_pins())


@pytest.mark.parametrize("name", sorted(vendor_real.RSA_SIGNED))
def test_changed_byte_in_a_real_file_is_caught(name):
    data = bytearray(vendor_real.read(name))
    data[data.index(b"[update_info]") + 20] ^= 1
    with pytest.raises(SignatureError):
        nup.verify(io.BytesIO(bytes(data)), name, default_pins())


# The reader is liberal in what it takes before [update_info], and precise when it refuses.

def literal_packet(data: bytes) -> tuple[int, bytes]:
    """(offset of its header, body) of the literal data packet."""
    src = openpgp.Source(io.BytesIO(data))
    while (p := openpgp.read_packet(src)).tag != openpgp.TAG_LITERAL:
        p.body.read_all()
    return p.offset, p.body.read_all(len(data))


def with_text(data: bytes, old: bytes, new: bytes) -> bytes:
    """A real file with part of its literal data replaced and the packet re-framed.

    The signatures no longer match, which inspect() does not check: the
    text is what these tests are about.
    """
    offset, body = literal_packet(data)
    header_len = 1 + (1, 2, 4, 0)[data[offset] & 3]
    assert old in body
    body = body.replace(old, new, 1)
    header = bytes([0x80 | openpgp.TAG_LITERAL << 2 | 2]) + len(body).to_bytes(4, "big")
    return data[:offset] + header + body + data[offset + header_len + len(body) - len(new) + len(old):]


def test_real_file_re_framed_unchanged_still_verifies():
    # with_text itself must not break a file: otherwise the tests below prove nothing.
    data = with_text(vendor_real.read("nod844C.nup"), b"name=RA2", b"name=RA2")
    assert nup.verify(io.BytesIO(data), "x.nup", default_pins()).signed_by == vendor_real.FINGERPRINT


@pytest.mark.parametrize("lead", [b"", b"\n", b"\r\n\r\n", b"\r\n  \r\n\n"])
def test_text_may_start_with_any_blank_lines_or_none(lead):
    data = with_text(vendor_real.read("nod844C.nup"), b"\r\n[update_info]", lead + b"[update_info]")
    info = nup.inspect(io.BytesIO(data), "x.nup")
    assert info.update_info["name"] == "RA2"


def test_lf_only_text_is_read():
    data = vendor_real.read("nod844C.nup")
    _, body = literal_packet(data)
    text = body[6 + body[1]:body.index(b"\x1a\x00")]
    info = nup.inspect(io.BytesIO(with_text(data, text, text.replace(b"\r\n", b"\n"))), "x.nup")
    assert info.update_info["name"] == "RA2" and info.filesize == 1224


def test_text_not_starting_with_update_info_names_file_line_and_text():
    data = with_text(vendor_real.read("nod844C.nup"), b"[update_info]", b"[update_inf0]")
    with pytest.raises(FormatError, match=r"x.nup: literal data line 2 is '\[update_inf0\]', "
                                          r"expected \[update_info\]"):
        nup.inspect(io.BytesIO(data), "x.nup")


def test_bad_line_in_update_info_is_named_by_number():
    data = with_text(vendor_real.read("nod844C.nup"), b"type=ra\r\n", b"type ra\r\n")
    with pytest.raises(FormatError, match=r"x.nup: \[update_info\] line 7 is not key=value: 'type ra'"):
        nup.inspect(io.BytesIO(data), "x.nup")


def test_missing_blob_marker_says_what_follows_update_data():
    data = with_text(vendor_real.read("nod844C.nup"), b"[update_data]\r\n\x1a\x00", b"[update_data]\r\n\x1b\x00")
    with pytest.raises(FormatError, match=r"x.nup: \[update_data\] is followed by the bytes 1b 00, not 1a 00"):
        nup.inspect(io.BytesIO(data), "x.nup")
