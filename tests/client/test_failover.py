"""Failover: each reason to give a source up, and a primary killed mid-download."""

from __future__ import annotations

import random
import shutil

import pytest
from clientkit import PASSWORD, VendorProcess, closed_port, endpoint, source, state, update

from updmirror.client import UpdateFailed, installed
from updmirror.vendor.faults import Fault


def test_a_source_that_is_down_is_skipped(releases, tmp_path):
    down = f"http://127.0.0.1:{closed_port()}"
    with releases.serve(releases.second) as good:
        result = update(tmp_path / "av", [source(down), source(good.url)], endpoint(releases))
    assert result.source == good.url.rstrip("/")
    assert [(f.source, f.cause) for f in result.failures] == [(down, "unavailable")]
    assert "cannot connect" in result.failures[0].message


def test_a_source_that_refuses_the_credentials_is_skipped(releases, tmp_path):
    with releases.serve(releases.second, password="another-licence") as strict, \
            releases.serve(releases.second) as good:
        result = update(tmp_path / "av", [source(strict.url), source(good.url)], endpoint(releases))
        refused = strict.count(status=401)
    assert result.source == good.url.rstrip("/") and [f.cause for f in result.failures] == ["credentials"]
    assert refused == 1                                   # credentials are not retried
    assert PASSWORD not in result.failures[0].message and "HTTP 401" in result.failures[0].message


def test_a_source_serving_a_page_instead_of_an_index_is_skipped(releases, tmp_path):
    with releases.serve(releases.second) as portal, releases.serve(releases.second) as good:
        portal.set_faults([Fault("captive_portal")])
        result = update(tmp_path / "av", [source(portal.url), source(good.url)], endpoint(releases))
    assert result.source == good.url.rstrip("/") and [f.cause for f in result.failures] == ["broken-index"]


def test_a_source_serving_a_truncated_index_is_skipped(releases, tmp_path):
    with releases.serve(releases.second) as cut, releases.serve(releases.second) as good:
        cut.set_faults([Fault("truncate", match="*update.ver")])
        result = update(tmp_path / "av", [source(cut.url), source(good.url)], endpoint(releases))
    assert result.source == good.url.rstrip("/") and [f.cause for f in result.failures] == ["unavailable"]
    assert "cut short" in result.failures[0].message


def test_a_source_older_than_the_folder_is_skipped_and_never_installed(releases, tmp_path):
    dest = tmp_path / "av"
    with releases.serve(releases.second) as new:
        update(dest, [source(new.url)], endpoint(releases))
        current = state(dest)
        with releases.serve(releases.first) as old:
            result = update(dest, [source(old.url), source(new.url)], endpoint(releases))
            with pytest.raises(UpdateFailed) as alone:
                update(dest, [source(old.url)], endpoint(releases))
    assert result.status == "current" and result.source == new.url.rstrip("/")
    assert [f.cause for f in result.failures] == ["older-index"]
    assert [f.cause for f in alone.value.failures] == ["older-index"]
    assert state(dest) == current


def test_a_source_serving_a_badly_signed_module_is_skipped_and_its_file_kept_out(releases, tmp_path):
    dest = tmp_path / "av"
    with releases.serve(releases.second) as forged, releases.serve(releases.second) as good:
        forged.set_faults([Fault("bad_signature", match="*.nup", times=1)])
        result = update(dest, [source(forged.url), source(good.url)], endpoint(releases))
    assert result.source == good.url.rstrip("/") and [f.cause for f in result.failures] == ["download"]
    assert "signature" in result.failures[0].message
    version, files = state(dest)
    assert version == result.version and len(files) == result.installed_files


def test_a_source_missing_a_module_file_is_skipped(releases, tmp_path):
    gappy = tmp_path / "gappy"
    shutil.copytree(releases.second, gappy)
    victim = next((gappy / "www").rglob("em002_64_l0.dll.nup"))
    victim.unlink()
    with releases.serve(gappy) as partial, releases.serve(releases.second) as good:
        result = update(tmp_path / "av", [source(partial.url), source(good.url)], endpoint(releases))
    assert [f.cause for f in result.failures] == ["download"] and "not found" in result.failures[0].message
    assert result.reused_files > 0      # what the first source had verified is not fetched again


def test_a_source_without_the_tree_is_skipped(releases, tmp_path):
    empty = tmp_path / "empty-share"
    empty.mkdir()
    with releases.serve(releases.second) as good:
        result = update(tmp_path / "av", [source(str(empty), user=None), source(good.url)], endpoint(releases))
    assert [f.cause for f in result.failures] == ["not-found"]


def test_when_every_source_fails_the_folder_is_as_it_was(releases, tmp_path):
    dest = tmp_path / "av"
    with releases.serve(releases.first) as old:
        update(dest, [source(old.url)], endpoint(releases))
    before = state(dest)
    down = f"http://127.0.0.1:{closed_port()}"
    with releases.serve(releases.second, password="another-licence") as strict:
        with pytest.raises(UpdateFailed) as caught:
            update(dest, [source(down), source(strict.url)], endpoint(releases))
    assert [f.cause for f in caught.value.failures] == ["unavailable", "credentials"]
    text = str(caught.value)
    assert down in text and strict.url.rstrip("/") in text and PASSWORD not in text
    assert state(dest) == before


def test_sources_of_equal_priority_take_turns_at_random_before_a_lower_one(releases, tmp_path):
    used = []
    with releases.serve(releases.second) as a, releases.serve(releases.second) as b, \
            releases.serve(releases.second) as c:
        for i in range(8):
            result = update(tmp_path / f"av{i}", [[source(a.url), source(b.url)], source(c.url)],
                            endpoint(releases), rng=random.Random(i))
            used.append(result.source)
        assert c.count() == 0
    assert set(used) == {a.url.rstrip("/"), b.url.rstrip("/")}


def test_a_primary_killed_mid_download_is_finished_from_the_secondary(releases, tmp_path):
    """The primary is a real server process dripping files slowly; it is killed after two
    files, once the third has begun to arrive."""
    port = closed_port()
    with VendorProcess(releases.second, port, faults=("slow:40000@*.nup",)) as primary, \
            releases.serve(releases.second) as secondary:
        class KillInTheThirdFile:
            done, this_file, from_primary, source = 0, 0, 0, None

            def planned(self, src, files, total):
                self.source = src

            def advance(self, n):
                if self.source != primary.url:
                    return
                self.from_primary += n
                self.this_file += n
                if self.done == 2 and primary.proc.poll() is None:
                    primary.kill()

            def file_done(self, name):
                self.done += 1
                self.this_file = 0

        watch = KillInTheThirdFile()
        result = update(tmp_path / "av", [source(primary.url), source(secondary.url)], endpoint(releases),
                        progress=watch)
        resumed = secondary.count(status=206)
    assert primary.proc.returncode == -9
    assert result.source == secondary.url.rstrip("/")
    assert [(f.source, f.cause) for f in result.failures] == [(primary.url, "download")]
    # The two files verified from the primary are not fetched again, the third resumes where it broke.
    assert result.reused_files == 2 and resumed == 1
    version, files = state(tmp_path / "av")
    assert version == result.version and len(files) == len(installed(tmp_path / "av").modules)
