"""The configuration reader: every error names the file, the table and the key."""

import pytest

from updmirror import config
from updmirror.errors import ConfigError


def load(tmp_path, upstream: str = "", mirror: str = "", http: str = ""):
    path = tmp_path / "mirror.toml"
    path.write_text(f'[upstream]\nurl = "http://127.0.0.1:9/"\n{upstream}\n'
                    f'[mirror]\nroot = "{tmp_path / "store"}"\n{mirror}\n[http]\n{http}\n')
    return config.load(path)


@pytest.mark.parametrize("table, line", [
    ("http", "max_connections = 2.5"), ("http", "workers = 2.0"), ("upstream", "parallel = 4.5"),
    ("upstream", "retries = 1.5"), ("upstream", "min_speed = 1024.5"),
])
def test_a_fraction_where_a_whole_number_is_meant_is_refused(tmp_path, table, line):
    key = line.split(" ")[0]
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **{table: line})
    message = str(info.value)
    assert f"[{table}] {key}: " in message and "whole number" in message and line.split(" = ")[1] in message


@pytest.mark.parametrize("table, line, says", [
    ("http", "max_connections = 0", "must be at least 1"),
    ("upstream", "parallel = 65", "must be 1 to 64"),
    ("upstream", "stall_timeout = 0", "must be at least 0.1"),
    ("mirror", "max_drop = 1.5", "must be 0.0 to 1.0"),
])
def test_a_value_out_of_bounds_says_the_bounds_it_has(tmp_path, table, line, says):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **{table: line})
    assert says in str(info.value) and "None" not in str(info.value)


def test_whole_numbers_are_read_as_integers(tmp_path):
    cfg = load(tmp_path, upstream="parallel = 3\nmin_speed = 0", http="max_connections = 7")
    assert (cfg.upstream.parallel, cfg.upstream.min_speed, cfg.http.max_connections) == (3, 0, 7)
    assert all(type(v) is int for v in (cfg.upstream.parallel, cfg.http.max_connections))


def test_the_mirror_name_in_the_chain_defaults_to_the_host_name(tmp_path):
    import socket

    assert load(tmp_path).mirror.name == config.default_mirror_name()
    assert config.default_mirror_name().split(".")[0] in socket.gethostname()
    assert load(tmp_path, mirror='name = "branch-1.example"').mirror.name == "branch-1.example"


@pytest.mark.parametrize("name", ["http://user:pw@up/", "two words", "", "x" * 65])
def test_a_mirror_name_that_could_carry_an_url_or_account_is_refused(tmp_path, name):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, mirror=f'name = "{name}"')
    assert "[mirror] name: " in str(info.value)
