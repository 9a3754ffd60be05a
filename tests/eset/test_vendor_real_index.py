"""The real 2021 index (written by a vendor product's own mirror) through the
reader and the writer (the mirror's index rewriter: tests/sync/test_rewrite_real_index.py).

Stored in git with LF; the vendor serves CRLF. Both spellings are tested.
"""

from __future__ import annotations

import pytest

import vendor_real
from updmirror.eset.modules import is_module_section, modules
from updmirror.eset.updatever import UpdateVer

#: Where a mirror of the vendor's layout holds such an index, and the other places a client may read it.
HELD_AT = "http://mirror.lan:2221/eset_upd/ep8/update.ver"
ROUTED_AT = "http://mirror.lan:2221/update.ver"          # chosen by User-Agent at the root


def spellings() -> list[tuple[str, bytes]]:
    lf = vendor_real.read(vendor_real.INDEX)
    return [("LF, as stored", lf), ("CRLF, as served", lf.replace(b"\n", b"\r\n"))]


@pytest.fixture(params=spellings(), ids=lambda s: s[0])
def raw(request) -> bytes:
    return request.param[1]


def test_real_index_parses_with_its_87_module_sections(raw):
    doc = UpdateVer.parse(raw, "update.ver")
    assert len(doc.sections) == vendor_real.INDEX_SECTIONS
    assert all(is_module_section(s) for s in doc.sections)
    assert doc.section("HOSTS") is None     # a product's mirror writes none


def test_real_index_round_trips_byte_for_byte(raw):
    assert UpdateVer.parse(raw).to_bytes() == raw


def test_bare_names_resolve_against_the_index_folder(raw):
    doc = UpdateVer.parse(raw)
    mods = modules(doc, "http://upper.lan:2221/update.ver")
    assert len(mods) == 87 and all(m.file.startswith("nod") and m.file.endswith(".nup") for m in mods)
    assert all(m.path == "/" + m.file and m.url == "http://upper.lan:2221/" + m.file for m in mods)
    deeper = modules(doc, HELD_AT)
    assert {m.section: m.path for m in deeper}["SELFDEFENSE641"] == "/eset_upd/ep8/nod1F1C.nup"
    listed = {m.section: m.file for m in mods}
    for name, section in vendor_real.LISTED.items():
        assert listed[section] == name      # the fixture files are the ones this index names


def test_two_sections_have_no_size_and_the_rest_the_fixture_sizes(raw):
    mods = {m.section: m for m in modules(UpdateVer.parse(raw), HELD_AT)}
    assert sorted(s for s, m in mods.items() if m.size is None) == sorted(vendor_real.INDEX_WITHOUT_SIZE)
    for name, section in vendor_real.LISTED.items():
        assert mods[section].size == vendor_real.path(name).stat().st_size
