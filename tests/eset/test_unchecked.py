"""Which files count as signed only by a legacy key the mirror cannot check.

The exception is as narrow as the real files allow: no key packet, and every
signature DSA by a listed key ID whose public key the caller lacks. Anything
else keeps the full check, so an attacker cannot use the exception to slip a
file past a signature the mirror can check.
"""

from __future__ import annotations

import functools
import io

import pytest

import vendor_real
from updmirror.errors import SignatureError
from updmirror.eset import nup
from updmirror.vendor import nupwriter

TS = 1_280_000_000             # July 2010, like the real DSA-only module
INFO = [("name", "SELFDEFENSE641"), ("version", "1017 (20100728)"), ("level", "1")]


@functools.cache
def legacy() -> nupwriter.SigningKey:
    return nupwriter.generate_signing_key("legacy (test)", algorithm="dsa", created=TS)


@functools.cache
def other_dsa() -> nupwriter.SigningKey:
    return nupwriter.generate_signing_key("not listed (test)", algorithm="dsa", created=TS)


@functools.cache
def rsa() -> nupwriter.SigningKey:
    return nupwriter.generate_signing_key("vendor (test)", created=TS)


def build(key, *, embed=False, extra=(), signed=TS) -> bytes:
    out = io.BytesIO()
    nupwriter.build_nup(out, key=key, update_info=INFO, blob=b"inner module" * 50, literal_name="NOD32.LIC",
                        embed_key=embed, extra_signers=extra, timestamp=signed)
    return out.getvalue()


def check(data: bytes, *, pinned=None, extra_keys=(), legacy_ids=None):
    pinned = [rsa().fingerprint] if pinned is None else pinned
    legacy_ids = [legacy().key_id] if legacy_ids is None else legacy_ids
    return nup.verify(io.BytesIO(data), "m.nup", pinned, extra_keys, legacy_ids)


def test_dsa_only_file_by_a_listed_key_is_unchecked_with_its_size_and_crc_good():
    with pytest.raises(nup.UncheckedSignatureError, match="m.nup: signed only by the legacy DSA key") as e:
        check(build(legacy()))
    assert e.value.key_ids == (legacy().key_id,)
    assert e.value.info.filesize == len(b"inner module" * 50)


def test_the_real_dsa_only_module_is_unchecked_by_the_default_legacy_key():
    from updmirror.config import VENDOR_LEGACY_KEY_ID

    with pytest.raises(nup.UncheckedSignatureError):
        nup.verify(vendor_real.path("nod1F1C.nup"), "nod1F1C.nup", [vendor_real.FINGERPRINT], (),
                   [VENDOR_LEGACY_KEY_ID])


def test_without_legacy_key_ids_a_dsa_only_file_is_simply_refused():
    with pytest.raises(SignatureError) as e:
        check(build(legacy()), legacy_ids=[])
    assert not isinstance(e.value, nup.UncheckedSignatureError)


def test_a_dsa_only_file_signed_after_the_vendor_had_its_rsa_key_is_refused():
    # Every real file signed since 2013-04-23 carries the RSA signature too.
    with pytest.raises(SignatureError, match="signed only by the legacy DSA key .* but 2021-.*2013-04-23") as e:
        check(build(legacy(), signed=1_620_000_000))
    assert not isinstance(e.value, nup.UncheckedSignatureError)
    with pytest.raises(nup.UncheckedSignatureError):
        check(build(legacy(), signed=nup.LEGACY_SIGNED_BEFORE - 1))


@pytest.mark.parametrize("case", [
    "dsa key not listed",
    "key packet present",
    "rsa beside the legacy dsa, unpinned",
    "legacy dsa key available but not pinned",
])
def test_anything_else_keeps_the_full_check(case):
    data, extra_keys = {
        "dsa key not listed": (build(other_dsa()), ()),
        # A key packet means the file is meant to be checked by that key.
        "key packet present": (build(legacy(), embed=True), ()),
        # A signature the mirror can check (the embedded key's) must be pinned and good.
        "rsa beside the legacy dsa, unpinned": (build(nupwriter.generate_signing_key(created=TS), embed=True,
                                                      extra=[legacy()]), ()),
        # Once the mirror holds the key, its signature is checkable: it must then be pinned.
        "legacy dsa key available but not pinned": (build(legacy()), [legacy().public]),
    }[case]
    with pytest.raises(SignatureError) as e:
        check(data, extra_keys=extra_keys)
    assert not isinstance(e.value, nup.UncheckedSignatureError), case


def test_a_legacy_key_the_mirror_holds_and_pins_is_checked_like_any_other():
    info = check(build(legacy()), pinned=[legacy().fingerprint], extra_keys=[legacy().public])
    assert info.signed_by == legacy().fingerprint


def test_a_dsa_only_file_with_a_bad_crc_is_refused_before_any_exception_is_considered():
    data = bytearray(build(legacy()))
    data[data.index(b"inner module") + 3] ^= 1
    with pytest.raises(SignatureError, match="CRC-32") as e:
        check(bytes(data))
    assert not isinstance(e.value, nup.UncheckedSignatureError)


def test_only_legacy_signatures_is_the_narrow_rule():
    ids = ["C8FCA002067B03C9"]
    assert nup.only_legacy_signatures(None, [("DSA", "C8FCA002067B03C9")], ids) == ("C8FCA002067B03C9",)
    assert nup.only_legacy_signatures(None, [("DSA", "c8fca002067b03c9")], ids)   # key IDs in any case
    assert not nup.only_legacy_signatures("A" * 40, [("DSA", "C8FCA002067B03C9")], ids)
    assert not nup.only_legacy_signatures(None, [], ids)
    assert not nup.only_legacy_signatures(None, [("RSA", "C8FCA002067B03C9")], ids)
    assert not nup.only_legacy_signatures(None, [("DSA", "C8FCA002067B03C9"), ("RSA", "9BD8A6AFB8C9B029")], ids)
    assert not nup.only_legacy_signatures(None, [("DSA", "C8FCA002067B03C9")], [])


def test_announced_signers_reads_what_the_head_says(tmp_path):
    real = nup.announced_signers(vendor_real.path("nod844C.nup"), "nod844C.nup")
    assert real == (vendor_real.FINGERPRINT, (("RSA", "9BD8A6AFB8C9B029"), ("DSA", vendor_real.LEGACY_DSA_KEY_ID)))
    assert nup.announced_signers(vendor_real.path("nod1F1C.nup"), "nod1F1C.nup") == (
        None, (("DSA", vendor_real.LEGACY_DSA_KEY_ID),))
