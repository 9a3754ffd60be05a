import json
import time
from html.parser import HTMLParser

import pytest
from prometheus_client.parser import text_string_to_metric_families

from statuskit import HOUR, PASSWORD, open_mirror, write_config
from updmirror import config
from updmirror.status import (
    collect_status,
    render_metrics,
    render_status_html,
    render_status_json,
)
from updmirror.store.records import append_run
from updmirror.store.snapshots import Store

TREES = ("ep11", "v10")
# ep11 has one index, v10 two: "dll/update.ver" and the older "update.ver".
INDEXES = [
    {"tree": "ep11", "channel": "regular", "path": "eset_upd/ep11/dll/update.ver", "versionid": 31234,
     "files": 120, "bytes": 123_456_789},
    {"tree": "v10", "channel": "regular", "path": "eset_upd/v10/update.ver", "versionid": 29000,
     "files": 80, "bytes": 9_876_543},
    {"tree": "v10", "channel": "regular", "path": "eset_upd/v10/dll/update.ver", "versionid": 29001,
     "files": 81, "bytes": 9_876_544},
]


def publish(store: Store, created: float, indexes=INDEXES, upstream_date: float | None = None):
    builder = store.new_snapshot()
    entries = []
    for entry in indexes:
        builder.write(entry["path"], b"[HOSTS]\r\n")
        entries.append(dict(entry, upstream_date=upstream_date,
                            upstream_url=f"http://127.0.0.1:9/{entry['path']}"))
    return builder.publish({"indexes": entries, "created": created,
                            "files": sum(e["files"] for e in indexes),
                            "bytes": sum(e["bytes"] for e in indexes)})


def record(store: Store, finished: float, ok: bool = True, message: str = "mirror is current",
           changed: bool = False, versions: dict | None = None, errors=()):
    indexes = [] if not ok else [
        {"tree": e["tree"], "channel": e["channel"], "path": e["path"], "changed": changed,
         "versionid": (versions or {}).get(e["path"], e["versionid"]), "files": e["files"],
         "bytes": e["bytes"], "upstream_url": f"http://127.0.0.1:9/{e['path']}"} for e in INDEXES]
    append_run(store.state, {"started": finished - 30, "finished": finished, "ok": ok,
                             "message": message, "indexes": indexes, "files_fetched": 7 if changed else 0,
                             "bytes_fetched": 7000 if changed else 0, "errors": list(errors)})


@pytest.fixture
def mirror(tmp_path):
    return open_mirror(tmp_path, TREES)


def test_a_recent_successful_sync_makes_the_mirror_fresh(mirror):
    cfg, store, now = mirror
    snap = publish(store, created=now - 600, upstream_date=now - 5000)
    record(store, now - 600, changed=True)
    facts = collect_status(store, cfg, {}, now=now)
    assert facts["state"] == "fresh" and facts["headline"] == "fresh" and facts["problems"] == []
    assert facts["snapshot"]["id"] == snap.id
    assert facts["snapshot"]["files"] == 281
    by_path = {i["path"]: i for i in facts["indexes"]}
    assert list(by_path) == [e["path"] for e in INDEXES]
    ep11 = by_path["eset_upd/ep11/dll/update.ver"]
    assert (ep11["tree"], ep11["channel"], ep11["version"], ep11["files"], ep11["bytes"]) == \
        ("ep11", "regular", 31234, 120, 123_456_789)
    assert ep11["age_seconds"] == pytest.approx(600)
    assert ep11["upstream_age_seconds"] == pytest.approx(5000)
    assert ep11["last_sync"] == {"time": pytest.approx(now - 600), "ok": True}
    assert not any(i["stale"] for i in facts["indexes"])


def test_no_successful_sync_within_two_intervals_makes_it_stale(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 3 * HOUR)
    record(store, now - 3 * HOUR, changed=True)
    facts = collect_status(store, cfg, {}, now=now)
    assert facts["state"] == "stale" and facts["headline"] == "STALE"
    assert all(i["stale"] for i in facts["indexes"])
    assert any("eset_upd/ep11/dll/update.ver" in p and "3 h" in p for p in facts["problems"])


def test_just_inside_two_intervals_is_still_fresh(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 2 * HOUR + 60)
    record(store, now - 2 * HOUR + 60, changed=True)
    assert collect_status(store, cfg, {}, now=now)["state"] == "fresh"


def test_a_later_run_that_found_upstream_unchanged_confirms_the_snapshot(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 30 * HOUR)
    record(store, now - 30 * HOUR, changed=True)
    record(store, now - 300, changed=False)
    facts = collect_status(store, cfg, {}, now=now)
    assert facts["state"] == "fresh"
    assert facts["indexes"][0]["age_seconds"] == pytest.approx(300)


def test_a_run_that_saw_another_version_confirms_nothing(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 30 * HOUR)
    record(store, now - 300, versions={"eset_upd/ep11/dll/update.ver": 99999})
    facts = collect_status(store, cfg, {}, now=now)
    stale = [i["path"] for i in facts["indexes"] if i["stale"]]
    assert stale == ["eset_upd/ep11/dll/update.ver"]
    assert facts["state"] == "stale"


def test_a_failed_last_sync_is_reported_without_credentials(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 600)
    record(store, now - 600, changed=True)
    leak = f"http://EAV-0123:{PASSWORD}@127.0.0.1:9/eset_upd/ep11/dll/update.ver"
    record(store, now - 60, ok=False, message=f"{leak}: connection refused; password was {PASSWORD}",
           errors=[f"{leak}: connection refused"])
    facts = collect_status(store, cfg, {}, now=now)
    assert facts["state"] == "failed" and facts["headline"] == "LAST SYNC FAILED"
    assert facts["last_sync"]["ok"] is False
    assert "connection refused" in facts["problems"][0]
    assert all(i["stale"] and i["last_sync"]["ok"] is False for i in facts["indexes"])
    assert facts["last_success"] == pytest.approx(now - 600)
    for rendering in (render_status_json(store, cfg, {}, now), render_status_html(store, cfg, {}, now),
                      render_metrics(store, cfg, {}, now)):
        assert PASSWORD.encode() not in rendering and b"EAV-0123" not in rendering


def test_an_empty_store_is_stale_and_says_what_to_do(mirror):
    cfg, store, now = mirror
    facts = collect_status(store, cfg, {}, now=now)
    assert facts["state"] == "stale" and facts["snapshot"] is None and facts["last_sync"] is None
    assert any("updmirror sync" in p for p in facts["problems"])
    assert all(not i["in_snapshot"] for i in facts["indexes"])


def test_a_configured_index_missing_from_the_snapshot_is_stale(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 60, indexes=INDEXES[:1])
    record(store, now - 60, changed=True)
    facts = collect_status(store, cfg, {}, now=now)
    assert facts["state"] == "stale"
    assert [i["path"] for i in facts["indexes"] if i["stale"]] == [e["path"] for e in INDEXES[1:]]


def test_server_counters_are_taken_as_given_and_missing_ones_are_zero(mirror):
    cfg, store, now = mirror
    server = collect_status(store, cfg, {}, now=now)["server"]
    assert server["requests_total"] == 0 and server["uptime_seconds"] is None
    counters = {"connections_open": 3, "connections_total": 40, "requests_total": 900, "bytes_sent": 12345,
                "responses": {"2xx": 880, "4xx": 20}, "clients": {"10.0.0.1", "10.0.0.2"},
                "started": now - 100, "unknown_key": "ignored", "announce_waiting": 7}
    server = collect_status(store, cfg, counters, now=now)["server"]
    assert server == {"connections_open": 3, "announce_waiting": 7, "connections_total": 40, "requests_total": 900,
                      "bytes_sent": 12345, "responses": {"2xx": 880, "4xx": 20}, "clients": 2,
                      "started": now - 100, "uptime_seconds": pytest.approx(100)}


def test_status_json_says_what_the_store_and_the_records_hold(mirror):
    # Against the values set up here, not against collect_status (which the
    # JSON is rendered from, so comparing the two could not fail).
    cfg, store, now = mirror
    snap = publish(store, created=now - 600, upstream_date=now - 5000)
    record(store, now - 300, changed=True)
    data = json.loads(render_status_json(store, cfg, {"requests_total": 5, "started": now - 100}, now))
    assert data["state"] == "fresh" and data["headline"] == "fresh" and data["problems"] == []
    assert data["generated"] == pytest.approx(now)
    assert data["upstream"] == "http://127.0.0.1:9/"
    assert data["interval"] == HOUR and data["stale_after"] == 2 * HOUR
    assert data["snapshot"] == {"id": snap.id, "created": pytest.approx(now - 600),
                                "files": 120 + 80 + 81, "bytes": 123_456_789 + 9_876_543 + 9_876_544}
    shown = [(i["tree"], i["channel"], i["path"], i["version"], i["files"], i["bytes"])
             for i in data["indexes"]]
    assert shown == [("ep11", "regular", "eset_upd/ep11/dll/update.ver", 31234, 120, 123_456_789),
                     ("v10", "regular", "eset_upd/v10/update.ver", 29000, 80, 9_876_543),
                     ("v10", "regular", "eset_upd/v10/dll/update.ver", 29001, 81, 9_876_544)]
    for i in data["indexes"]:
        assert i["age_seconds"] == pytest.approx(300, abs=1)           # confirmed by the run 300 s ago
        assert i["upstream_age_seconds"] == pytest.approx(5000, abs=1)
        assert i["stale"] is False and i["reason"] is None and i["in_snapshot"] is True
        assert i["upstream_url"] == f"http://127.0.0.1:9/{i['path']}"
    last = data["last_sync"]
    assert last["ok"] is True and last["message"] == "mirror is current"
    assert last["started"] == pytest.approx(now - 330) and last["finished"] == pytest.approx(now - 300)
    assert (last["files_fetched"], last["bytes_fetched"], last["errors"]) == (7, 7000, [])
    assert data["last_success"] == pytest.approx(now - 300) and len(data["runs"]) == 1
    assert data["server"]["requests_total"] == 5
    assert data["server"]["uptime_seconds"] == pytest.approx(100, abs=1)
    assert data["unchecked"] == []


def samples(text: bytes) -> dict:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_metrics_parse_as_prometheus_text(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 600, upstream_date=now - 5000)
    record(store, now - 600, changed=True)
    counters = {"requests_total": 900, "bytes_sent": 12345, "connections_open": 3,
                "responses": {"2xx": 880, "4xx": 20}, "clients": 7, "started": now - 100}
    found = samples(render_metrics(store, cfg, counters, now))
    ep11 = (("channel", "regular"), ("path", "eset_upd/ep11/dll/update.ver"), ("tree", "ep11"))
    assert found[("updmirror_index_version", ep11)] == 31234
    assert found[("updmirror_index_age_seconds", ep11)] == pytest.approx(600)
    assert found[("updmirror_index_stale", ep11)] == 0
    assert found[("updmirror_index_files", ep11)] == 120
    assert found[("updmirror_last_sync_success", ())] == 1
    assert found[("updmirror_last_sync_timestamp_seconds", ())] == pytest.approx(now - 600)
    assert found[("updmirror_stale", ())] == 0
    assert found[("updmirror_snapshot_files", ())] == 281
    assert found[("updmirror_snapshot_bytes", ())] == sum(e["bytes"] for e in INDEXES)
    assert found[("updmirror_http_requests_total", ())] == 900
    assert found[("updmirror_http_bytes_sent_total", ())] == 12345
    assert found[("updmirror_http_responses_total", (("code", "4xx"),))] == 20
    assert found[("updmirror_http_connections_open", ())] == 3
    assert found[("updmirror_http_clients", ())] == 7


def test_metrics_of_a_failed_mirror(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 600)
    record(store, now - 60, ok=False, message="boom")
    found = samples(render_metrics(store, cfg, {}, now))
    assert found[("updmirror_last_sync_success", ())] == 0
    assert found[("updmirror_stale", ())] == 1


def test_the_page_escapes_what_it_shows_and_loads_nothing_from_elsewhere(mirror):
    cfg, store, now = mirror
    publish(store, created=now - 600)
    record(store, now - 60, ok=False, message='<script>alert("x")</script> & <img src=x>')
    page = render_status_html(store, cfg, {}, now).decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x&gt;" in page
    tags = Tags()
    tags.feed(page)
    assert not {"script", "img", "link", "iframe", "object"} & {t for t, _ in tags.found}
    assert not [a for _, attrs in tags.found for a, _ in attrs if a == "src"]
    assert "@import" not in page and "url(" not in page
    assert ("meta", [("http-equiv", "refresh"), ("content", "60")]) in tags.found
    assert "LAST SYNC FAILED" in page and 'class="state failed"' in page


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


def test_a_newly_published_snapshot_shows_at_once(mirror):
    cfg, store, now = mirror
    first = publish(store, created=now - 600)
    record(store, now - 600, changed=True)
    assert collect_status(store, cfg, {}, now=now)["snapshot"]["id"] == first.id
    newer = [dict(e, versionid=e["versionid"] + 1, file_list=[["/a.nup", 1]]) for e in INDEXES]
    second = publish(store, created=now - 10, indexes=newer)
    facts = collect_status(store, cfg, {}, now=now)
    assert facts["snapshot"]["id"] == second.id != first.id
    assert facts["indexes"][0]["version"] == INDEXES[0]["versionid"] + 1
    assert "file_list" not in json.dumps(facts)


def test_a_proxy_password_is_kept_out_too(tmp_path):
    text = write_config(tmp_path, TREES).read_text().replace(
        "[mirror]", 'proxy = "http://puser:Pr0xyPass@127.0.0.1:3128"\n\n[mirror]')
    (tmp_path / "mirror.toml").write_text(text)
    cfg = config.load(tmp_path / "mirror.toml")
    store = Store(cfg.mirror.root)
    record(store, time.time() - 60, ok=False, message="proxy 127.0.0.1:3128 refused Pr0xyPass")
    assert b"Pr0xyPass" not in render_status_json(store, cfg, {})
