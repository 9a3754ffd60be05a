"""cli.py: every listed command module is part of the program."""

import subprocess
import sys

import pytest

from updmirror import cli

COMMANDS = {"sync", "run", "serve", "passwd", "status", "folder", "export", "vendor", "client", "demo"}


def test_every_command_module_loads_and_adds_its_commands():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == COMMANDS


def test_the_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "updmirror", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    assert all(f"    {name} " in out for name in COMMANDS), out


def test_a_missing_command_module_is_an_error_that_names_it(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMAND_MODULES", cli.COMMAND_MODULES + ("updmirror.nosuchroom.commands",))
    assert cli.main(["status", "-c", "mirror.toml"]) == 1
    err = capsys.readouterr().err
    assert "updmirror.nosuchroom.commands" in err and "ModuleNotFoundError" in err


def test_a_command_module_with_a_broken_import_is_an_error_that_names_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "brokencommands.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("brokencommands",) + cli.COMMAND_MODULES)
    assert cli.main(["--help"]) == 1
    err = capsys.readouterr().err
    assert "brokencommands" in err and "a_dependency_that_is_not_installed" in err


def test_a_command_module_without_register_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "noregister.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("noregister",))
    with pytest.raises(cli.CommandModuleError, match="noregister has no register"):
        cli.build_parser()
