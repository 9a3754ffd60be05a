"""The genuine vendor files in ../shared/fixtures/vendor-real/, for every test room.

One home for where they are and what each one is (their README says the
same in prose). A missing folder fails the test that asks for it: the files
are there in CI, and a conformance test that skips proves nothing.
"""

from __future__ import annotations

from pathlib import Path

from updmirror.config import VENDOR_FINGERPRINT

REPO = Path(__file__).resolve().parents[1]
FOLDER = REPO.parent / "shared" / "fixtures" / "vendor-real"

#: The 2021 index a vendor product's own mirror wrote (flat names, LF in git).
INDEX = "update.ver"
INDEX_SECTIONS = 87
#: Its module sections without `size=`.
INDEX_WITHOUT_SIZE = ("PEGASUS1", "ENGINE2")

#: file -> the section its [update_info] names; signed by the vendor's RSA key (and DSA).
RSA_SIGNED = {
    "em019_32_l1.nup": "PROTOSCAN1",
    "nod844C.nup": "RA2",
    "nodF5FA.nup": "SSL2",
    "nod2963.nup": "ADVHEUR2",
    "nod9581.nup": "PROTOSCAN2",
    "nodDC8F.nup": "ARCHIVES1",
    "nodADB7.nup": "EPFW2",
}
#: Signed only with the vendor's legacy DSA key, whose public part is in no file.
DSA_ONLY = {"nod1F1C.nup": "SELFDEFENSE641"}
LEGACY_DSA_KEY_ID = "C8FCA002067B03C9"
#: The files of `RSA_SIGNED` that the 2021 index lists (em019_32_l1.nup is from 2023).
LISTED = {name: section for name, section in {**RSA_SIGNED, **DSA_ONLY}.items() if name.startswith("nod")}

FINGERPRINT = VENDOR_FINGERPRINT


def path(name: str) -> Path:
    p = FOLDER / name
    assert p.is_file(), (f"{p} is missing: the genuine vendor files must be beside the checkout "
                         "(../shared/fixtures/vendor-real/)")
    return p


def read(name: str) -> bytes:
    return path(name).read_bytes()
