"""The real 2021 index through the mirror's index rewriter: only what must change does.

Stored in git with LF; the vendor serves CRLF. Both spellings are tested.
"""

from __future__ import annotations

import difflib

import pytest

import vendor_real
from updmirror.eset.modules import modules
from updmirror.eset.updatever import UpdateVer
from updmirror.sync.plan import rewrite_index

#: Where a mirror of the vendor's layout holds such an index, and the other places a client may read it.
HELD_AT = "http://mirror.lan:2221/eset_upd/ep8/update.ver"
ROUTED_AT = "http://mirror.lan:2221/update.ver"          # chosen by User-Agent at the root


@pytest.fixture(params=["LF, as stored", "CRLF, as served"])
def raw(request) -> bytes:
    lf = vendor_real.read(vendor_real.INDEX)
    return lf if request.param.startswith("LF") else lf.replace(b"\n", b"\r\n")


def test_the_rewriter_changes_only_the_bare_file_names(raw):
    """What must change, and nothing else.

    A client may get this index at /update.ver (the server picks the tree by
    User-Agent) while the mirror holds it, and its files, under
    /eset_upd/ep8/. A bare `file=` resolves against the folder the client
    asked in, so it must become the host-absolute path the mirror serves
    the file at: then it resolves to the same place from either URL. No
    [HOSTS] to drop here, no section filtered: every other byte stays.
    """
    doc = UpdateVer.parse(raw)
    mods = modules(doc, HELD_AT)
    out = rewrite_index(doc, mods)
    assert doc.to_bytes() == raw            # the upstream index is left as it was read
    eol = "\r\n" if b"\r\n" in raw else "\n"
    before, after = raw.decode().split(eol), out.decode().split(eol)
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 87, "\n".join(difflib.unified_diff(before, after, lineterm="", n=0))
    by_file = {m.file: m.path for m in mods}
    for a, b in changed:
        assert a.startswith("file=nod") and b == "file=" + by_file[a.removeprefix("file=")]
    # Wherever a client reads it, a file= now names where the mirror holds the file.
    served = UpdateVer.parse(out)
    for url in (ROUTED_AT, HELD_AT, "http://mirror.lan:2221/dll/update.ver"):
        assert [m.path for m in modules(served, url)] == [m.path for m in mods]


def test_the_rewriter_drops_only_what_the_selection_leaves_out(raw):
    doc = UpdateVer.parse(raw)
    mods = modules(doc, HELD_AT)
    x64 = [m for m in mods if m.platform == "x64"]
    out = UpdateVer.parse(rewrite_index(doc, x64))
    assert [s.name for s in out.sections] == [m.section for m in x64]
    for s in out.sections:
        original = doc.section(s.name)
        assert [(k, v) for k, v in s.items() if k != "file"] == [(k, v) for k, v in original.items() if k != "file"]
