"""The run history: a crash or a full disk never leaves a line that later
readers merge with the next record."""

import json
import os

import pytest

from diskkit import fill, limit_inodes, small_disk
from updmirror.errors import StoreError
from updmirror.store import Store
from updmirror.store.records import RUNS_FILE, append_run, read_runs


def test_a_partial_last_line_left_by_a_crash_is_not_merged_with_the_next_record(tmp_path):
    (tmp_path / RUNS_FILE).write_text(json.dumps({"ok": False, "message": "old failure"}) + "\n"
                                      + '{"ok": false, "message": "killed whi')   # no newline: cut off
    append_run(tmp_path, {"ok": True, "message": "now good"})
    runs = read_runs(tmp_path)
    assert runs[0] == {"ok": True, "message": "now good"}
    assert runs[1]["message"] == "old failure"


def test_a_full_disk_leaves_no_partial_record_and_the_next_one_is_read(tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        state = disk / "state"
        append_run(state, {"ok": True, "message": "first"})
        filler = fill(disk)
        # Longer than what is left of the file's last page: part of it would fit.
        with pytest.raises(StoreError) as info:
            append_run(state, {"ok": False, "message": "x" * 6000})
        message = str(info.value)
        assert str(state / RUNS_FILE) in message and "No space left on device" in message
        assert (state / RUNS_FILE).read_bytes().endswith(b"\n")
        assert [r["message"] for r in read_runs(state)] == ["first"]
        os.unlink(filler)
        append_run(state, {"ok": True, "message": "after freeing space"})
        assert read_runs(state)[0]["message"] == "after freeing space"


def test_a_snapshot_whose_pointer_cannot_be_written_is_not_left_as_a_replaced_one(tmp_path):
    with small_disk(tmp_path / "disk", "1m") as disk:
        store = Store(disk / "store")
        first = store.new_snapshot()
        first.write("eset_upd/ep11/dll/update.ver", b"[1]\r\n")
        first.publish({"indexes": []})
        builder = store.new_snapshot()
        builder.write("eset_upd/ep11/dll/update.ver", b"[2]\r\n")
        limit_inodes(disk, 1)      # room for the manifest, none for the new link
        with pytest.raises(OSError):
            builder.publish({"indexes": []})
        builder.abandon()
        # Else the server would serve it as a snapshot in its grace period.
        assert [s.id for s in store.snapshots()] == [first.id] == [store.current().id]
