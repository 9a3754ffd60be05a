"""What the server answers, decided per snapshot: tables, routing, allow list."""

import os

from serverkit import EP11_INDEX, V16_INDEX, publish
from updmirror.serve import tables
from updmirror.serve.allow import AllowList
from updmirror.store.snapshots import Store

PRE_EP11 = "eset_upd/ep11/pre/dll/update.ver"


def test_an_index_comes_only_from_the_current_snapshot(tmp_path):
    root = tmp_path / "store"
    publish(root, {"/m/old.nup": b"old"}, {EP11_INDEX: b"[OLD]", V16_INDEX: b"[V16 OLD]"})
    publish(root, {"/m/new.nup": b"new"}, {EP11_INDEX: b"[NEW]"})
    t = tables.build(Store(root), grace=3600, default_tree="ep11")
    assert t.files[b"/" + EP11_INDEX.encode()].body == b"[NEW]"
    assert t.files[b"/m/old.nup"].body == b"old"            # grace: files stay
    assert b"/" + V16_INDEX.encode() not in t.files         # but not the old snapshot's index
    assert t.for_agent(b"/dll/update.ver", b"ESS Update (Windows; BPC 16.0.1.0)", None).body == b"[NEW]"


def test_past_the_grace_an_old_snapshot_is_not_served(tmp_path):
    root = tmp_path / "store"
    publish(root, {"/m/old.nup": b"old"}, {EP11_INDEX: b"[OLD]"})
    publish(root, {"/m/new.nup": b"new"}, {EP11_INDEX: b"[NEW]"})
    store = Store(root)
    store.retire_and_clean(grace_seconds=3600, now=1000.0)
    t = tables.build(store, grace=3600, default_tree="ep11", now=1000.0 + 3599)
    assert b"/m/old.nup" in t.files and t.next_expiry == 1000.0 + 3600
    t = tables.build(store, grace=3600, default_tree="ep11", now=1000.0 + 3601)
    assert b"/m/old.nup" not in t.files and t.next_expiry is None


def test_the_channel_header_picks_the_pre_release_index(tmp_path):
    root = tmp_path / "store"
    store = Store(root)
    b = store.new_snapshot()
    b.write(EP11_INDEX, b"[REGULAR]")
    b.write(PRE_EP11, b"[PRE]")
    b.publish({"indexes": [{"tree": "ep11", "channel": "regular", "path": EP11_INDEX},
                           {"tree": "ep11", "channel": "pre-release", "path": PRE_EP11}]})
    t = tables.build(store, grace=0, default_tree="ep11")
    agent = b"EEA Update (Windows; U; 64bit; BPC 11.0.2044.0)"
    assert t.for_agent(b"/dll/update.ver", agent, None).body == b"[REGULAR]"
    assert t.for_agent(b"/dll/update.ver", agent, b"domain=pre-release").body == b"[PRE]"
    assert t.for_agent(b"/dll/update.ver", agent, b"domain=deferred").body == b"[REGULAR]"


def test_hard_linked_files_share_their_bytes_and_headers_across_snapshots(tmp_path):
    root = tmp_path / "store"
    publish(root, {"/m/a.nup": b"same"}, {EP11_INDEX: b"[1]"})
    first = tables.build(Store(root), grace=3600, default_tree="ep11")
    publish(root, {"/m/a.nup": b"same"}, {EP11_INDEX: b"[2]"})
    second = tables.build(Store(root), grace=3600, default_tree="ep11", previous=first)
    assert second.files[b"/m/a.nup"].body is first.files[b"/m/a.nup"].body
    assert second.files[b"/m/a.nup"].fs_path != first.files[b"/m/a.nup"].fs_path


def test_symlinks_in_a_tree_are_never_served(tmp_path):
    root = tmp_path / "store"
    snap = publish(root, {"/m/a.nup": b"a"}, {EP11_INDEX: b"[1]"})
    (tmp_path / "outside").write_bytes(b"secret")
    os.symlink(tmp_path / "outside", snap.tree / "m" / "link.nup")
    t = tables.build(Store(root), grace=0, default_tree="ep11")
    assert b"/m/link.nup" not in t.files and b"/m/a.nup" in t.files


def test_the_allow_list_judges_ipv4_mapped_addresses_as_ipv4():
    allow = AllowList(["10.0.0.0/8", "::1/128"])
    assert allow.permits("10.1.2.3") and allow.permits("::ffff:10.1.2.3")
    assert not allow.permits("::ffff:11.1.2.3") and not allow.permits("11.1.2.3")
    assert allow.permits("::1") and not allow.permits("127.0.0.1")
    assert not allow.permits("not an address")
