"""The layers hold: the core (pulsemart/, ml/) knows nothing of Dagster, its packages import
each other without cycles, production code does not reach for the development stack, and the
Dagster wiring imports the sensors only where a code location is assembled.

Imports are read from the source with ast (every import statement, in functions too), so a
lazy import counts as much as one at the top of a module.
"""

import ast
import graphlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ("pulsemart", "ml")
DAGSTER_SIDE = ("dagster", "orchestration", "sensors")
# The modules that assemble code locations: the only orchestration modules that import sensors.
LOCATIONS = {"orchestration.streaming", "orchestration.analytics", "orchestration.definitions"}
# The development stack, and the layers allowed to use it: the command line that starts it.
DEV_STACK = "pulsemart.local"
DEV_STACK_USERS = ("pulsemart.local", "pulsemart.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module named by an import in `path`: `from a.b import c` gives a.b and a.b.c."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules(*tops: str) -> dict[str, set[str]]:
    return {
        module_name(path): imported(path)
        for top in tops
        for path in sorted((ROOT / top).rglob("*.py"))
    }


def unit(name: str) -> str | None:
    """The package (or top-level module) of the core that `name` belongs to."""
    parts = name.split(".")
    if parts[0] == "ml":
        return "ml"
    if parts[0] != "pulsemart" or len(parts) < 2:
        return None
    candidate = ROOT / "pulsemart" / parts[1]
    return (
        f"pulsemart.{parts[1]}"
        if candidate.is_dir() or candidate.with_suffix(".py").exists()
        else None
    )


def test_the_core_imports_nothing_of_dagster_orchestration_or_sensors():
    offenders = sorted(
        f"{module} imports {name}"
        for module, names in modules(*CORE).items()
        for name in names
        if name.split(".")[0] in DAGSTER_SIDE or name.startswith("dagster_")
    )
    assert offenders == []


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, names in graph.items():
        source = unit(module)
        for name in names:
            target = unit(name)
            if source and target and target != source:
                edges.setdefault(source, set()).add(target)
    return edges


def test_the_core_packages_import_each_other_without_cycles():
    edges = package_graph(modules(*CORE))
    assert edges  # the check sees real imports
    try:
        list(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"package cycle: {' -> '.join(exc.args[1])}")


def test_the_cycle_check_catches_a_cycle():
    edges = package_graph(
        {
            "pulsemart.store.reset": {"pulsemart.stream.reader"},
            "pulsemart.stream.ingest": {"pulsemart.store.raw"},
        }
    )
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(edges).static_order())


def test_production_code_does_not_import_the_development_stack():
    offenders = sorted(
        f"{module} imports {name}"
        for module, names in modules("pulsemart", "ml").items()
        for name in names
        if (name == DEV_STACK or name.startswith(DEV_STACK + "."))
        and not module.startswith(DEV_STACK_USERS)
    )
    assert offenders == []


def test_only_the_code_locations_import_the_sensors():
    offenders = sorted(
        f"{module} imports {name}"
        for module, names in modules("orchestration").items()
        for name in names
        if name.split(".")[0] == "sensors" and module not in LOCATIONS
    )
    assert offenders == []


def test_the_store_names_no_datamart_model():
    # The datamart's tables live in the `marts` (and dbt's intermediate) schemas; the store
    # is told what to drop (pulsemart.datamart.project.incremental_relations).
    offenders = [
        path.name
        for path in (ROOT / "pulsemart" / "store").glob("*.py")
        if re.search(r"\b(marts|intermediate)\b", path.read_text())
    ]
    assert offenders == []
