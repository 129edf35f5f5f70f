"""Layers import downwards only (DESIGN.md §3, docs/architecture.md).

Every `import` and `from ... import` in src/overture is read with `ast`, wherever it is
(top of the module, inside a function, under TYPE_CHECKING: a local import is still a
dependency), and checked against ALLOWED: which packages each package may import. A new
import that crosses a layer the wrong way fails here, with the file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "overture"

# The pure core: no I/O (no database, network, HTTP or batch engine libraries).
CORE = frozenset({"rules", "catalog", "engine", "learning"})
# The parts that hold or move data, on the core. (demo: the demo catalog and its
# generated customers, used by tests, the CLI and benchmarks.)
BASE = CORE | {"store", "auth", "history"}

ALLOWED: dict[str, frozenset[str]] = {
    "rules": frozenset(),
    "catalog": frozenset({"rules"}),
    "engine": frozenset({"rules", "catalog"}),
    "learning": frozenset({"rules", "catalog", "engine"}),
    "demo": frozenset({"rules", "catalog", "engine"}),
    "store": CORE,
    "auth": CORE | {"store"},
    "history": CORE | {"store"},
    # the services: each on the layers below, never on one another
    "design": BASE,
    "runtime": BASE,
    "batch": BASE,
    # the Python client speaks the runtime's wire format (its msgspec structs), nothing more
    "client": frozenset({"runtime.schemas"}),
    # the top: composition of the server, the console, the command line
    "server": BASE | {"design", "runtime", "batch", "console"},
    "console": BASE | {"design", "batch", "demo"},  # demo: the demo server's traffic button
    "cli": BASE | {"design", "runtime", "batch", "client", "demo", "server"},
}
# Libraries that do I/O, which the pure core never imports.
IO_LIBRARIES = frozenset(
    {
        "sqlalchemy",
        "alembic",
        "psycopg",
        "sqlite3",
        "redis",
        "duckdb",
        "pyspark",
        "httpx",
        "starlette",
        "fastapi",
        "uvicorn",
        "socket",
        "asyncio",
    }
)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. overture.runtime.service
    target: str  # the imported module, e.g. overture.history.ledger
    file: Path
    line: int

    @property
    def where(self) -> str:
        return f"src/{self.source.replace('.', '/')}.py:{self.line}"


def _module_name(path: Path, src: Path) -> str:
    parts = path.relative_to(src.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(src: Path = SRC) -> Iterator[Import]:
    """Every import in the package at `src` (its folder named `overture`)."""
    for path in sorted(src.rglob("*.py")):
        module = _module_name(path, src)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, alias.name, path, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: resolve against the importing package
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                yield Import(module, target, path, node.lineno)
                if target == "overture" or (node.level and not node.module):
                    # `from overture import design`: each name may be a package
                    for alias in node.names:
                        yield Import(module, f"{target}.{alias.name}", path, node.lineno)


def _package(module: str) -> str | None:
    """The first-level package of an overture module (None: the root, or not overture)."""
    parts = module.split(".")
    if parts[0] != "overture" or len(parts) < 2:
        return None
    return parts[1]


def _allowed(source: str, target: str) -> bool:
    allowed = ALLOWED[source]
    parts = target.split(".")[1:]
    return any(".".join(parts[:n]) in allowed for n in range(1, len(parts) + 1))


def test_every_package_has_its_place() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(ALLOWED), (
        f"packages without a layer: {sorted(packages - set(ALLOWED))}; add them to ALLOWED "
        "here and to docs/architecture.md"
    )


def test_layers_import_downwards_only() -> None:
    wrong = forbidden()
    assert not wrong, (
        "imports against the layers (docs/architecture.md says who may import whom):\n"
        + "\n".join(wrong)
    )


def test_the_pure_core_does_no_io() -> None:
    wrong = [
        f"{imp.where}: {imp.source} imports {imp.target}"
        for imp in imports()
        if _package(imp.source) in CORE and imp.target.split(".")[0] in IO_LIBRARIES
    ]
    assert not wrong, "the pure core imports I/O libraries:\n" + "\n".join(wrong)


def test_no_cycles_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for imp in imports():
        source, target = _package(imp.source), _package(imp.target)
        if source and target and source != target:
            graph.setdefault(source, set()).add(target)
    cycle = _find_cycle(graph)
    assert cycle is None, f"packages import one another in a circle: {' -> '.join(cycle or [])}"


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}, ["b", "b2", "b"]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[str] | None
) -> None:
    assert _find_cycle(graph) == expected


def forbidden(src: Path = SRC) -> list[str]:
    wrong = []
    for imp in imports(src):
        source, target = _package(imp.source), _package(imp.target)
        if source is None or target is None or source == target:
            continue
        if target in ALLOWED and not _allowed(source, imp.target):
            wrong.append(f"{imp.where}: {imp.source} imports {imp.target}")
    return wrong


def test_the_checker_sees_local_relative_and_package_imports(tmp_path: Path) -> None:
    """A forbidden import hidden in a function, written relatively, or as `from overture
    import batch` is still found; an allowed one is not reported."""
    root = tmp_path / "overture"
    (root / "runtime").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "runtime" / "__init__.py").write_text("")
    (root / "runtime" / "a.py").write_text(
        "from overture.history import ledger\n"
        "def f():\n    from overture.batch import run\n"
        "from ..design import codec\n"
        "from overture import cli\n"
    )
    found = forbidden(root)
    assert sorted(line.split(": ", 1)[1] for line in found) == [
        "overture.runtime.a imports overture.batch",
        "overture.runtime.a imports overture.cli",
        "overture.runtime.a imports overture.design",
    ]
    assert _allowed("client", "overture.runtime.schemas")
    assert not _allowed("client", "overture.runtime.service")
