"""Sync of what the real vendor publishes besides plain signed files, over real HTTP:
modules signed only with its legacy DSA key, and sections without size=.

The simulated vendor's legacy tree (v5) lists six DSA-only modules of 2010,
SELFDEFENSE0..2 and SELFDEFENSE640..642, like the real 2021 index.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys

from synckit import assert_snapshot_complete

from serverkit import SRC
from updmirror.cli import main
from updmirror.eset.modules import is_module_section, modules
from updmirror.eset.updatever import UpdateVer
from updmirror.status import collect_status, render_page
from updmirror.store.records import read_runs
from updmirror.sync.engine import run_sync

INDEX = "eset_upd/v5/update.ver"
DSA_ONLY = ["SELFDEFENSE0", "SELFDEFENSE1", "SELFDEFENSE2", "SELFDEFENSE640", "SELFDEFENSE641", "SELFDEFENSE642"]
STRICT = 'unverifiable = "refuse"'


def sync(setup, **kw):
    return asyncio.run(run_sync(setup.cfg(), **kw))


def vendor_index(setup) -> UpdateVer:
    return UpdateVer.parse((setup.vendor_root / "www" / INDEX).read_bytes(), INDEX)


def test_dsa_only_modules_are_published_by_default_and_named_everywhere(setup, caplog, capsys):
    setup.write_config(trees=("v5",))
    caplog.set_level(logging.WARNING, "updmirror.sync")
    report = sync(setup)
    assert report.ok, report.message
    assert sorted(u["section"] for u in report.unchecked) == DSA_ONLY
    assert all(u["key_ids"] == [setup.legacy_key_id] for u in report.unchecked)
    # Published byte for byte, like every other file.
    snap = setup.store.current()
    for u in report.unchecked:
        path = u["path"].lstrip("/")
        assert (snap.tree / path).read_bytes() == (setup.vendor_root / "www" / path).read_bytes()
    assert_snapshot_complete(setup.store)
    # The sync's log: one line per file, naming its section and URL.
    lines = [r.getMessage() for r in caplog.records if "NOT SIGNATURE-CHECKED" in r.getMessage()]
    assert len(lines) == 6 and all(any(f"[{s}]" in ln for ln in lines) for s in DSA_ONLY)
    assert all("http://127.0.0.1:" in ln and setup.legacy_key_id in ln for ln in lines)
    assert "6 file(s) not signature-checked (legacy DSA only): SELFDEFENSE0" in report.message
    # The run record, the status facts (status.json), the page and the command.
    assert sorted(u["section"] for u in read_runs(setup.store.state, 1)[0]["unchecked"]) == DSA_ONLY
    facts = collect_status(setup.store, setup.cfg(), {})
    assert facts["state"] == "fresh" and sorted(u["section"] for u in facts["unchecked"]) == DSA_ONLY
    page = render_page(facts)
    assert "6 file(s) not signature-checked" in page and "SELFDEFENSE641" in page
    assert main(["status", "-c", str(setup.config_path)]) == 0
    out = capsys.readouterr().out
    assert "6 file(s) not signature-checked" in out and "SELFDEFENSE641 /v5-rel-sta/" in out
    # An unchanged upstream keeps saying so.
    again = sync(setup)
    assert again.ok and again.published is None and len(again.unchecked) == 6
    assert "not signature-checked" in again.message


def test_sync_json_summary_lists_the_files_not_signature_checked(setup):
    setup.write_config(trees=("v5",))
    proc = subprocess.run([sys.executable, "-m", "updmirror", "sync", "-c", str(setup.config_path), "--json"],
                          capture_output=True, text=True, timeout=180, env=dict(os.environ, PYTHONPATH=SRC))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert sorted(u["section"] for u in summary["unchecked"]) == DSA_ONLY
    assert "NOT SIGNATURE-CHECKED" in proc.stderr and "SELFDEFENSE641" in proc.stderr


def test_strict_policy_refuses_a_dsa_only_module_and_says_which_and_why(setup):
    setup.write_config(trees=("v5",), extra_verify=STRICT)
    report = sync(setup)
    assert not report.ok
    assert setup.store.current() is None               # nothing published
    refused = [e for e in report.errors if "]: refused:" in e and "could not be fetched" not in e]
    assert len(refused) == 6
    first = refused[0]
    assert any(f"[{s}]" in first for s in DSA_ONLY) and "/v5-rel-sta/mod_033_selfdefense" in first
    assert setup.legacy_key_id in first and 'unverifiable = "refuse"' in first
    assert "refused" in report.message


def test_turning_strict_after_accepting_refuses_what_is_served_and_changes_nothing(setup):
    setup.write_config(trees=("v5",))
    assert sync(setup).ok
    current = setup.store.current().id
    setup.write_config(trees=("v5",), extra_verify=STRICT)
    setup.server.reset_requests()
    report = sync(setup)
    assert not report.ok and "SELFDEFENSE" in report.message and "accepted by an earlier sync" in report.message
    assert setup.store.current().id == current
    # It looked again (no conditional request that would have let "unchanged" stand).
    assert [r.status for r in setup.server.requests if r.path.endswith("update.ver")] == [200]


def test_the_files_of_a_run_that_did_not_publish_are_recognised_as_unchecked(setup):
    # A first run fetches everything into the pool, then fails on one file.
    setup.write_config(trees=("v5",))
    target = next(m for m in modules(vendor_index(setup), "http://h/" + INDEX) if m.section == "PERSEUS0")
    original = setup.vendor_root / "www" / target.path.lstrip("/")
    saved = original.read_bytes()
    at = saved.index(b"[update_data]") + 40          # in the inner blob: its CRC-32 fails
    original.write_bytes(saved[:at] + bytes([saved[at] ^ 1]) + saved[at + 1:])
    assert not sync(setup).ok
    original.write_bytes(saved)
    # The next run re-uses the pool's DSA-only files, and still names them.
    report = sync(setup)
    assert report.ok, report.message
    assert report.files_fetched == 1
    assert sorted(u["section"] for u in report.unchecked) == DSA_ONLY


def test_a_dsa_only_module_without_size_is_refused_even_by_default(setup):
    setup.write_config(trees=("v5",))
    index_file = setup.vendor_root / "www" / INDEX
    doc = vendor_index(setup)
    section = doc.section("SELFDEFENSE641")
    section.lines = [ln for ln in section.lines if not ln.text.startswith("size=")]
    index_file.write_bytes(doc.to_bytes())
    report = sync(setup)
    assert not report.ok
    assert "[SELFDEFENSE641]" in report.message and "no size=" in report.message


def test_sections_without_size_are_fetched_checked_and_served_as_upstream_wrote_them(setup):
    setup.write_config(trees=("ep11", "v5"))
    report = sync(setup)
    assert report.ok, report.message
    snap = setup.store.current()
    seen = 0
    for index in ("eset_upd/ep11/dll/update.ver", INDEX):
        served = UpdateVer.parse((snap.tree / index).read_bytes())
        upstream = UpdateVer.parse((setup.vendor_root / "www" / index).read_bytes())
        for s in upstream.sections:
            if is_module_section(s) and "size" not in s:
                seen += 1
                assert "size" not in served.section(s.name)      # no size= added
                path = s["file"].lstrip("/")
                assert (snap.tree / path).read_bytes() == (setup.vendor_root / "www" / path).read_bytes()
    assert seen >= 2, "the simulated vendor should list some sections without size="
    # The manifest counts them with the size they were verified at.
    entry = next(e for e in snap.manifest["indexes"] if e["path"] == INDEX)
    assert all(size for _, size in entry["file_list"])
    assert entry["bytes"] == sum((snap.tree / p.lstrip("/")).stat().st_size for p, _ in entry["file_list"])


def test_max_file_size_refuses_a_larger_size_and_bounds_a_section_without_size(setup):
    # The index cut down to two sections: a small file with size=, a larger one without.
    doc = vendor_index(setup)
    mods = sorted((m for m in modules(doc, "http://h/" + INDEX) if m.size), key=lambda m: m.size)
    small, large = mods[0], mods[-1]
    doc.sections = [s for s in doc.sections if not is_module_section(s) or s.name in (small.section, large.section)]
    section = doc.section(large.section)
    section.lines = [ln for ln in section.lines if not ln.text.startswith("size=")]
    (setup.vendor_root / "www" / INDEX).write_bytes(doc.to_bytes())
    bound = max(1024, small.size)
    assert large.size > bound
    setup.write_config(trees=("v5",), extra_mirror=f"max_file_size = {bound}")
    report = sync(setup)
    assert not report.ok and setup.store.current() is None
    (refused,) = report.errors[:-1] if len(report.errors) > 1 else report.errors
    assert large.path in refused and f"more than the limit of {bound} bytes" in refused
    # A size= over the bound is refused before anything is downloaded.
    section.lines.append(type(section.lines[0])(f"size={large.size}", "\r\n"))
    index_file = setup.vendor_root / "www" / INDEX
    index_file.write_bytes(doc.to_bytes())
    report = sync(setup)
    assert not report.ok
    assert f"size={large.size} is more than [mirror] max_file_size ({bound} bytes)" in report.message
    # Raised past it, the file is fetched, checked and served.
    setup.write_config(trees=("v5",), extra_mirror=f"max_file_size = {large.size}")
    assert sync(setup).ok
