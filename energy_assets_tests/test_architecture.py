"""The house rules, read from the code itself (see README, "Architecture"): what each room may import.

Each rule names the offending file and line, so a red test says exactly what to move.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "energy_assets"

# Modules that must stay free of Dagster: the lake's engine and the pure transforms.
DAGSTER_FREE = [
    "lake/engine.py",
    "lake/slices.py",
    "lake/store.py",
    "bronze.py",
    "content_version.py",
    "neso/transforms.py",
    "electricity_maps/transforms.py",
    "carbon/transforms.py",
    "smart_meter/ingestion.py",
    "smart_meter/silver.py",
    "smart_meter/presentation.py",
    "smart_meter/pipeline.py",
]
# Entry points (outside the graph) may import the assembled definitions, lazily.
ENTRY_POINTS = {"cli.py", "graph.py"}
# The one module allowed a Dagster internal, and the only internals it may import: Dagster's instance storage
# plugins can only subclass Dagster's own storage classes (configured by module path in dagster.yaml), and the
# batched writes of its subclass write the event log's own tables (its schema, as the package exports it).
STORAGE_PLUGIN = "instance_storage.py"
STORAGE_PLUGIN_IMPORTS = {
    "dagster._core.storage.event_log",
    "dagster._core.storage.event_log.SqliteEventLogStorage",
    "dagster._core.storage.event_log.SqlEventLogStorageTable",
    "dagster._core.storage.event_log.SqlEventLogStorageMetadata",
    "dagster._core.storage.event_log.SqlEventLogStorage",  # the base class of every SQL event log (range checks read targets by SQL)
}


def _modules() -> dict[str, ast.Module]:
    return {str(p.relative_to(PACKAGE)): ast.parse(p.read_text(), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _imports(tree: ast.Module, top_level_only: bool = False) -> list[tuple[int, str]]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def test_no_private_dagster_imports_outside_the_storage_plugin():
    offenders = [
        f"{name}:{line} imports {module}"
        for name, tree in MODULES.items()
        for line, module in _imports(tree)
        if module.startswith("dagster._") and not (name == STORAGE_PLUGIN and module in STORAGE_PLUGIN_IMPORTS)
    ]
    assert not offenders, offenders


def test_the_environment_is_read_only_in_the_settings_module():
    offenders = []
    for name, tree in MODULES.items():
        if name == "settings.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv") and getattr(node.value, "id", "") == "os":
                offenders.append(f"{name}:{node.lineno} os.{node.attr}")
            if isinstance(node, ast.Constant) and node.value == "ENERGY_LAKE_URI":
                offenders.append(f"{name}:{node.lineno} names ENERGY_LAKE_URI")
    assert not offenders, offenders


def test_lake_uri_is_named_only_in_the_settings_module():
    offenders = [name for name, _ in MODULES.items() if name != "settings.py" and "ENERGY_LAKE_URI" in (PACKAGE / name).read_text()]
    assert not offenders, offenders


@pytest.mark.parametrize("name", DAGSTER_FREE)
def test_engine_and_transforms_do_not_import_dagster(name):
    assert name in MODULES, f"{name} is missing: the layout changed, update DAGSTER_FREE"
    offenders = [f"{name}:{line} imports {module}" for line, module in _imports(MODULES[name]) if module.split(".")[0].startswith("dagster")]
    assert not offenders, offenders


def test_nothing_imports_the_definitions_back_but_the_entry_points():
    offenders = [
        f"{name}:{line}"
        for name, tree in MODULES.items()
        if name not in ENTRY_POINTS and name != "definitions.py"
        for line, module in _imports(tree)
        if module == "energy_assets.definitions" or module.startswith("energy_assets.definitions.")
    ]
    assert not offenders, offenders


def test_product_code_never_imports_the_development_tooling():
    offenders = [
        f"{name}:{line} imports {module}"
        for name, tree in MODULES.items()
        if not name.startswith("devtools/") and name not in ENTRY_POINTS
        for line, module in _imports(tree)
        if module.startswith("energy_assets.devtools")
    ]
    assert not offenders, offenders
    # the entry points import it lazily, inside the command that needs it
    for name in ENTRY_POINTS:
        top = [module for _, module in _imports(MODULES[name], top_level_only=True)]
        assert not any(m.startswith("energy_assets.devtools") for m in top), name


def test_no_import_cycle_between_modules():
    """Top-level imports between the project's modules form no cycle."""

    def module_name(path: str) -> str:
        name = "energy_assets." + path.removesuffix(".py").replace("/", ".")
        return name.removesuffix(".__init__")

    names = {module_name(p) for p in MODULES}
    edges: dict[str, set[str]] = {}
    for path, tree in MODULES.items():
        src = module_name(path)
        targets = set()
        for _, module in _imports(tree, top_level_only=True):
            while module and module not in names:
                module = module.rpartition(".")[0]
            if module and module != src and module != "energy_assets":
                targets.add(module)
        edges[src] = targets

    visiting, done, cycles = set(), set(), []

    def visit(node: str, stack: list[str]) -> None:
        visiting.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt in visiting:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]) if nxt in stack else f"{node} -> {nxt}")
            elif nxt not in done:
                visit(nxt, stack + [nxt])
        visiting.discard(node)
        done.add(node)

    for start in sorted(edges):
        if start not in done:
            visit(start, [start])
    assert not cycles, cycles
