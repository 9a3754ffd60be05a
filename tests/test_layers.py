"""The layer contract of tools/rooms.py: no room imports a room above it
(or a sibling, or a lower room it must not use), nothing imports the
daemon but the command line, no module takes a private name from another
room, and every room says what it exports."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_rooms():
    spec = importlib.util.spec_from_file_location("updmirror_tools_rooms", ROOT / "tools" / "rooms.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module     # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


rooms = _load_rooms()


@pytest.fixture(scope="module")
def arrows():
    return rooms.collect(ROOT)


def test_no_room_imports_upward_and_no_private_name_crosses_a_room(arrows):
    assert rooms.problems(arrows) == []


def test_every_room_is_in_a_layer():
    assert rooms.src_rooms(ROOT) - set().union(*rooms.LAYERS) == set()


def test_nothing_imports_the_daemon_but_the_command_line(arrows):
    importers = {a.importer for a in arrows if a.room == "daemon"}
    assert importers <= {"daemon", "cli", "tests"}
    assert "cli" in importers          # COMMAND_MODULES is read, so the check sees it


def test_the_server_imports_neither_sync_nor_folder_nor_the_daemon(arrows):
    assert not {a.room for a in arrows if a.importer == "serve"} & {"sync", "folder", "daemon", "upstream"}
    assert not {a.room for a in arrows if a.importer == "status"} & {"serve", "sync", "daemon"}


def test_the_arrows_found_include_function_level_imports(arrows):
    # daemon/commands.py imports the server inside run_command, not at the top.
    assert any(a.importer == "daemon" and a.room == "serve" for a in arrows)


def _check(text: str, module: str, *, is_package: bool = False) -> list[str]:
    importer = rooms.room_of(module) if module.startswith("updmirror") else "tests"
    return rooms.problems(rooms.arrows_of_source(text, module, importer, "<synthetic>", is_package))


@pytest.mark.parametrize("module,text", [
    ("updmirror.store.fake", "from updmirror.serve import master\n"),                 # up
    ("updmirror.store.fake", "def f():\n    import updmirror.sync.engine\n"),          # up, in a function
    ("updmirror.serve.fake", "from ..daemon import schedule\n"),                       # up, relative
    ("updmirror.eset.fake", "import importlib\nimportlib.import_module('updmirror.config')\n"),
    ("updmirror.serve.fake", "from updmirror.folder import publish_configured\n"),   # a sibling
    ("updmirror.serve.fake", "from updmirror.sync import run_sync\n"),               # lower, forbidden
    ("updmirror.demo", "from updmirror import daemon\n"),                            # only cli may
    ("updmirror.upstream.fake", "from updmirror import config\n"),                   # `from pkg import room`
])
def test_the_check_catches_a_bad_arrow(module, text):
    found = _check(text, module)
    assert len(found) == 1 and "<synthetic>:" in found[0], found


@pytest.mark.parametrize("module,text", [
    ("tests.fake", "from updmirror.serve.protocol import _clean_path\n"),
    ("tests.fake", "from updmirror.client._plan import plan_update\n"),
    ("updmirror.export.fake", "import updmirror.client._install\n"),
])
def test_the_check_catches_a_private_name_from_another_room(module, text):
    found = _check(text, module)
    assert len(found) == 1 and "private" in found[0], found


@pytest.mark.parametrize("module,text", [
    ("updmirror.serve.fake", "from updmirror.store import Store\nfrom updmirror.status import collect_status\n"),
    ("updmirror.serve.fake", "from .protocol import _private_helper\n"),    # inside its own room
    ("updmirror.client.fake", "from ._plan import plan_update\n"),
    ("tests.fake", "from updmirror.daemon import sync_forever\nfrom updmirror import __version__\n"),
    ("updmirror.cli", "COMMAND_MODULES = ('updmirror.daemon.commands', 'updmirror.demo')\n"),
])
def test_the_check_lets_a_good_arrow_pass(module, text):
    assert _check(text, module) == []


def _packages() -> list[str]:
    package = ROOT / "src" / "updmirror"
    return sorted(p.name for p in package.iterdir() if (p / "__init__.py").exists())


@pytest.mark.parametrize("room", _packages())
def test_every_room_declares_its_public_surface(room):
    module = importlib.import_module(f"updmirror.{room}")
    assert isinstance(getattr(module, "__all__", None), list), f"updmirror/{room}/__init__.py has no __all__"
    for name in module.__all__:
        found = hasattr(module, name) or importlib.util.find_spec(f"updmirror.{room}.{name}") is not None
        assert found, f"updmirror.{room}.__all__ names {name!r}, which it does not have"
        assert not rooms.is_private(name)
