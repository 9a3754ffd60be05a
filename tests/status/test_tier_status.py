"""Freshness at every hop: C, at the end of vendor -> A -> B -> C, shows the age
of its data against the vendor and each hop's lag, in /status.json, /metrics
and `updmirror status`, and says so plainly when its upper mirror is stale.

Real mirrors on loopback (tierkit): each synced by `updmirror sync`, served
by its own `updmirror serve` with its own Basic credentials.
"""

from __future__ import annotations

import json
import re
import time

import pytest

import tierkit
from serverkit import updmirror_cli


@pytest.fixture
def chain(tier_chain):
    return tier_chain()


@pytest.fixture
def short_chain(tier_chain):
    """A chain whose lowest mirror counts data older than 2 x 3 s as stale."""
    return tier_chain(intervals={"C": "3s"})


def samples(metrics: str, name: str) -> list[tuple[dict, float]]:
    """(labels, value) of every sample of metric `name` in Prometheus text."""
    found = []
    for line in metrics.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if m:
            found.append((dict(re.findall(r'(\w+)="([^"]*)"', m.group(1))), float(m.group(2))))
    return found


def _index(facts: dict) -> dict:
    (index,) = [i for i in facts["indexes"] if i["path"] == tierkit.INDEX]
    return index


def test_c_shows_its_age_against_the_vendor_and_each_hops_lag(chain):
    reports = chain.sync_all()
    facts = json.loads(tierkit.get(chain["C"], "status.json"))
    index = _index(facts)
    assert facts["state"] == "fresh" and not index["stale"], facts["problems"]
    assert [h["name"] for h in index["hops"]] == ["A", "B", "C"]
    a_synced = index["hops"][0]["synced_at"]
    assert reports["A"]["started"] <= a_synced <= reports["A"]["finished"]
    # Against the vendor: since A last saw it, not since C synced.
    assert index["age_vs_vendor_seconds"] == pytest.approx(facts["generated"] - a_synced, abs=0.01)
    assert index["age_vs_vendor_seconds"] > index["hops"][-1]["age_seconds"]
    lags = [h["lag_seconds"] for h in index["hops"]]
    assert lags[0] == 0 and all(0 < lag < 60 for lag in lags[1:])
    assert lags[1] == pytest.approx(index["hops"][1]["synced_at"] - a_synced)
    assert index["upper"]["name"] == "B" and not index["upper_stale"]

    metrics = tierkit.get(chain["C"], "metrics").decode()
    ((labels, age),) = samples(metrics, "updmirror_tree_age_vs_vendor_seconds")
    assert labels["tree"] == "ep11" and age >= index["age_vs_vendor_seconds"]
    lag_samples = samples(metrics, "updmirror_hop_lag_seconds")
    assert [(lb["position"], lb["hop"]) for lb, _ in lag_samples] == [("0", "A"), ("1", "B"), ("2", "C")]
    assert [v for _, v in lag_samples] == pytest.approx(lags, abs=0.01)
    assert [v for _, v in samples(metrics, "updmirror_upper_mirror_stale")] == [0.0]

    done = updmirror_cli("status", "-c", str(chain["C"].config_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "against the vendor" in done.stdout
    assert re.search(r"A \(lag 0 s\) -> B \(lag \d+ s\) -> C \(lag \d+ s\)", done.stdout), done.stdout
    as_json = json.loads(updmirror_cli("status", "--json", "-c", str(chain["C"].config_path)).stdout)
    assert [h["name"] for h in _index(as_json)["hops"]] == ["A", "B", "C"]


def test_c_says_plainly_that_its_upper_mirror_is_stale(short_chain):
    c = short_chain["C"]
    short_chain.sync_all()
    time.sleep(7)            # A and B do not sync again: their data ages past C's limit of 6 s
    c.sync()                 # C itself is current: it just confirmed B's (old) data
    facts = json.loads(tierkit.get(c, "status.json"))
    index = _index(facts)
    assert index["hops"][-1]["age_seconds"] < 6
    assert index["upper_stale"] and index["stale"] and facts["state"] == "stale"
    assert index["reason"].startswith("its upper mirror B is stale: its data was ")
    assert any("its upper mirror B is stale" in p for p in facts["problems"])

    metrics = tierkit.get(c, "metrics").decode()
    assert [v for _, v in samples(metrics, "updmirror_upper_mirror_stale")] == [1.0]
    done = updmirror_cli("status", "-c", str(c.config_path))
    assert done.returncode == 1 and "its upper mirror B is stale" in done.stdout, done.stdout
