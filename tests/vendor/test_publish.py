"""Releases: the next build, channels moving on, old files kept one release then removed."""

from __future__ import annotations

import pytest

from updmirror.eset.modules import is_module_section, modules
from updmirror.eset.nup import verify
from updmirror.eset.trees import CHANNELS, TREES
from updmirror.eset.updatever import UpdateVer
from updmirror.vendor import VendorError
from updmirror.vendor.generate import VendorState, generate
from updmirror.vendor.publish import publish

TREE_NAMES = ("ep11", "v5")


def _listed(root) -> dict[str, set[str]]:
    out = {}
    for tree in TREE_NAMES:
        for channel in CHANNELS:
            for path in TREES[tree].index_paths(channel):
                doc = UpdateVer.parse((root / "www" / path).read_bytes(), path)
                out[path] = {m.path for m in modules(doc, f"http://h/{path}")}
    return out


def _sections(root, path):
    doc = UpdateVer.parse((root / "www" / path).read_bytes(), path)
    return {s.name: s for s in doc.sections if is_module_section(s)}


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """A repository at release 1, then 2, then 3, with what each listed."""
    root = tmp_path_factory.mktemp("releases")
    generate(root, seed=7, size_mb=0.5, trees=TREE_NAMES)
    snapshots, reports = [], []
    for release in range(3):
        if release:
            reports.append(publish(root))
        listed = _listed(root)
        snapshots.append({"listed": listed,
                          "bytes": {p: (root / "www" / p).read_bytes() for p in listed},
                          "sections": {p: _sections(root, p) for p in listed},
                          "on_disk": {"/" + str(p.relative_to(root / "www")) for p in (root / "www").rglob("*.nup")}})
    return root, snapshots, reports


def test_publish_raises_versionid_in_every_index(releases):
    _, _, reports = releases
    for report in reports:
        assert len(report.versionids) == 6
        for path, (before, after) in report.versionids.items():
            assert after > before, path


def test_deferred_is_the_previous_regular_and_pre_release_is_ahead(releases):
    _, snaps, _ = releases
    for tree in TREE_NAMES:
        regular = TREES[tree].index_paths("regular")[0]
        deferred = TREES[tree].index_paths("deferred")[0]
        pre = TREES[tree].index_paths("pre-release")[0]
        for before, after in zip(snaps, snaps[1:], strict=False):
            assert after["bytes"][deferred] == before["bytes"][regular]
            # What pre-release had early, regular has now (same file, same section).
            early = before["listed"][pre] - before["listed"][regular]
            assert early and early <= after["listed"][regular]


def test_new_builds_bring_new_deltas_and_full_modules(releases):
    root, snaps, reports = releases
    new_kinds = set()
    for before, after in zip(snaps, snaps[1:], strict=False):
        for path, sections in after["sections"].items():
            old_files = before["listed"][path]
            for name, s in sections.items():
                if s["file"] in old_files:
                    continue
                if name.startswith("CONTINUOUS_"):
                    new_kinds.add("continuous")
                else:
                    new_kinds.add(s["level"])
                    if s["level"] != "0":
                        assert s["base"] != "268435456"
    assert {"0", "1", "continuous"} <= new_kinds
    state = VendorState.load(root)
    assert state.release == 3
    for path in reports[-1].added[:10]:
        assert verify(root / "www" / path.lstrip("/"), path, [state.fingerprint]).signed_by


def test_old_files_stay_one_release_then_go(releases):
    root, snaps, reports = releases
    first = set().union(*snaps[0]["listed"].values())
    second = set().union(*snaps[1]["listed"].values())
    third = set().union(*snaps[2]["listed"].values())
    dropped_at_2 = first - second
    assert dropped_at_2, "release 2 should stop listing some files"
    # After release 2 they are still there (a mirror mid-sync can finish) ...
    assert dropped_at_2 <= snaps[1]["on_disk"]
    assert set(reports[0].kept) == dropped_at_2 and not reports[0].removed
    # ... and after release 3 they are gone, unless listed again.
    gone = dropped_at_2 - third
    assert gone and not (gone & snaps[2]["on_disk"])
    assert set(reports[1].removed) == gone
    # Everything any current index lists is on disk.
    assert third <= snaps[2]["on_disk"]
    for path in gone:
        assert not (root / "www" / path.lstrip("/")).parent.exists() or \
            any((root / "www" / path.lstrip("/")).parent.iterdir())


def test_publish_without_a_repository_says_what_to_do(tmp_path):
    with pytest.raises(VendorError, match="vendor generate"):
        publish(tmp_path)
