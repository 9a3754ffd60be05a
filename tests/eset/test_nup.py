"""`.nup` building, inspection and verification."""

from __future__ import annotations

import functools
import io
import os
import subprocess
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools import needs_tool
from updmirror.errors import FormatError, SignatureError
from updmirror.eset import nup, openpgp
from updmirror.vendor import nupwriter, pgpwriter

TS = 1_700_000_000
INFO = [
    ("name", "ENGINE2"),
    ("version", "28345"),
    ("versionid", "28345"),
    ("build", "29107"),
    ("type", "engine"),
]
BLOB = bytes(range(256)) * 40


@functools.cache
def rsa_key() -> nupwriter.SigningKey:
    return nupwriter.generate_signing_key(created=TS)


@functools.cache
def other_rsa_key() -> nupwriter.SigningKey:
    return nupwriter.generate_signing_key("Someone else", created=TS)


@functools.cache
def dsa_key() -> nupwriter.SigningKey:
    return nupwriter.generate_signing_key("Legacy DSA", algorithm="dsa", created=TS)


def build(key=None, **kw) -> bytes:
    out = io.BytesIO()
    args = dict(update_info=INFO, blob=BLOB, literal_name="em002_32_l0.nup", timestamp=TS + 60)
    nupwriter.build_nup(out, key=key or rsa_key(), **{**args, **kw})
    return out.getvalue()


def verify(data: bytes, pinned=None, extra_keys=()) -> nup.NupInfo:
    pinned = [rsa_key().fingerprint] if pinned is None else pinned
    return nup.verify(io.BytesIO(data), "em002.nup", pinned, extra_keys)


def flip(data: bytes, pos: int) -> bytes:
    return data[:pos] + bytes([data[pos] ^ 0x01]) + data[pos + 1 :]


def signed_payload(payload: bytes, key: nupwriter.SigningKey, partial: bool = False) -> bytes:
    """A one-pass signed message around an arbitrary payload, no key packet."""
    h = openpgp.new_hash(key.hash_algo)
    h.update(payload)
    literal = pgpwriter.literal_header("x.nup", TS) + payload
    return (
        pgpwriter.one_pass_packet(0, key.hash_algo, key.public, last=True)
        + (pgpwriter.encode_partial_packet if partial else pgpwriter.encode_packet)(openpgp.TAG_LITERAL, literal)
        + pgpwriter.signature_packet(
            key.private,
            key.public,
            version=4,
            sig_type=0,
            hash_algo=key.hash_algo,
            created=TS,
            document_hash=h,
        )
    )


def payload(blob: bytes, *, filesize=None, crc=None) -> bytes:
    filesize = len(blob) if filesize is None else filesize
    crc = zlib.crc32(blob) if crc is None else crc
    head = (
        f"[update_info]\r\nname=ENGINE2\r\nfilesize={filesize}\r\ncrc={crc}\r\nfilename=x.nup\r\n"
        "[update_data]\r\n"
    )
    return head.encode() + b"\x1a\x00" + blob


@pytest.mark.parametrize("sig_version", [3, 4])
def test_built_file_verifies_with_pinned_key(sig_version):
    info = verify(build(sig_version=sig_version))
    assert info.signed_by == rsa_key().fingerprint
    assert [(s.version, s.algorithm, s.hash, s.verified) for s in info.signatures] == [
        (sig_version, "RSA", "SHA512", True)
    ]


def test_verify_reports_update_info_in_order_and_inner_size():
    info = verify(build())
    assert list(info.update_info) == [k for k, _ in INFO] + ["filesize", "crc", "filename"]
    assert (info.filesize, info.crc) == (len(BLOB), zlib.crc32(BLOB))
    assert info.literal_name == "em002_32_l0.nup"
    assert info.embedded_key_fingerprint == rsa_key().fingerprint


def test_pinned_fingerprint_may_have_spaces_and_lower_case():
    fpr = rsa_key().fingerprint.lower()
    spaced = " ".join(fpr[i : i + 4] for i in range(0, 40, 4))
    assert verify(build(), pinned=[spaced]).signed_by == rsa_key().fingerprint


def test_pinned_rsa_signature_suffices_beside_unknown_dsa_signature():
    info = verify(build(extra_signers=[dsa_key()]))
    assert info.signed_by == rsa_key().fingerprint
    dsa = next(s for s in info.signatures if s.algorithm == "DSA")
    assert (dsa.key_id, dsa.hash, dsa.verified) == (dsa_key().key_id, "SHA1", False)
    assert dsa.reason == "public key not available"


def test_dsa_signature_verifies_when_its_key_is_given():
    data = build(extra_signers=[dsa_key()])
    info = verify(data, pinned=[dsa_key().fingerprint], extra_keys=[dsa_key().public])
    assert info.signed_by == dsa_key().fingerprint


def test_file_signed_only_by_unpinned_key_is_refused():
    data = build(key=other_rsa_key())
    with pytest.raises(SignatureError, match="em002.nup: no signature by a pinned key") as e:
        verify(data)
    assert other_rsa_key().key_id in str(e.value) and rsa_key().fingerprint in str(e.value)


def test_inspect_does_not_verify_signatures():
    info = nup.inspect(io.BytesIO(build(key=other_rsa_key())), "em002.nup")
    assert info.signed_by is None
    assert [s.reason for s in info.signatures] == ["not checked"]


def test_flipped_byte_in_inner_blob_is_a_crc_error():
    data = build()
    with pytest.raises(SignatureError, match=r"em002.nup: inner data CRC-32 is .* says crc="):
        verify(flip(data, data.index(BLOB) + 100))


def test_flipped_byte_in_update_info_is_a_signature_error():
    data = build()
    with pytest.raises(SignatureError, match="digest does not match"):
        verify(flip(data, data.index(b"ENGINE2")))


def test_declared_filesize_mismatch_gives_both_numbers():
    data = signed_payload(payload(b"abc", filesize=4), rsa_key())
    with pytest.raises(SignatureError, match="inner data is 3 bytes, .* says filesize=4"):
        verify(data, extra_keys=[rsa_key().public])


@pytest.mark.parametrize("cut", [1, 50, 400])
def test_truncated_file_is_refused(cut):
    data = build()
    with pytest.raises(SignatureError, match="em002.nup: the file is truncated"):
        verify(data[:-cut])


def test_trailing_garbage_is_refused():
    with pytest.raises(SignatureError, match="unexpected data after the last signature"):
        verify(build() + b"\x00")


def test_file_without_key_packet_verifies_with_key_from_armored_file(tmp_path):
    key_file = tmp_path / "eset.asc"
    key_file.write_text(rsa_key().armored_public_key_block())
    keys = openpgp.load_key_file(key_file)
    info = verify(build(embed_key=False), extra_keys=keys)
    assert info.embedded_key_fingerprint is None
    assert info.signed_by == rsa_key().fingerprint


def test_file_without_key_packet_is_refused_without_extra_key():
    with pytest.raises(SignatureError, match="public key not available"):
        verify(build(embed_key=False))


@pytest.mark.parametrize("fmt", ["{:d}", "0x{:x}", "{:08X}", "{:08x}"])
def test_crc_may_be_decimal_or_hex(fmt):
    blob = b"inner blob"
    data = signed_payload(payload(blob, crc=fmt.format(zlib.crc32(blob))), rsa_key())
    assert verify(data, extra_keys=[rsa_key().public]).crc == zlib.crc32(blob)


def test_literal_data_in_partial_length_chunks_verifies():
    data = signed_payload(payload(BLOB), rsa_key(), partial=True)
    assert verify(data, extra_keys=[rsa_key().public]).signed_by == rsa_key().fingerprint


def test_build_is_deterministic_and_streams_from_a_file_object():
    assert build() == build(blob=(io.BytesIO(BLOB), len(BLOB)))


def test_signing_key_survives_pem_round_trip():
    again = nupwriter.SigningKey.from_pem(rsa_key().to_pem())
    assert again.fingerprint == rsa_key().fingerprint
    assert build(key=again) == build()


def test_garbage_key_file_is_a_format_error_naming_it(tmp_path):
    bad = tmp_path / "bad.asc"
    bad.write_bytes(b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!\n-----END PGP PUBLIC KEY BLOCK-----\n")
    with pytest.raises(FormatError, match="bad.asc"):
        openpgp.load_key_file(bad)


@needs_tool("gpg", "apt-get install gnupg")
def test_gnupg_signed_file_verifies_with_exported_key(tmp_path):
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]

    def run(*args, **kw):
        proc = subprocess.run([*gpg, *args], env=env, check=True, capture_output=True, timeout=120, **kw)
        return proc.stdout

    try:
        run("--quick-gen-key", "Test <t@example>", "rsa2048", "sign", "never")
        listing = run("--with-colons", "--list-keys").decode()
        fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        # Signing from stdin makes gpg write the literal data in partial-length chunks.
        signed = run("--compress-algo", "none", "--sign", input=payload(BLOB))
        (tmp_path / "key.gpg").write_bytes(run("--export"))
        (tmp_path / "key.asc").write_bytes(run("--export", "--armor"))
    finally:
        subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, capture_output=True)

    for key_file in ("key.gpg", "key.asc"):
        keys = openpgp.load_key_file(tmp_path / key_file)
        assert verify(signed, pinned=[fpr], extra_keys=keys).signed_by == fpr


@functools.cache
def valid_nup() -> bytes:
    return build(blob=BLOB[:300], extra_signers=[dsa_key()])


@st.composite
def mutated_nup(draw) -> bytes:
    data = bytearray(valid_nup())
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["set", "cut", "insert", "delete"]))
        if kind == "set":
            data[pos] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[pos : pos + draw(st.integers(1, 16))]
        if not data:
            break
    return bytes(data)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=600), mutated_nup()))
def test_any_input_bytes_raise_only_format_errors(data):
    for check in (
        lambda: nup.inspect(io.BytesIO(data), "fuzz.nup"),
        lambda: verify(data, extra_keys=[dsa_key().public]),
    ):
        try:
            check()
        except FormatError as e:
            assert "fuzz.nup" in str(e) or "em002.nup" in str(e)
