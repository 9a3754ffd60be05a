import pytest

from updmirror.eset.trees import (
    TREES,
    channel_from_spread_control,
    index_for_request,
    mirrored_indexes,
    route,
    tree_from_user_agent,
)

EEA11 = "EEA Update (Windows; U; 64bit; BPC 11.0.2044.0; OS: 10.0.26100 SP 0.0 NT; TDB 0; CL 1.1.1)"
HOME16 = "ESS Update (Windows; U; 64bit; BPC 16.0.22.0; OS: 10.0.19045 SP 0.0 NT; TDB 29123)"


def test_index_paths_of_each_channel():
    assert TREES["ep11"].index_paths() == ("eset_upd/ep11/dll/update.ver",)
    assert TREES["ep11"].index_paths("pre-release") == ("eset_upd/ep11/pre/dll/update.ver",)
    assert TREES["ep11"].index_paths("deferred") == ("deferred/eset_upd/ep11/dll/update.ver",)
    assert TREES["v10"].index_paths() == ("eset_upd/v10/update.ver", "eset_upd/v10/dll/update.ver")
    assert TREES["v3"].index_paths() == ("eset_upd/update.ver",)
    assert TREES["ep6"].index_paths() == ("eset_upd/ep6.6/update.ver", "eset_upd/ep6.6/dll/update.ver")


def test_the_mirrored_indexes_are_trees_by_channels_in_the_configured_order():
    found = [tuple(i) for i in mirrored_indexes(["v10", "ep11"], ["regular", "deferred"])]
    assert found == [
        ("v10", "regular", "eset_upd/v10/update.ver", "update.ver"),
        ("v10", "regular", "eset_upd/v10/dll/update.ver", "dll/update.ver"),
        ("v10", "deferred", "deferred/eset_upd/v10/update.ver", "update.ver"),
        ("v10", "deferred", "deferred/eset_upd/v10/dll/update.ver", "dll/update.ver"),
        ("ep11", "regular", "eset_upd/ep11/dll/update.ver", "dll/update.ver"),
        ("ep11", "deferred", "deferred/eset_upd/ep11/dll/update.ver", "dll/update.ver"),
    ]
    # A generator of the channels is read once, not once per tree.
    assert len(list(mirrored_indexes(["v3", "ep11"], (c for c in ["regular", "pre-release"])))) == 4


@pytest.mark.parametrize("agent,tree", [
    (EEA11, "ep11"), (HOME16, "v16"),
    ("EES Update (Windows; BPC 10.1.2046.0)", "ep10"),
    ("ESFW Update (BPC 9.0.1)", "ep9"),
    ("Mozilla/5.0", None), (None, None), ("", None),
])
def test_user_agent_names_a_generation(agent, tree):
    assert tree_from_user_agent(agent) == tree


def test_routing_uses_aliases_and_the_nearest_published_tree():
    published = ["ep8", "ep11", "v12", "v16"]
    assert route(EEA11, published) == "ep11"
    assert route("EEA Update (BPC 7.3.2041.0)", published) == "ep8"         # alias
    assert route("EEA Update (BPC 12.0.100.0)", published) == "ep11"        # nearest below
    assert route("ESS Update (BPC 18.0.1.0)", published) == "v16"           # alias v18 -> v16
    assert route("ESS Update (BPC 14.0.1.0)", published) == "v12"           # nearest below
    assert route("ESS Update (BPC 5.0.1.0)", published) == "v12"            # nearest above
    assert route("curl/8.0", published, default="ep11") == "ep11"
    assert route("ESS Update (BPC 16.0.1.0)", ["ep11"], default="ep11") == "ep11"


def test_old_and_dll_requests_pick_the_matching_index():
    assert index_for_request(TREES["v10"], "/update.ver") == "eset_upd/v10/update.ver"
    assert index_for_request(TREES["v10"], "/dll/update.ver") == "eset_upd/v10/dll/update.ver"
    assert index_for_request(TREES["ep11"], "/update.ver") == "eset_upd/ep11/dll/update.ver"
    assert index_for_request(TREES["v3"], "/dll/update.ver") == "eset_upd/update.ver"


@pytest.mark.parametrize("header,channel", [
    (None, "regular"), ("", "regular"), ("domain=production", "regular"),
    ("domain=pre-release", "pre-release"), ("Domain = Deferred ", "deferred"),
    ("foo=1; domain=delayed", "deferred"), ("domain=beta", "regular"), ("pre-release", "regular"),
])
def test_spread_control_header_names_a_channel(header, channel):
    assert channel_from_spread_control(header) == channel
