"""deploy/mirror.toml.example against config.SCHEMA: it shows every key, and
every default it shows is the one the mirror uses when the key is left out."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from updmirror import config

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "mirror.toml.example"


def _example() -> tuple[dict, dict[str, set[str]]]:
    """The example's values, and the keys it shows commented out, by table."""
    text = EXAMPLE.read_text("utf-8")
    commented: dict[str, set[str]] = {}
    table = None
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]\s*", line):
            table = m.group(1)
        elif table and (m := re.match(r"#\s*([a-z_]+)\s*=", line)):
            commented.setdefault(table, set()).add(m.group(1))
    return tomllib.loads(text), commented


def _read(table: str, values: dict):
    return lambda key: config._Table({table: values}, table, EXAMPLE).value(key)


def test_the_example_has_only_tables_and_keys_the_schema_knows():
    values, commented = _example()
    assert set(values) == set(config.SCHEMA)
    for table, keys in values.items():
        assert set(keys) <= set(config.SCHEMA[table]), table
        assert commented.get(table, set()) <= set(config.SCHEMA[table]), table


@pytest.mark.parametrize("table", sorted(config.SCHEMA))
def test_every_key_of_the_schema_is_shown_in_the_example(table):
    values, commented = _example()
    shown = set(values.get(table, {})) | commented.get(table, set())
    assert sorted(set(config.SCHEMA[table]) - shown) == []


@pytest.mark.parametrize("table", sorted(config.SCHEMA))
def test_every_default_the_example_shows_is_the_schema_default(table):
    values, _ = _example()
    given, default = _read(table, values[table]), _read(table, {})
    for key in values[table]:
        if config.SCHEMA[table][key].default is config.REQUIRED:
            continue      # shown with an example value: the file must set it
        assert given(key) == default(key), f"[{table}] {key}"


@pytest.mark.parametrize("table", sorted(config.SCHEMA))
def test_a_key_shown_commented_out_has_no_default_and_one_shown_set_has_one(table):
    values, commented = _example()
    for key in commented.get(table, set()) - set(values[table]):
        assert config.SCHEMA[table][key].default is None, f"[{table}] {key} has a default: show it"
    for key in values[table]:
        assert config.SCHEMA[table][key].default is not None, f"[{table}] {key}: no default to show"


def test_the_example_is_a_valid_configuration_once_its_paths_exist(tmp_path):
    raw, _ = _example()
    raw["mirror"]["root"] = str(tmp_path / "store")
    cfg = config.parse(raw, tmp_path / "mirror.toml")
    assert cfg.upstream.parallel == config.SCHEMA["upstream"]["parallel"].default
    assert cfg.mirror.max_file_size == config.DEFAULT_MAX_FILE_SIZE


def test_the_defaults_come_from_the_dataclasses_each_room_reads():
    assert config.SCHEMA["upstream"]["parallel"].default == config.UpstreamConfig.__dataclass_fields__[
        "parallel"].default
    assert config.SCHEMA["mirror"]["trees"].default == list(config.MirrorConfig.trees)
    assert config.SCHEMA["upstream"]["url"].default is config.REQUIRED
    assert config.SCHEMA["mirror"]["root"].default is config.REQUIRED
