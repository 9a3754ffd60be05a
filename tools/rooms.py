"""The rooms of src/updmirror and the arrows between them: which room imports
which, read from the source with `ast` (module-level and function-level
imports, and `importlib.import_module("...")` with a literal name).

    python tools/rooms.py            each room, its layer and the rooms it imports
    python tools/rooms.py --check    also list the upward arrows and the private
                                     names imported across rooms; exit 1 if any
    python tools/rooms.py --tests    also show what tests/ and bench/ import
    python tools/rooms.py --root DIR another checkout (e.g. an older commit's tree)

The layer contract (bottom to top) is LAYERS below; tests/test_layers.py
runs the same check, so a change that adds an upward arrow fails the tests.
A room may import rooms of lower layers only: not one of its own layer (the
siblings stay independent) and never one above, and not the lower rooms
FORBIDDEN names for it (serve/ does not sync). A module may import only
public names (no leading underscore) from another room; tests/ and bench/
are rooms of their own above everything, so they too may use public names
only.

No dependencies beyond the standard library, so CI can run it anywhere.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "updmirror"

#: Bottom to top. A room may import only rooms of a lower layer.
LAYERS: list[set[str]] = [
    # Small shared helpers: the package root (__version__), errors, units, credential scrubbing, UNC names,
    # atomic writes and locks (files), HTTP dates, ranges, Basic and content types (httpfacts).
    {"updmirror", "errors", "units", "redact", "progress", "files", "httpfacts"},
    {"unc"},                                      # UNC names and accounts (scrubs with redact)
    {"eset"},                                     # the format: bytes in, values out
    {"upstream"},                                 # fetchers over HTTP, folder, SMB
    {"config"},                                   # one validated configuration (owns no fetching)
    {"store"},                                    # snapshots, records, every write under the root
    {"sync"},                                     # plan, fetch, verify, publish
    {"status"},                                   # freshness facts and their renderings
    {"serve", "folder", "client", "vendor"},      # the ways out (and the simulated vendor)
    {"export"},                                   # generated configs: read serve's and folder's constants
    {"daemon"},                                   # `updmirror run`: serve + scheduled sync; nothing imports it
    {"demo"},
    {"cli"},                                      # wires COMMAND_MODULES (imported by name)
    {"__main__"},
]

#: Lower rooms a room still must not import: the ways out read the store,
#: never fetch or sync; the daemon is the command line's alone.
FORBIDDEN: dict[str, set[str]] = {
    "status": {"upstream", "sync"},
    "serve": {"upstream", "sync"},
    "folder": {"upstream", "sync"},
    "export": {"upstream", "sync"},
    "client": {"store", "sync"},
    "vendor": {"upstream", "store", "sync"},
    "demo": {"daemon"},
}

#: The tests and benchmarks import whatever they exercise, but only by public names.
TESTS = "tests"
BENCH = "bench"


def layer_of(room: str) -> int:
    if room in (TESTS, BENCH):
        return len(LAYERS)
    for level, rooms in enumerate(LAYERS):
        if room in rooms:
            return level
    raise KeyError(room)


@dataclass(frozen=True)
class Arrow:
    source: str          # the importing file (relative path)
    line: int
    importer: str        # its room
    target: str          # the imported module, dotted
    room: str            # the imported room
    names: tuple[str, ...] = ()   # names imported by `from X import a, b`


def room_of(module: str) -> str | None:
    """updmirror.serve.master -> serve; updmirror.errors -> errors; updmirror -> updmirror."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    return parts[1] if len(parts) > 1 else PACKAGE


def module_name(path: Path, src: Path) -> str:
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """(line, imported module, imported names) for every import in `tree`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = tuple(a.name for a in node.names)
            if target == PACKAGE:
                # `from updmirror import config`: each name is a room (or __version__).
                for name in names:
                    yield node.lineno, f"{PACKAGE}.{name}" if name != "__version__" else PACKAGE, ()
            else:
                yield node.lineno, target, names
        elif (isinstance(node, ast.Assign) and isinstance(node.value, (ast.Tuple, ast.List))
              and any(isinstance(t, ast.Name) and t.id.endswith("MODULES") for t in node.targets)):
            # cli.py's COMMAND_MODULES: modules imported by name in a loop.
            for item in node.value.elts:
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    yield node.lineno, item.value, ()
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value, ()


def arrows_of_source(text: str, module: str, importer: str, source: str = "<string>",
                     is_package: bool = False) -> list[Arrow]:
    found = []
    for line, target, names in imports(ast.parse(text, source), module, is_package):
        room = room_of(target)
        if room is None:
            continue
        found.append(Arrow(source, line, importer, target, room, names))
    return found


def collect(root: Path) -> list[Arrow]:
    """Every arrow from src/updmirror and tests/ under the repository `root`."""
    src = root / "src"
    found: list[Arrow] = []
    for path in sorted((src / PACKAGE).rglob("*.py")):
        module = module_name(path, src)
        importer = room_of(module)
        found += arrows_of_source(path.read_text(encoding="utf-8"), module, importer,
                                  str(path.relative_to(root)), path.name == "__init__.py")
    for room in (TESTS, BENCH):
        for path in sorted((root / room).rglob("*.py")):
            found += arrows_of_source(path.read_text(encoding="utf-8"), f"{room}.{path.stem}", room,
                                      str(path.relative_to(root)))
    return found


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def problems(arrows: list[Arrow]) -> list[str]:
    """Upward (or sideways) arrows and private names taken from another room."""
    out = []
    for a in arrows:
        if a.importer == a.room:
            continue
        try:
            low, high = layer_of(a.room), layer_of(a.importer)
        except KeyError as exc:
            out.append(f"{a.source}:{a.line}: room {exc.args[0]!r} is in no layer of tools/rooms.py LAYERS")
            continue
        if low >= high:
            where = "its own layer" if low == high else "a higher layer"
            out.append(f"{a.source}:{a.line}: {a.importer} imports {a.target} ({a.room}, {where}); "
                       f"a room may import only rooms below it")
        elif a.room in FORBIDDEN.get(a.importer, ()):
            out.append(f"{a.source}:{a.line}: {a.importer} imports {a.target}; {a.importer} must not "
                       f"import {a.room} (FORBIDDEN in tools/rooms.py)")
        private_parts = [p for p in a.target.split(".")[1:] if is_private(p)]
        private_names = [n for n in a.names if is_private(n)]
        if private_parts or private_names:
            what = ", ".join(private_names) or a.target
            out.append(f"{a.source}:{a.line}: {a.importer} imports the private {what} of {a.room}; "
                       "make it public in that room (and its __all__) or do without it")
    return out


def src_rooms(root: Path) -> set[str]:
    """Every room under src/updmirror: a package, or a top-level module."""
    package = root / "src" / PACKAGE
    found = {PACKAGE}
    for path in package.iterdir():
        if path.is_dir() and (path / "__init__.py").exists():
            found.add(path.name)
        elif path.suffix == ".py" and path.stem != "__init__":
            found.add(path.stem)
    return found


def table(arrows: list[Arrow], rooms: set[str] = frozenset(), *, with_tests: bool = False) -> list[str]:
    edges: dict[str, set[str]] = {room: set() for room in rooms}
    for a in arrows:
        if a.importer in (TESTS, BENCH) and not with_tests:
            continue
        edges.setdefault(a.importer, set())
        if a.room != a.importer:
            edges[a.importer].add(a.room)

    def level(room: str) -> int:
        try:
            return layer_of(room)
        except KeyError:
            return -1

    lines = []
    for room in sorted(edges, key=lambda r: (level(r), r)):
        targets = sorted(edges[room], key=lambda r: (level(r), r))
        lines.append(f"{room:10} [layer {level(room):2}] -> {', '.join(targets) or '-'}")
    return lines


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    if "--root" in argv:
        root = Path(argv[argv.index("--root") + 1])
    arrows = collect(root)
    print("\n".join(table(arrows, src_rooms(root), with_tests="--tests" in argv)))
    if "--check" in argv:
        found = problems(arrows)
        print(f"\n{len(found)} problem(s)")
        print("\n".join(found))
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
