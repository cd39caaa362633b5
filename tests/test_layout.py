"""The package's import graph keeps the documented layout: no import circles, and no package
imports one above it (docs/design.md, "Layout"). Imports inside functions count too: a lazy import
is still an arrow."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "subnet"
DESIGN = PACKAGE.parent / "docs" / "design.md"

# Top to bottom. A package may import its own modules and packages on a lower line, never one on
# its own line or above. Keep in step with the table in docs/design.md (checked below).
LAYERS = [
    ("cli",),
    ("dryrun",),
    ("validator", "miner"),
    ("runtime", "twins"),
    ("compute", "chain", "registry", "challenges", "gateway"),
    ("state",),
    ("protocol",),
    ("config", "util"),
]
ROOT_MODULES = {"__init__", "__main__", "config"}
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# TEMPORARY while the branches of issues 14 and 18 still edit these modules; emptied when they land.
PENDING_CIRCLES: list[list[str]] = []  # issue 18: the run summary's table moved to cli/tables.py
PENDING_ARROWS: dict[str, list[str]] = {}  # issue 14: the twin's standalone server is dryrun/basilica_twin.py


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """Every project module `path` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # `from pkg import module` imports the module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    assert cycles(graph()) == PENDING_CIRCLES


def test_every_package_has_a_layer_and_the_root_holds_only_entry_points():
    modules = all_modules()
    packages = {package_of(m) for m in modules if m.count(".") >= 1 and (PACKAGE / package_of(m)).is_dir()}
    assert packages - set(RANK) == set(), "a new package needs a line in LAYERS and in docs/design.md"
    loose = {m.split(".")[1] for m in modules if m.count(".") == 1 and not (PACKAGE / m.split(".")[1]).is_dir()}
    assert loose <= ROOT_MODULES, f"modules loose at the package root: {sorted(loose - ROOT_MODULES)}"


def test_no_import_points_up_or_sideways():
    wrong = defaultdict(list)
    for source, targets in graph().items():
        here = package_of(source)
        for target in targets:
            there = package_of(target)
            if there in ("", here) or source == "subnet":
                continue
            if RANK.get(here, -1) >= RANK[there]:
                wrong[f"{here} -> {there}"].append(f"{source} imports {target}")
    assert dict(wrong) == PENDING_ARROWS


def test_the_design_doc_draws_the_same_layers():
    block = re.search(r"<!-- layers -->\n```\n(.*?)```", DESIGN.read_text(), re.S)
    assert block, "docs/design.md lost its layer drawing (the ``` block after <!-- layers -->)"
    drawn = [tuple(word.rstrip("/") for word in line.split("│")[0].split()) for line in block.group(1).splitlines()
             if line.strip() and not line.lstrip().startswith(("↓", "#"))]
    assert drawn == LAYERS
