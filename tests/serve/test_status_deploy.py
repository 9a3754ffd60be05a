"""deploy/: the example configuration and the systemd unit stay true to the code."""

import configparser
import dataclasses
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from updmirror import config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
EXAMPLE = DEPLOY / "mirror.toml.example"
UNIT = DEPLOY / "updmirror.service"
SECTIONS = {"upstream": config.UpstreamConfig, "mirror": config.MirrorConfig,
            "verify": config.VerifyConfig, "http": config.HttpConfig, "folder": config.FolderConfig}
# Keys of the file that are not a field of the same name.
FILE_ONLY_KEYS = {"upstream": {"password_file"}, "folder": {"password_file"}}


def example_for(tmp_path: Path) -> Path:
    """The example with its absolute paths moved under tmp_path."""
    text = EXAMPLE.read_text().replace('"/var/lib/updmirror"', f'"{tmp_path / "store"}"')
    path = tmp_path / "mirror.toml"
    path.write_text(text)
    return path


def keys_by_section(text: str) -> dict[str, set[str]]:
    """Every `key =` and `# key =` line, by [section]."""
    found: dict[str, set[str]] = {}
    section = None
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(\w+)\]", line.strip()):
            section = m.group(1)
            found[section] = set()
        elif section and (m := re.match(r"#?\s?([a-z_]+) = ", line)):
            found[section].add(m.group(1))
    return found


def test_the_example_configuration_loads(tmp_path):
    cfg = config.load(example_for(tmp_path))
    assert cfg.mirror.root == tmp_path / "store"
    assert cfg.http.listen == ("0.0.0.0:2221",) and cfg.mirror.trees == ("ep11",)


def test_the_example_names_every_key_the_configuration_reads():
    found = keys_by_section(EXAMPLE.read_text())
    for section, cls in SECTIONS.items():
        expected = {f.name for f in dataclasses.fields(cls)} | FILE_ONLY_KEYS.get(section, set())
        assert found.get(section) == expected, section


def test_the_examples_values_are_the_defaults(tmp_path):
    raw = tomllib.loads(example_for(tmp_path).read_text())
    cfg = config.load(example_for(tmp_path))
    minimal = tmp_path / "minimal.toml"
    minimal.write_text(f'[upstream]\nurl = "{raw["upstream"]["url"]}"\n'
                       f'[mirror]\nroot = "{raw["mirror"]["root"]}"\n')
    defaults = config.load(minimal)
    for section in SECTIONS:
        assert getattr(cfg, section) == getattr(defaults, section), section


def test_the_unit_runs_the_mirror_as_its_own_user_on_a_read_only_system():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["ExecStart"].endswith("updmirror run -c /etc/updmirror/mirror.toml")
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["User"] == "updmirror" and service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict" and service["PrivateTmp"] == "yes"
    root = tomllib.loads(EXAMPLE.read_text())["mirror"]["root"]
    assert root in service["ReadWritePaths"].split()
    assert int(service["LimitNOFILE"]) > 10_000      # the 10,000 clients
    assert service["RestartPreventExitStatus"] == "2"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_finds_nothing_wrong_with_the_unit(tmp_path):
    # verify also checks that ExecStart exists: point it at a stand-in.
    program = tmp_path / "updmirror"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    text = re.sub(r"^ExecStart=\S+", f"ExecStart={program}", UNIT.read_text(), flags=re.M)
    unit = tmp_path / "updmirror.service"
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
