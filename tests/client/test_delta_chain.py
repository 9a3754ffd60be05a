"""The delta-chain rule: which files a client needs, from what it holds and what the index offers."""

from __future__ import annotations

from pathlib import Path

import pytest

from updmirror.client import FULL_BASE, MAX_DELTAS, Held, module_key, plan_update
from updmirror.eset.modules import Module, Selection, modules, select
from updmirror.eset.updatever import UpdateVer

REAL_INDEX = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "vendor-real" / "update.ver"


def mod(section: str, build: int, base: int = FULL_BASE, size: int | None = 100, *, type: str = "perseus",
        level: int | None = None, continuous: bool = False, language: int | None = None,
        path: str | None = None) -> Module:
    if level is None and not continuous:
        level = 0 if base == FULL_BASE else 1
    path = path or f"/p/mod_{type}_{build}_{base}/{section.lower()}.nup"
    return Module(section=section, type=type, level=level, continuous=continuous, version=None,
                  versionid=build, build=build, base=base, platform="x64", language=language,
                  file=path, path=path, url="http://m" + path, size=size)


def held(*ms: Module) -> list[Held]:
    return [Held.of(m) for m in ms]


def sections(plan) -> list[str]:
    return [m.section for m in plan.download]


@pytest.fixture(scope="module")
def real_x86() -> list[Module]:
    index = UpdateVer.parse(REAL_INDEX.read_bytes(), str(REAL_INDEX))
    return select(modules(index, "http://mirror/update.ver"), Selection(platforms=("x86",)))


def line(mods: list[Module], prefix: str) -> list[Module]:
    return [m for m in mods if m.section.rstrip("0123456789") == prefix]


# -- the real index ----------------------------------------------------------------

def test_a_new_client_takes_each_full_module_and_the_deltas_chained_on_it(real_x86):
    plan = plan_update(real_x86, [])
    got = set(sections(plan))
    assert {"HIPS0", "HIPS1", "HIPS2"} <= got               # 1739 -> 1741 -> 1753
    assert {"EPFW0", "EPFW1"} <= got and "EPFW2" not in got  # EPFW2 starts from 1524: stale
    assert "TRANSLATOR0" in got and not {"TRANSLATOR1", "TRANSLATOR2"} & got   # the full is newer
    assert "ADVHEUR0" in got and not {"ADVHEUR1", "ADVHEUR2"} & got
    assert {"ENGINE0", "ENGINE1", "ENGINE2"} <= got          # ENGINE2 has no size= and is still needed
    assert not plan.unreachable and not plan.keep and not plan.drop
    # Every line ends at the highest build the index lets a client reach.
    hips = next(lp for lp in plan.lines if lp.line[0] == "hips")
    assert hips.build == 1753


def test_a_client_one_delta_behind_downloads_only_the_next_delta(real_x86):
    hips = line(real_x86, "HIPS")
    plan = plan_update(hips, held(hips[0], hips[1]))         # at 1741
    assert sections(plan) == ["HIPS2"]
    assert [h.section for h in plan.keep] == ["HIPS0", "HIPS1"]


def test_a_client_on_a_build_no_delta_starts_from_restarts_from_its_full_module(real_x86):
    hips = line(real_x86, "HIPS")
    old_delta = mod("HIPS1", 1740, base=1739, type="hips")
    plan = plan_update(hips, held(hips[0], old_delta))
    assert sections(plan) == ["HIPS1", "HIPS2"]
    assert [h.build for h in plan.drop] == [1740] and [h.section for h in plan.keep] == ["HIPS0"]


def test_a_current_client_downloads_nothing(real_x86):
    first = plan_update(real_x86, [])
    again = plan_update(real_x86, first.installed())
    assert not again.changes and again.download == ()
    assert set(again.keep) == set(first.installed())


# -- shapes of the simulated vendor and others ---------------------------------------

def test_simulated_levels_one_and_two_both_end_at_the_newest_build():
    full, l1, l2 = mod("P0", 100), mod("P1", 110, base=100, size=30), mod("P2", 110, base=105, size=5, level=2)
    at_previous = held(full, mod("P1", 105, base=100))
    assert sections(plan_update([full, l1, l2], at_previous)) == ["P2"]
    assert sections(plan_update([full, l1, l2], held(full))) == ["P1"]
    assert sections(plan_update([full, l1, l2], [])) == ["P0", "P1"]
    old_full = held(mod("P0", 80), mod("P1", 90, base=80))
    plan = plan_update([full, l1, l2], old_full)
    assert sections(plan) == ["P0", "P1"] and len(plan.drop) == 2


def test_the_fewest_bytes_win_when_two_chains_reach_the_same_build():
    full = mod("P0", 100, size=1000)
    big_delta, small_1, small_2 = (mod("P1", 120, base=100, size=400), mod("CONTINUOUS_P1", 110, base=100,
                                   size=50, continuous=True), mod("CONTINUOUS_P2", 120, base=110, size=50,
                                   continuous=True))
    plan = plan_update([full, big_delta, small_1, small_2], held(full))
    assert sections(plan) == ["CONTINUOUS_P1", "CONTINUOUS_P2"]
    assert plan.bytes == 100


def test_a_delta_without_a_size_counts_as_large_as_the_full_module():
    full = mod("P0", 100, size=1000)
    unknown = mod("P1", 120, base=100, size=None)
    two_known = [mod("CONTINUOUS_P1", 110, base=100, size=400, continuous=True),
                 mod("CONTINUOUS_P2", 120, base=110, size=400, continuous=True)]
    assert sections(plan_update([full, unknown, *two_known], held(full))) == ["CONTINUOUS_P1", "CONTINUOUS_P2"]
    assert sections(plan_update([full, unknown], held(full))) == ["P1"]


def test_a_chain_is_never_longer_than_the_cap_a_full_module_replaces_it():
    full = mod("P0", 100, size=1000)
    chain = [mod(f"CONTINUOUS_P{i}", 100 + i, base=99 + i, size=1, continuous=True)
             for i in range(1, MAX_DELTAS + 1)]
    at_cap = held(full, *chain)
    newest = mod("P0", 200, size=1000)
    step = mod(f"CONTINUOUS_P{MAX_DELTAS + 1}", 200, base=100 + MAX_DELTAS, size=1, continuous=True)
    plan = plan_update([newest, step], at_cap)
    assert sections(plan) == ["P0"] and plan.lines[0].build == 200


def test_a_line_never_goes_back_to_a_lower_build():
    full, l1 = mod("P0", 100), mod("P1", 110, base=100)
    ahead = held(full, l1, mod("P2", 120, base=110, level=2))
    plan = plan_update([full, l1], ahead)
    assert not plan.download and plan.lines[0].build == 120 and not plan.drop


def test_a_line_with_only_deltas_from_builds_the_client_lacks_is_unreachable():
    plan = plan_update([mod("P1", 110, base=100)], [])
    assert plan.unreachable == (("perseus", "x64", None),) and not plan.download


def test_a_line_the_index_no_longer_lists_is_dropped():
    old = held(mod("O0", 5, type="oldmodule"))
    plan = plan_update([mod("P0", 100)], old)
    assert [h.type for h in plan.drop] == ["oldmodule"] and sections(plan) == ["P0"]


def test_languages_are_lines_of_their_own():
    en, ru = mod("T_1033_0", 10, type="translation", language=1033), mod("T_1049_0", 10, type="translation",
                                                                         language=1049)
    assert sorted(sections(plan_update([en, ru], []))) == ["T_1033_0", "T_1049_0"]
    assert sections(plan_update([en, ru], held(en))) == ["T_1049_0"]


def test_a_module_is_the_same_file_whatever_a_source_calls_it():
    vendor_layout = mod("P1", 110, base=100, path="/ep11-rel/mod_002_perseus_110/em002_64_l1.dll.nup")
    product_mirror = mod("P1", 110, base=100, path="/dll/nod1F2A.nup")
    assert module_key(vendor_layout) == module_key(product_mirror) == "perseus.l1.100-110.nup"
    plan = plan_update([mod("P0", 100), product_mirror], held(mod("P0", 100), vendor_layout))
    assert not plan.changes


def test_a_section_without_a_build_is_fetched_once_and_kept():
    loose = Module(section="SETUPX", type="setupx", level=None, continuous=False, version=None,
                   versionid=None, build=None, base=None, platform=None, language=None,
                   file="/s.nup", path="/s.nup", url="http://m/s.nup", size=10)
    assert sections(plan_update([loose], [])) == ["SETUPX"]
    assert not plan_update([loose], held(loose)).changes


def test_module_keys_are_safe_file_names_whatever_the_index_says():
    hostile = mod("P0", 1, type="../../etc/passwd")
    key = module_key(hostile)
    assert "/" not in key and ".." not in key and not key.startswith(".")
