"""A tree of `updmirror run` daemons propagates a release in seconds.

vendor -> A -> B -> C on loopback, each its own `updmirror run` process (two
workers each) with its own Basic credentials and the default interval of an
hour: B and C learn of their upper mirror's snapshots only by its
announcements. A, fed by the vendor (which announces nothing), is synced by
`updmirror sync` as its schedule or an administrator would. The release is
then served by C, each hop verified it, and a client of C installs it.
"""

from __future__ import annotations

import json
import time

import tierkit
from serverkit import updmirror_cli
from updmirror.client import installed
from updmirror.store.records import read_runs


def _version(tier: tierkit.Tier):
    """The versionid of the ep11 index `tier` serves (None: none yet)."""
    try:
        manifest = tierkit.tier_manifest(tier)
    except (OSError, ValueError):
        return None
    return next((i["versionid"] for i in manifest["indexes"] if i["path"] == tierkit.INDEX), None)


def _wait(probe, timeout: float, what: str):
    """What `probe()` returns once it is true (each call may reach another worker: the value
    that passed is the one to use, not a second reading)."""
    started = time.monotonic()
    while not (value := probe()):
        assert time.monotonic() - started < timeout, f"{what} not within {timeout:g} s"
        time.sleep(0.1)
    return value


def test_a_release_reaches_the_third_tier_by_announcements(tier_chain, tmp_path):
    chain = tier_chain(command="run", workers=2)
    a, b, c = chain.tiers
    # Empty at start, each daemon syncs at once; B and C then wait on the one above.
    first = _wait(lambda: (v := _version(a)) is not None and _version(c) == v and v, 90, "the first release at C")
    # At most the first sync failed, made while the mirror above had nothing yet.
    assert c.server.log.count("updmirror.daemon.schedule: sync failed") <= 1, c.server.log

    chain.release()
    published = time.monotonic()
    assert a.sync()["published"]
    a_synced = time.monotonic() - published
    # (Either of A's two workers may answer: both serve it within a second or two.)
    released = _wait(lambda: (v := _version(a)) not in (None, first) and v, 10, "the second release at A")
    _wait(lambda: _version(c) == released, 30, "the second release at C")
    took = time.monotonic() - published
    print(f"vendor -> C: {took:.1f} s, of which A's sync {a_synced:.1f} s (bench/tiers_propagation.py measures it)")

    for upper, lower in ((a, b), (b, c)):
        # Woken by the announcement of the upper mirror's second snapshot (the
        # hourly timer is far off), planned from the upper mirror's manifest,
        # and every new file fetched and checked.
        woken = f"the upper mirror published snapshot {upper.store.current().id}"
        assert woken in lower.server.log, lower.server.log[-3000:]
        (run,) = [r for r in read_runs(lower.store.state) if r["published"] == lower.store.current().id]
        assert run["ok"] and run["upper_manifest"] and run["files_fetched"] > 0, run
        assert run["files_hashed"] == run["files_fetched"], run
        # Only the vendor's legacy DSA-only files go unchecked, as at the first tier.
        assert {k for u in run["unchecked"] for k in u["key_ids"]} <= {lower.legacy_key_id}, run["unchecked"]
        # Each hop serves a snapshot of its own, under its own name.
        served = tierkit.tier_manifest(lower)
        assert (served["mirror"], served["snapshot"]) == (lower.name, lower.store.current().id)
    facts = json.loads(tierkit.get(c, "status.json"))
    (index,) = [i for i in facts["indexes"] if i["path"] == tierkit.INDEX]
    assert [h["name"] for h in index["hops"]] == ["A", "B", "C"]
    assert facts["state"] == "fresh", facts["problems"]

    # A client of C installs the release, checked against the vendor's key.
    password = tmp_path / "client-password"
    password.write_text(c.password + "\n")
    dest = tmp_path / "endpoint"
    done = updmirror_cli("client", "update", "--source", c.url, "--tree", "ep11", "--dest", str(dest),
                         "--user", c.user, "--password-file", str(password),
                         "--signing-key", c.fingerprint, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    held = installed(dest)
    assert held.tree == "ep11" and held.modules and held.source == c.url.rstrip("/"), held
    assert held.version == released

    # A daemon listening for announcements stops cleanly (its HTTP session closed).
    for tier in (c, b):
        code, _ = tier.server.stop(30)
        assert code == 0 and "Unclosed" not in tier.server.log, tier.server.log
