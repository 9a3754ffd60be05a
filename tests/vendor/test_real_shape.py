"""The simulated vendor's files have the shape of the real ones, packet by packet.

Each real `.nup` is compared with a generated file of the same kind (level,
platform; DSA-only with DSA-only), and the real index with a generated one.
A failure lists every differing fact and then both files side by side.
Facts that may differ are named below with the reason.
"""

from __future__ import annotations

import re

import pytest
import shape

import vendor_real
from updmirror.eset.modules import modules
from updmirror.eset.updatever import UpdateVer

#: Facts of the real index that differ from the vendor's on purpose, and why.
INDEX_DIFFERENCES = {
    "line endings": "the real index is stored in git with LF; the vendor serves CRLF (format page, "
                    "section 2), which the simulation writes",
    "non-module sections": "a vendor product's mirror strips [HOSTS] and the other non-module "
                           "sections; the vendor's index has them (format page, section 2)",
    "module key order": "a product's mirror writes keys in an order of its own; the vendor's order "
                        "is that of the [update_info] text in its .nup files (checked below)",
    "file= form": "a product's mirror writes bare names beside its index; the vendor host-absolute paths",
    "buildregname quoted": "a product's mirror drops the quotes; the vendor quotes it (format page, "
                           "and every real [update_info] text)",
}


def _generated_index(root, path: str) -> UpdateVer:
    return UpdateVer.parse((root / "www" / path).read_bytes(), path)


def _pick(root, path: str, *, level: int, platform: str, dsa_only: bool) -> bytes:
    """The bytes of a generated file of the same kind as a real one."""
    for m in modules(_generated_index(root, path), f"http://h/{path}"):
        data = (root / "www" / m.path.lstrip("/")).read_bytes()
        keyless = not data.startswith(b"\xbd")   # no old-format tag-15 header
        if (m.level == level and m.platform == platform and m.language is None and not m.continuous
                and keyless == dsa_only):
            return data
    raise AssertionError(f"{path} has no level-{level} {platform} module (dsa_only={dsa_only}) to compare")


def _real_kind(name: str) -> tuple[int, str]:
    data = vendor_real.read(name)
    level = int(re.search(rb"\r\nlevel=(\d)\r\n", data).group(1))
    platform = re.search(rb"\r\nplatform=(\w+)\r\n", data).group(1).decode()
    return level, platform


def _assert_same_shape(real_name: str, real: bytes, simulated: bytes, ignore: dict[str, str]) -> None:
    a, b = shape.nup_facts(real), shape.nup_facts(simulated)
    diffs = shape.differences(a, b, ignore=ignore)
    assert not diffs, (f"{real_name} and the simulated file differ in {len(diffs)} fact(s):\n"
                       + "\n".join(diffs) + "\n\nside by side ('!' differs):\n" + shape.side_by_side(a, b))


@pytest.mark.parametrize("tree_index", ["eset_upd/v5/update.ver", "eset_upd/ep11/dll/update.ver"])
@pytest.mark.parametrize("name", sorted(vendor_real.RSA_SIGNED))
def test_generated_nup_has_the_shape_of_the_real_one(vendor_root, name, tree_index):
    level, platform = _real_kind(name)
    simulated = _pick(vendor_root[0], tree_index, level=level, platform=platform, dsa_only=False)
    ignore = {}
    if b"NOD32.LIC" in vendor_real.read(name):
        # Modules built before 2013 name their inner literal NOD32.LIC, later ones module_inc.dat;
        # every RSA-signed simulated module is from 2025 (see the DSA-only test for NOD32.LIC).
        ignore["packet 4 inner packet 2 name"] = "the module's era"
    _assert_same_shape(name, vendor_real.read(name), simulated, ignore)


def test_generated_dsa_only_nup_has_the_shape_of_the_real_one(vendor_root):
    name = "nod1F1C.nup"
    level, platform = _real_kind(name)
    simulated = _pick(vendor_root[0], "eset_upd/v5/update.ver", level=level, platform=platform, dsa_only=True)
    _assert_same_shape(name, vendor_real.read(name), simulated, {})


def test_the_comparison_sees_a_difference_in_shape(vendor_root):
    # The comparison itself must be able to fail: a new-format header is one fact that differs.
    real = vendor_real.read("nod844C.nup")
    changed = bytes([0xC0 | 4, 13]) + real[911:]      # no key packet, the one-pass one in new format
    diffs = shape.differences(shape.nup_facts(real), shape.nup_facts(changed))
    assert any(d.startswith("packet 1:") for d in diffs) and any("new, shortest length" in d for d in diffs)


def test_generated_index_has_the_shape_of_the_real_one_except_where_a_product_mirror_differs(vendor_root):
    real = shape.index_facts(vendor_real.read(vendor_real.INDEX))
    simulated = shape.index_facts((vendor_root[0] / "www" / "eset_upd/v5/update.ver").read_bytes())
    diffs = shape.differences(real, simulated, ignore=INDEX_DIFFERENCES)
    assert not diffs, ("the real and the simulated index differ in:\n" + "\n".join(diffs)
                       + "\n\nside by side:\n" + shape.side_by_side(real, simulated))
    # What is the same on purpose, spelled out:
    assert simulated["line endings"] == "'\\r\\n'"
    assert real["module sections without size="] == simulated["module sections without size="] == "some"


def test_vendor_index_key_order_is_that_of_the_vendors_own_update_info_text(vendor_root):
    # The one order the vendor itself writes, in every real .nup: the index's keys in it.
    facts = shape.nup_facts(vendor_real.read("em019_32_l1.nup"))
    text_order = facts["packet 4 text keys"].split(", ")
    doc = _generated_index(vendor_root[0], "eset_upd/v5/update.ver")
    for m in modules(doc, "http://h/eset_upd/v5/update.ver"):
        keys = [k for k in doc.section(m.section).keys() if k in text_order]
        assert keys == [k for k in text_order if k in keys], (m.section, keys)
