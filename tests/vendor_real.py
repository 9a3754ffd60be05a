"""The genuine vendor files in ../shared/fixtures/vendor-real/, for every test room.

One home for where they are and what each one is (their README says the
same in prose). A missing folder fails the test that asks for it: the files
are there in CI, and a conformance test that skips proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
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


# -- upstreams made of the real files (for sync and serve tests) ------------------
#: The tree the 2021 index is mirrored as. Which product's mirror wrote it is
#: not known (a guess): a tree with a plain update.ver, as its nodXXXX names suit.
INDEX_TREE = "v9"


def index_with(sections: Iterable[str]) -> bytes:
    """The real index with every other section removed through the lossless
    reader: the lines kept are the vendor's bytes (LF endings, key order)."""
    from updmirror.eset.updatever import UpdateVer

    doc = UpdateVer.parse(read(INDEX), INDEX)
    keep = {s.upper() for s in sections}
    doc.remove_sections({s.name for s in doc.sections if s.name.upper() not in keep})
    assert len(doc.sections) == len(keep), f"not all of {sorted(keep)} are in the real index"
    return doc.to_bytes()


def product_mirror(www: Path, trees: dict[str, Iterable[str]]) -> dict[str, bytes]:
    """`www` laid out as a vendor product's own mirror, for VendorServer(product_mirror=True):
    each tree's index (the real one, cut to the sections given) at
    www/<tree>/<its index path>, to be chosen by User-Agent, and the listed
    files flat beside where that index is served (bare names). Returns what a
    client sees: request path -> bytes (an index under the tree's name)."""
    from updmirror.eset.trees import TREES

    seen: dict[str, bytes] = {}
    for tree, sections in trees.items():
        sections = list(sections)
        served_at = TREES[tree].indexes[0]              # "update.ver" or "dll/update.ver"
        folder = served_at.rpartition("/")[0]
        index = index_with(sections)
        (www / tree / served_at).parent.mkdir(parents=True, exist_ok=True)
        (www / tree / served_at).write_bytes(index)
        seen[f"{tree}:{served_at}"] = index
        for name in files_of(sections):
            target = www / folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(read(name))
            seen["/" + (f"{folder}/{name}" if folder else name)] = read(name)
    return seen


def vendor_layout(www: Path, tree: str, sections: Iterable[str], product: str = "v9-rel-sta") -> dict[str, bytes]:
    """`www` laid out as the vendor's server: the real index, cut to `sections`,
    at the tree's vendor path, its `file=` values made host-absolute
    (`/<product>/nodXXXX.nup`, the vendor's form; only those lines change),
    and the files there. Returns served path -> bytes (the index under its path)."""
    from updmirror.eset.trees import TREES
    from updmirror.eset.updatever import UpdateVer

    sections = list(sections)
    doc = UpdateVer.parse(index_with(sections), INDEX)
    seen: dict[str, bytes] = {}
    for section in doc.sections:
        name = section.get("file")
        section.set("file", f"/{product}/{name}")
        (www / product).mkdir(parents=True, exist_ok=True)
        (www / product / name).write_bytes(read(name))
        seen[f"/{product}/{name}"] = read(name)
    (index_path,) = TREES[tree].index_paths()[:1]
    (www / index_path).parent.mkdir(parents=True, exist_ok=True)
    (www / index_path).write_bytes(doc.to_bytes())
    seen[index_path] = doc.to_bytes()
    return seen


def files_of(sections: Iterable[str]) -> list[str]:
    """The fixture files the real index lists for `sections`."""
    by_section = {section: name for name, section in LISTED.items()}
    return [by_section[s] for s in sections]
