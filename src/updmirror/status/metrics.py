"""`/metrics`: the status facts in the Prometheus text format."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from updmirror.config import Config
from updmirror.store import Store

from .facts import FRESH, collect_status
from .hops import number

#: The text format generate_latest() writes (names escaped to underscores), which
#: the server has always announced; CONTENT_TYPE_LATEST now says version 1.0.0.
METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


def render_metrics(store: Store, cfg: Config, counters: dict, now: float | None = None) -> bytes:
    """Prometheus text format; a fresh registry per call, so nothing global
    is shared between worker processes or reloads."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FactsCollector(collect_status(store, cfg, counters, now)))
    return generate_latest(registry)


class _FactsCollector:
    def __init__(self, facts: dict):
        self.facts = facts

    def collect(self):
        f = self.facts
        labels = ["tree", "channel", "path"]
        per_index = {
            "version": GaugeMetricFamily("updmirror_index_version",
                                         "versionid of the served index", labels=labels),
            "age": GaugeMetricFamily("updmirror_index_age_seconds",
                                     "seconds since a successful sync confirmed the index current",
                                     labels=labels),
            "stale": GaugeMetricFamily("updmirror_index_stale", "1 when the index is stale", labels=labels),
            "files": GaugeMetricFamily("updmirror_index_files", "files the index lists", labels=labels),
            "bytes": GaugeMetricFamily("updmirror_index_bytes", "bytes of the files the index lists",
                                       labels=labels),
            "upstream": GaugeMetricFamily("updmirror_index_upstream_timestamp_seconds",
                                          "Last-Modified of the upstream index", labels=labels),
        }
        for i in f["indexes"]:
            values = [str(i["tree"]), str(i["channel"]), str(i["path"])]
            per_index["stale"].add_metric(values, 1.0 if i["stale"] else 0.0)
            for key, field in (("version", "version"), ("age", "age_seconds"), ("files", "files"),
                               ("bytes", "bytes"), ("upstream", "upstream_date")):
                value = number(i.get(field))
                if value is None and field == "version" and str(i.get(field) or "").isdigit():
                    value = float(i[field])
                if value is not None:
                    per_index[key].add_metric(values, value)
        yield from per_index.values()
        yield from _chain_metrics(f["indexes"], labels)

        yield GaugeMetricFamily("updmirror_files_not_signature_checked",
                                "served files whose only signatures are by legacy keys the mirror cannot check",
                                value=float(len(f["unchecked"])))
        yield GaugeMetricFamily("updmirror_stale", "1 when the mirror is stale or the last sync failed",
                                value=0.0 if f["state"] == FRESH else 1.0)
        last = f["last_sync"]
        if last is not None:
            yield GaugeMetricFamily("updmirror_last_sync_success", "1 when the last sync succeeded",
                                    value=1.0 if last["ok"] else 0.0)
            yield GaugeMetricFamily("updmirror_last_sync_timestamp_seconds", "when the last sync ended",
                                    value=last["finished"] or last["started"] or 0.0)
            yield GaugeMetricFamily("updmirror_last_sync_files_fetched", "files the last sync fetched",
                                    value=last["files_fetched"])
            yield GaugeMetricFamily("updmirror_last_sync_bytes_fetched", "bytes the last sync fetched",
                                    value=last["bytes_fetched"])
        if f["last_success"] is not None:
            yield GaugeMetricFamily("updmirror_last_successful_sync_timestamp_seconds",
                                    "when the last successful sync ended", value=f["last_success"])
        snap = f["snapshot"]
        if snap is not None:
            yield GaugeMetricFamily("updmirror_snapshot_files", "files in the current snapshot",
                                    value=snap["files"])
            yield GaugeMetricFamily("updmirror_snapshot_bytes", "bytes in the current snapshot",
                                    value=snap["bytes"])
            yield GaugeMetricFamily("updmirror_snapshot_created_timestamp_seconds",
                                    "when the current snapshot was published", value=snap["created"])

        s = f["server"]
        yield CounterMetricFamily("updmirror_http_requests", "HTTP requests answered",
                                  value=s["requests_total"])
        responses = CounterMetricFamily("updmirror_http_responses", "HTTP responses by status class",
                                        labels=["code"])
        for code, count in s["responses"].items():
            responses.add_metric([code], count)
        yield responses
        yield CounterMetricFamily("updmirror_http_bytes_sent", "bytes sent to clients", value=s["bytes_sent"])
        yield CounterMetricFamily("updmirror_http_connections", "connections accepted",
                                  value=s["connections_total"])
        yield GaugeMetricFamily("updmirror_http_connections_open", "connections open now",
                                value=s["connections_open"])
        yield GaugeMetricFamily("updmirror_http_clients", "distinct client addresses seen",
                                value=s["clients"])
        yield GaugeMetricFamily("updmirror_announce_waiting", "lower mirrors waiting now for this "
                                "mirror's next snapshot (GET /updmirror/announce)", value=s["announce_waiting"])
        if s["started"] is not None:
            yield GaugeMetricFamily("updmirror_start_time_seconds", "when the server started",
                                    value=s["started"])


def _chain_metrics(indexes: list[dict], labels: list[str]):
    """Freshness at every hop: against the vendor, per hop, and whether the upper mirror is stale."""
    vendor = GaugeMetricFamily("updmirror_tree_age_vs_vendor_seconds",
                               "seconds since the vendor-facing mirror of the chain last confirmed the index",
                               labels=labels)
    lag = GaugeMetricFamily("updmirror_hop_lag_seconds",
                            "how old the upper mirror's confirmation was when this hop synced from it "
                            "(position 0 asks the vendor)", labels=[*labels, "hop", "position"])
    upper = GaugeMetricFamily("updmirror_upper_mirror_stale",
                              "1 when the upper mirror's data was older against the vendor than the "
                              "freshness limit when this mirror last synced from it", labels=labels)
    for i in indexes:
        values = [str(i["tree"]), str(i["channel"]), str(i["path"])]
        if i.get("age_vs_vendor_seconds") is not None:
            vendor.add_metric(values, i["age_vs_vendor_seconds"])
        for position, hop in enumerate(i.get("hops") or []):
            if hop.get("lag_seconds") is not None:
                lag.add_metric([*values, hop["name"], str(position)], hop["lag_seconds"])
        if i.get("upper") is not None:
            upper.add_metric(values, 1.0 if i.get("upper_stale") else 0.0)
    yield from (vendor, lag, upper)
