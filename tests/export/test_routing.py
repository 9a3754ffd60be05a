"""The routing tables exported web servers spell: the same answers as the
integrated server's route(), for every generation a User-Agent can name."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from updmirror.eset.trees import AGENT_PATTERNS, TREES, channel_from_spread_control, index_for_request, route
from updmirror.export.routing import numbers_regex, routing

MAJOR_STRINGS = [str(n) for n in range(1000)] + [f"{n:02d}" for n in range(10)] + [f"{n:03d}" for n in range(100)]


def first_tree(r, agent: str | None) -> str:
    for rule in r.agent_rules:
        if agent and re.search(rule.pattern, agent, re.I):
            return rule.tree
    return r.default_tree


@given(st.sets(st.integers(0, 999), min_size=1))
def test_numbers_regex_matches_exactly_the_numbers_given(numbers):
    rx = re.compile(f"(?:{numbers_regex(sorted(numbers))})")
    for s in MAJOR_STRINGS:
        assert (rx.fullmatch(s) is not None) == (int(s) in numbers), s


def test_every_major_of_every_agent_pattern_routes_as_the_integrated_server_does():
    for trees, default in [(("ep11", "v16", "v5"), "ep11"), (("ep8", "ep11", "v12", "v16"), "v16"),
                           (("v3",), "v3"), (("ep13", "pcu"), "pcu")]:
        r = routing(trees, ("regular",), default)
        published = sorted(trees)
        for s in MAJOR_STRINGS + ["1234"]:
            for agent in (f"EEA Update (Windows; U; 64bit; BPC {s}.0.2044.0; OS: 10.0)",
                          f"ESS Update (Windows; BPC {s}.1.2.0)", f"EMSX  Update foo BPC  {s}.9",
                          f"Product Update BPC {s}"):
                assert first_tree(r, agent) == route(agent, published, default), (trees, agent)
        for agent in (None, "", "curl/8.5.0", "Mozilla/5.0"):
            assert first_tree(r, agent) == route(agent, published, default)


def test_each_rule_is_an_agent_pattern_with_its_majors_spelled_out():
    r = routing(("ep11", "v16"), ("regular",), None)
    patterns = {p.pattern for _prefix, p in AGENT_PATTERNS}
    for rule in r.agent_rules:
        assert re.sub(r"\(\?:[0-9?|\[\]-]+\)\\.", r"(\\d{1,3})\\.", rule.pattern) in patterns, rule.pattern
    assert {rule.tree for rule in r.agent_rules} == {"ep11", "v16"}


def test_channels_and_indexes():
    r = routing(("ep11", "v5"), ("regular", "deferred"), "ep11")
    for header in (None, "domain=deferred", "Domain = Delayed", "domain=pre-release", "x; domain=production"):
        want = channel_from_spread_control(header)
        want = want if want in ("regular", "deferred") else "regular"
        got = next((c.channel for c in r.channel_rules if header and re.search(c.pattern, header, re.I)),
                   "regular")
        assert got == want, header
    for (channel, tree, path), index in r.indexes.items():
        assert index == "/" + index_for_request(TREES[tree], path, channel)
    assert r.indexes[("deferred", "v5", "/dll/update.ver")] == "/deferred/eset_upd/v5/update.ver"
    assert len(r.indexes) == 2 * 2 * 2
