"""Test modules are imported by their base name (no __init__.py under tests/,
pytest's default "prepend" import mode): two with one name in different rooms
would make pytest refuse the second, or a helper import the wrong one."""

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_test_module_and_helper_has_a_name_of_its_own():
    found = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name != "conftest.py" and "__pycache__" not in path.parts:
            found[path.stem].append(str(path.relative_to(TESTS)))
    assert {name: paths for name, paths in found.items() if len(paths) > 1} == {}


def test_the_check_sees_every_room():
    rooms = {p.parent.name for p in TESTS.rglob("test_*.py")}
    assert {"store", "sync", "serve", "upstream", "eset", "vendor", "client"} <= rooms
