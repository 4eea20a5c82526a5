"""The package layout holds: no import circles, no stage importing a later stage, small files.

Imports are read with `ast`, so every import counts: module level, inside functions and under
`TYPE_CHECKING` alike (a type-only import still couples the two files).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Low to high: a package may import its own rank or lower, never higher.
STAGE_RANKS = [
    ["", "errors", "atomic_files", "stage_lock", "lazy", "__main__"],
    ["llm"],
    ["prompts"],
    ["models"],
    ["testing"],
    ["datasets"],
    ["tuners"],
    ["experts"],
    ["training"],
    ["merging"],
    ["inspection"],
    ["evaluation"],
    ["shapes"],
    ["pipeline"],
    ["cli"],
]
RANK = {name: level for level, names in enumerate(STAGE_RANKS) for name in names}
# `selma/__init__.py` (a lazy facade) and `__main__` are entry points: they may reach anything.
ENTRY_POINTS = {"selma", "selma.__main__"}
MAX_LINES = 400


def lazy_exports() -> dict[str, str]:
    """`from selma.pkg import X` for a lazy X (a package's `_LAZY` table, see selma/lazy.py) really imports the
    module X lives in: 'selma.pkg.X' -> 'selma.pkg.module'."""
    table = {}
    for init in (ROOT / "selma").rglob("__init__.py"):
        package = module_name(init)
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_LAZY":
                for name, where in ast.literal_eval(node.value).items():
                    table[f"{package}.{name}"] = package + where
    return table


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def imported_modules(path: Path, known: set[str], source: str | None = None) -> set[str]:
    """Every in-project module `path` (or `source`, read as if it were `path`) imports, resolved to a
    module that exists."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    lazy = lazy_exports()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, filename=str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import x`: x is a submodule, a lazy facade name, or a name in pkg.
            candidates = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for candidate in candidates:
            candidate = lazy.get(candidate, candidate)
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                found.add(candidate)
    return found


def import_graph(*folders: str) -> dict[str, set[str]]:
    files = python_files(*folders)
    known = {module_name(p) for p in files}
    return {module_name(p): imported_modules(p, known) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle in `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            # Importing `pkg.sub` runs `pkg/__init__` first, but a package's own
            # `__init__` importing its children is the normal direction: only
            # edges between modules count.
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_import_walker_sees_relative_function_local_and_type_checking_imports(tmp_path):
    pkg = tmp_path / "selma" / "prompts"
    pkg.mkdir(parents=True)
    (tmp_path / "selma" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..cli import run\n"
        "def f():\n    from . import b\n"
    )
    (pkg / "b.py").write_text("from selma.prompts.a import f\n")
    (tmp_path / "selma" / "cli").mkdir()
    (tmp_path / "selma" / "cli" / "__init__.py").write_text("")
    (tmp_path / "selma" / "cli" / "run.py").write_text("")
    files = sorted((tmp_path / "selma").rglob("*.py"))
    rel = {p: ".".join(p.relative_to(tmp_path).with_suffix("").parts) for p in files}
    known = {n.removesuffix(".__init__") for n in rel.values()}
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = imported_modules(pkg / "a.py", known)
        graph = {n.removesuffix(".__init__"): imported_modules(p, known) for p, n in rel.items()}
    finally:
        ROOT = saved
    assert found == {"selma.cli.run", "selma.prompts.b"}
    assert find_cycle(graph) == ["selma.prompts.a", "selma.prompts.b", "selma.prompts.a"]


def test_a_lazy_name_from_the_facade_counts_as_an_import_of_its_module():
    known = {module_name(p) for p in python_files("selma")}
    probe = ROOT / "selma" / "prompts" / "probe.py"
    found = imported_modules(probe, known, source="from selma import build_dataset, __version__\n")
    assert found == {"selma.datasets.rendering", "selma"}


@pytest.mark.parametrize("folder", ["selma", "nodes"])
def test_no_import_circles(folder):
    graph = import_graph(folder)
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_every_selma_package_has_a_rank():
    packages = {p.name for p in (ROOT / "selma").iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in (ROOT / "selma").glob("*.py") if p.stem != "__init__"}
    unranked = sorted((packages | modules) - set(RANK))
    assert not unranked, f"add {unranked} to STAGE_RANKS in tests/test_layout.py"


def test_no_stage_imports_a_later_stage():
    upward = []
    for module, targets in import_graph("selma").items():
        if module in ENTRY_POINTS:
            continue
        for target in sorted(targets):
            if target == "selma.__main__":
                upward.append(f"{module} -> {target}")
            elif RANK[stage_of(target)] > RANK[stage_of(module)]:
                upward.append(f"{module} ({stage_of(module)}) -> {target} ({stage_of(target)})")
    assert not upward, "lower stage imports a later one:\n" + "\n".join(upward)


def test_no_python_file_is_long():
    long_files = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in python_files("selma", "nodes", "tools")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert not long_files, f"split these (over {MAX_LINES} lines):\n" + "\n".join(long_files)


def test_node_files_stay_apart_and_glue_stays_below_them():
    """A stage's node file reaches the core and nodes/glue/, never another stage's node file; glue reaches no node
    file. So each node file can be read (and changed) alone."""
    crossings = []
    for module, targets in import_graph("nodes").items():
        for target in sorted(targets):
            if module == "nodes" or target.startswith("nodes.glue"):
                continue
            if target.startswith("nodes"):
                crossings.append(f"{module} -> {target}")
    assert not crossings, "node files import each other:\n" + "\n".join(crossings)
