"""Structure figures of the package (issue 22): local imports, two-way package dependencies, long modules
and lines, SourceOptions construction sites. `python benchmarks/structure.py [--json]`."""

from __future__ import annotations

import argparse
import ast
import json
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "convcoach"


def unit_of(module: str) -> str:
    """The package-level unit a dotted module belongs to: convcoach.train.loop -> train."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def resolve(node: ast.ImportFrom, current: str, is_package: bool) -> list[str]:
    if node.level == 0:
        base = node.module or ""
    else:
        parts = current.split(".")
        if not is_package:
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts + ([node.module] if node.module else []))
    return [base]


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported convcoach module, imported inside a function) for each import in `path`."""
    tree = ast.parse(path.read_text())
    current, is_package = module_name(path), path.name == "__init__.py"
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom):
                for name in resolve(child, current, is_package):
                    if name.startswith("convcoach"):
                        found.append((name, inner))
            elif isinstance(child, ast.Import):
                found.extend((a.name, inner) for a in child.names if a.name.startswith("convcoach"))
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            visit(child, inner)

    visit(tree, False)
    return found


def _type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def measure() -> dict:
    files = sorted(ROOT.rglob("*.py"))
    local_imports = 0
    edges: dict[str, set[str]] = defaultdict(set)
    for path in files:
        source_unit = unit_of(module_name(path))
        for target, local in imports(path):
            local_imports += local
            target_unit = unit_of(target)
            if target_unit != source_unit and target != "convcoach":
                edges[source_unit].add(target_unit)

    def reachable(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for target in edges.get(stack.pop(), set()):
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return seen

    in_cycles = sorted(unit for unit in edges if unit in reachable(unit))
    two_way = sorted({tuple(sorted((a, b))) for a in edges for b in edges[a] if a in edges.get(b, set())})
    long_modules = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > 350}
    lines = [(p, line) for p in files for line in p.read_text().splitlines()]
    # the places that build SourceOptions: explicit calls, and its from_config classmethod
    source_options = sum(
        p.read_text().count("SourceOptions(") - p.read_text().count("class SourceOptions(") for p in files
    ) + sum(p.read_text().count("def from_config(cls") for p in files if "class SourceOptions" in p.read_text())
    return {
        "function_local_imports": local_imports,
        "two_way_dependencies": [f"{a}<->{b}" for a, b in two_way],
        "packages_in_import_cycles": in_cycles,
        "modules_over_350_lines": long_modules,
        "lines_over_100": sum(len(line) > 100 for _, line in lines),
        "lines_over_120": sum(len(line) > 120 for _, line in lines),
        "longest_line": max(len(line) for _, line in lines),
        "source_options_constructions": source_options,
        "edges": {k: sorted(v) for k, v in sorted(edges.items())},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    figures = measure()
    if parser.parse_args().json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            if key != "edges":
                print(f"{key}: {value}")
