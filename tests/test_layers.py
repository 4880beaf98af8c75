"""The package's rooms stay small and layered: no import climbs back up, no cycle, no module over 400 lines.

Every import inside the package counts, also those inside functions (a lazy import is still an
arrow); only ``if TYPE_CHECKING:`` blocks are left out. The layers, lowest first, are the order a
reader meets them in the README's architecture paragraph.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_ckpt_compat"
MAX_LINES = 400

# Subpackages, lowest first: a module may import its own subpackage's lower layers and any lower
# subpackage, never a higher one. Inside a subpackage the groups are its own layers, lowest first.
SUBPACKAGES = [
    (
        "core",
        [
            {"core.errors", "core.progress"},
            {"core.versions"},
            {"core.ledger"},
            {"core.ops", "core.callback_keys", "core.redirects", "core.renames", "core.hparams"},
            {"core.catalogue", "core.premigrated"},
            {"core.engine", "core.stamps"},
            {"core"},
        ],
    ),
    (
        "files",
        [
            {"files.names", "files.writing.sink", "files.writing.tempfiles"},
            {
                "files.signals",
                "files.formats",
                "files.pickles",
                "files.bounds",
                "files.sharded",
                "files.writing.atomic",
                "files.writing.plaindata",
                "files.redirecting",
            },
            {"files.allowlist", "files.writing.sources", "files.writing.carryover", "files.writing.zipformat"},
            {"files.unpicklers", "files.writing.inplace"},
            {"files.load_errors"},
            {"files.writing", "files.loading", "files.renaming"},
            {"files.paths"},
            {"files.discovery"},
            {"files"},
        ],
    ),
    (
        "lightning",
        [
            {"lightning.namespaces"},
            {"lightning.upgrading"},
            {"lightning.callback"},
            {"lightning.seams"},
            {"lightning"},
            {"lightning.preflight"},
        ],
    ),
    (
        "goldens",
        [
            {
                "goldens.registry",
                "goldens.environments",
                "goldens.meta",
                "goldens.downloads",
                "goldens.recorder",
                "goldens.determinism",
            },
            {"goldens.recipes"},
            {"goldens.store"},
            {"goldens.building", "goldens.listing"},
            {"goldens.team_building"},
            {"goldens.team_adding"},
            {"goldens"},
        ],
    ),
    (
        "matrix",
        [
            {"matrix.compare", "matrix.known_defects"},
            {"matrix.suites"},
            {"matrix.workspace"},
            {"matrix.restored"},
            {"matrix.harness"},
            {"matrix.evaluate", "matrix.refusals"},
            {"matrix.checks", "matrix.drift"},
            {"matrix.roundtrip"},
            {"matrix.session"},
            {"matrix.report"},
            {"matrix"},
        ],
    ),
    (
        "",
        [
            {"errors", "ops", "toolkit"},
            {"testing"},
            {"plugin", "_matrix", "_check"},
            {"commands"},
            {"__init__"},
        ],
    ),
    ("cli", [{"cli.suite"}, {"cli"}, {"cli.__main__"}]),
]
LAYERS = [group for _, groups in SUBPACKAGES for group in groups]
SUBPACKAGE_RANK = {name: rank for rank, (_, groups) in enumerate(SUBPACKAGES) for group in groups for name in group}
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.parts[0].startswith("_data"):
            continue
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Package modules that ``module`` imports at run time (module level or inside functions)."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    if module == "__init__":
        package = []
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else list(package)
            elif node.module and node.module.split(".")[0] == "pytest_ckpt_compat":
                base = []
                node = ast.ImportFrom(module=".".join(node.module.split(".")[1:]) or None, names=node.names, level=1)
            else:
                base = None
            if base is not None:
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{target}.{alias.name}" if target else alias.name
                    out.add(sub if sub in known else (target or "__init__"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "pytest_ckpt_compat":
                    name = ".".join(alias.name.split(".")[1:]) or "__init__"
                    out.add(name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    out.discard(module)
    return out


MODULES = _modules()
GRAPH = {name: _imports(name, path, set(MODULES)) for name, path in MODULES.items()}


def test_every_module_has_a_layer():
    assert sorted(set(MODULES) - set(RANK)) == []
    assert sorted(set(RANK) - set(MODULES)) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_climbs_up(module):
    climbing = sorted(dep for dep in GRAPH[module] if RANK[dep] > RANK[module])
    assert climbing == [], f"{module} (layer {RANK[module]}) imports higher layers: {climbing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_reaches_a_higher_subpackage(module):
    higher = sorted(dep for dep in GRAPH[module] if SUBPACKAGE_RANK[dep] > SUBPACKAGE_RANK[module])
    assert higher == [], (
        f"{module} ({SUBPACKAGES[SUBPACKAGE_RANK[module]][0] or 'top level'}) imports higher subpackages: {higher}"
    )


def test_every_subpackage_is_a_layer():
    packages = sorted(
        {
            path.parent.relative_to(PACKAGE).as_posix().split("/")[0]
            for path in MODULES.values()
            if path.parent != PACKAGE
        }
    )
    assert packages == sorted(name for name, _ in SUBPACKAGES if name)


def test_no_import_cycle():
    state: dict[str, int] = {}
    cycles = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(GRAPH[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                walk(dep, stack + [dep])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            walk(name, [name])
    assert cycles == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_at_most_400_lines(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines"


def test_the_checker_sees_lazy_imports_and_skips_type_checking(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nfrom . import versions\nif TYPE_CHECKING:\n    from .checks import "
        "Workspace\n"
        "def f():\n    from .engine import upgrade\n    import pytest_ckpt_compat.matrix.report\n"
    )
    assert _imports("core.probe", source, set(MODULES)) == {"core.versions", "core.engine", "matrix.report"}
