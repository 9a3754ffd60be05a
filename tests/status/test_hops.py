"""The chain of hops, read as freshness: age against the vendor, each hop's lag, a stale upper."""

from updmirror.status.hops import chain_facts, chain_reason

HOUR = 3600.0
NOW = 1_800_000_000.0
PATH = "eset_upd/ep11/dll/update.ver"


def entry(*synced: float, version: int = 7) -> dict:
    names = ["A", "B", "C"][:len(synced)]
    return {"path": PATH, "versionid": version, "vendor_date": NOW - 30 * HOUR,
            "hops": [{"name": n, "synced_at": t, "published_at": t} for n, t in zip(names, synced, strict=True)]}


def fmt(seconds):
    return f"{seconds / HOUR:g} h"


def test_age_against_the_vendor_is_the_sum_of_the_lags_and_the_own_age():
    facts = chain_facts(entry(NOW - 3 * HOUR, NOW - 2.5 * HOUR, NOW - HOUR), [], NOW, 2 * HOUR)
    assert [h["lag_seconds"] for h in facts["hops"]] == [0.0, 0.5 * HOUR, 1.5 * HOUR]
    assert facts["age_vs_vendor_seconds"] == 3 * HOUR
    assert facts["age_vs_vendor_seconds"] == facts["hops"][-1]["age_seconds"] + sum(
        h["lag_seconds"] for h in facts["hops"])
    assert facts["vendor_date"] == NOW - 30 * HOUR


def test_an_upper_mirror_whose_data_was_old_when_we_synced_is_stale():
    facts = chain_facts(entry(NOW - 5 * HOUR, NOW - 4 * HOUR, NOW - 60), [], NOW, 2 * HOUR)
    assert facts["upper"]["name"] == "B" and facts["upper_stale"]
    reason = chain_reason(facts, 2 * HOUR, fmt, lambda t: "then")
    assert reason.startswith("its upper mirror B is stale")
    assert "old against the vendor" in reason


def test_a_fresh_chain_gives_no_reason():
    facts = chain_facts(entry(NOW - 300, NOW - 200, NOW - 100), [], NOW, 2 * HOUR)
    assert not facts["upper_stale"] and not facts["vendor_stale"]
    assert chain_reason(facts, 2 * HOUR, fmt, str) is None


def test_a_newer_run_record_refreshes_the_chain_of_the_same_version():
    old = entry(NOW - 10 * HOUR, NOW - 9 * HOUR)
    run = {"ok": True, "indexes": [{"path": PATH, "versionid": 7,
                                    "hops": [{"name": "A", "synced_at": NOW - 120},
                                             {"name": "B", "synced_at": NOW - 60}]}]}
    other_version = {"ok": True, "indexes": [dict(run["indexes"][0], versionid=8)]}
    assert chain_facts(old, [run], NOW, 2 * HOUR)["age_vs_vendor_seconds"] == 120
    assert chain_facts(old, [other_version], NOW, 2 * HOUR)["age_vs_vendor_seconds"] == 10 * HOUR
    assert chain_facts(old, [dict(run, ok=False)], NOW, 2 * HOUR)["age_vs_vendor_seconds"] == 10 * HOUR


def test_an_index_without_a_chain_has_no_age_against_the_vendor():
    facts = chain_facts({"path": PATH, "versionid": 1}, [], NOW, 2 * HOUR)
    assert facts["hops"] == [] and facts["age_vs_vendor_seconds"] is None
    assert chain_reason(facts, 2 * HOUR, fmt, str) is None
