"""Freshness at every hop: how old a mirror's data is against the vendor.

Each index of a snapshot records its chain of mirrors (`hops`, the
vendor-facing mirror first, this mirror last), each with `synced_at`: when
that mirror last confirmed the index against its own upstream, as far as
the mirror below knew when it synced. So:

- the age against the vendor is `now - hops[0].synced_at`: how long ago the
  vendor was last seen to serve this data, through the chain;
- a hop's lag is `hops[i].synced_at - hops[i-1].synced_at`: how old the upper
  mirror's confirmation was when hop i synced from it (0 for the mirror
  that asks the vendor itself); the lags add up, with this mirror's own
  age, to the age against the vendor;
- the upper mirror is stale when its data was older against the vendor,
  when this mirror last synced from it, than the freshness limit.

A sync that finds nothing new publishes no snapshot but confirms the chain
anew; its run record holds the hops it saw, and the newest one wins.
"""

from __future__ import annotations

from typing import Any

from updmirror.store.tiers import confirmed_hops


def chain_facts(entry: dict, runs: list[dict], now: float, stale_after: float) -> dict:
    """The chain of index `entry` (a snapshot manifest entry), per hop and
    against the vendor; `runs` newest first."""
    hops = _newest(entry.get("hops"), confirmed_hops(runs, entry.get("path"), entry.get("versionid")))
    facts: dict[str, Any] = {
        "hops": [], "vendor_date": number(entry.get("vendor_date")), "vendor_confirmed": None,
        "age_vs_vendor_seconds": None, "upper": None, "upper_stale": False, "vendor_stale": False,
    }
    if not hops:
        return facts
    previous = None
    for hop in hops:
        synced = number(hop.get("synced_at"))
        lag = 0.0 if previous is None else (None if synced is None or previous is None
                                            else max(0.0, synced - previous))
        facts["hops"].append({"name": str(hop.get("name") or "?"), "synced_at": synced,
                              "published_at": number(hop.get("published_at")), "lag_seconds": lag,
                              "age_seconds": None if synced is None else max(0.0, now - synced)})
        previous = synced
    first, last = facts["hops"][0], facts["hops"][-1]
    if first["synced_at"] is not None:
        facts["vendor_confirmed"] = first["synced_at"]
        facts["age_vs_vendor_seconds"] = max(0.0, now - first["synced_at"])
        facts["vendor_stale"] = facts["age_vs_vendor_seconds"] > stale_after
    if len(facts["hops"]) >= 2:
        upper = facts["hops"][-2]
        behind = (None if first["synced_at"] is None or last["synced_at"] is None
                  else max(0.0, last["synced_at"] - first["synced_at"]))
        facts["upper"] = {"name": upper["name"], "age_vs_vendor_at_sync_seconds": behind,
                          "synced_at": last["synced_at"]}
        facts["upper_stale"] = behind is not None and behind > stale_after
    return facts


def chain_reason(facts: dict, stale_after: float, duration, utc) -> str | None:
    """Why the chain makes an index stale, plainly; None when it does not."""
    upper = facts.get("upper")
    if facts.get("upper_stale") and upper:
        return (f"its upper mirror {upper['name']} is stale: its data was "
                f"{duration(upper['age_vs_vendor_at_sync_seconds'])} old against the vendor when this "
                f"mirror last synced from it ({utc(upper['synced_at'])}; limit {duration(stale_after)})")
    if facts.get("vendor_stale"):
        return (f"its data is {duration(facts['age_vs_vendor_seconds'])} old against the vendor, through "
                f"{len(facts['hops'])} mirror(s) (limit {duration(stale_after)})")
    return None


def _newest(*chains) -> list[dict]:
    best: list[dict] = []
    for hops in chains:
        if not isinstance(hops, list) or not hops or not all(isinstance(h, dict) for h in hops):
            continue
        if not best or (number(hops[-1].get("synced_at")) or 0) > (number(best[-1].get("synced_at")) or 0):
            best = hops
    return best


def number(value: Any) -> float | None:
    """A time or count from a record or manifest as a float; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
