"""The package's structure, read from its source with ast (shared/DESIGN.md, "Which part may
import which"): imports point down the data flow, never back up, and never in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "analogsim"
MAX_MODULE_LINES = 400
MAX_TILE_CLASS_LINES = 250


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in SOURCES.items()}


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import statement of a module,
    with relative imports resolved; a ``from package import submodule`` names the submodule."""
    found = []
    package = name if SOURCES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [alias.name for alias in node.names]
            submodules = [n for n in names if f"{base}.{n}" in SOURCES]
            if submodules:
                found += [(f"{base}.{n}", [], node.lineno) for n in submodules]
            rest = [n for n in names if n not in submodules]
            if rest or not submodules:
                found.append((base, rest, node.lineno))
    return found


def ours(target: str) -> bool:
    return target == "analogsim" or target.startswith("analogsim.")


def in_part(name: str, part: str) -> bool:
    return name == part or name.startswith(part + ".")


def graph() -> dict[str, set[str]]:
    return {name: {t for t, _, _ in imports(name) if ours(t) and t in SOURCES and t != name}
            for name in SOURCES}


def test_the_walk_sees_the_package() -> None:
    assert {"analogsim.tiles.tile", "analogsim.cards", "analogsim.cli"} <= set(SOURCES)
    assert "analogsim.tiles.layout" in graph()["analogsim.tiles.tile"]


def test_no_module_imports_another_modules_private_name() -> None:
    offenders = []
    for name in SOURCES:
        for target, names, line in imports(name):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if ours(target) and target != name and private:
                offenders.append(f"{name}:{line} imports {private} from {target}")
        aliases = {alias.asname or alias.name for node in ast.walk(TREES[name])
                   if isinstance(node, ast.ImportFrom) and ours(node.module or "")
                   for alias in node.names}
        offenders += [f"{name}:{node.lineno} reads {node.value.id}.{node.attr}"
                      for node in ast.walk(TREES[name])
                      if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                      and node.value.id in aliases and node.attr.startswith("_")
                      and not node.attr.startswith("__")]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize(
    ("part", "may_not_import", "unless"),
    [
        ("analogsim.physics", ("analogsim",), ("analogsim.physics", "analogsim.errors",
                                               "analogsim.units")),
        ("analogsim.report", ("analogsim.tiles", "analogsim.conversion",
                              "analogsim.experiments", "analogsim.programming"), ()),
        ("analogsim.train", ("analogsim.results",), ()),
        ("analogsim.tiles", ("analogsim.conversion", "analogsim.programming",
                             "analogsim.experiments", "analogsim.results", "analogsim.train",
                             "analogsim.report", "analogsim.cli"), ()),
        ("analogsim.results", ("analogsim.tiles", "analogsim.conversion",
                               "analogsim.experiments", "analogsim.train",
                               "analogsim.report"), ()),
    ],
    ids=["physics", "report", "training methods", "tiles", "results"],
)
def test_imports_point_down_the_data_flow(part: str, may_not_import: tuple[str, ...],
                                          unless: tuple[str, ...]) -> None:
    offenders = [
        f"{name}:{line} imports {target}"
        for name in SOURCES if in_part(name, part)
        for target, _, line in imports(name)
        if any(in_part(target, p) for p in may_not_import)
        and not any(in_part(target, p) for p in unless)
    ]
    assert not offenders, "\n".join(offenders)


def test_only_the_backends_import_aihwkit() -> None:
    offenders = [f"{name}:{line}" for name in SOURCES if not in_part(name, "analogsim.backends")
                 for target, _, line in imports(name) if in_part(target, "aihwkit")]
    assert not offenders, offenders


def test_only_the_engine_and_results_write_results_files() -> None:
    # hardware/ reads and writes the lab's exchange files (targets, measurements), not results
    h5py_users = ("analogsim.results", "analogsim.experiments", "analogsim.hardware")
    offenders = [f"{name}:{line} imports h5py" for name in SOURCES
                 if not any(in_part(name, w) for w in h5py_users)
                 for target, _, line in imports(name) if target == "h5py"]
    offenders += [f"{name}:{line} imports ResultsWriter" for name in SOURCES
                  if not any(in_part(name, w) for w in ("analogsim.results",
                                                        "analogsim.experiments"))
                  for target, names, line in imports(name)
                  if target == "analogsim.results" and "ResultsWriter" in names]
    assert not offenders, "\n".join(offenders)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(edges):
        if state.get(root):
            continue
        path, stack = [root], [iter(sorted(edges[root]))]
        state[root] = 1
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(target) == 1:
                return [*path[path.index(target):], target]
            elif not state.get(target):
                state[target] = 1
                path.append(target)
                stack.append(iter(sorted(edges[target])))
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    # a package imports its submodules to re-export them; an edge into a package's __init__
    # from its own submodules would be a cycle through it, so it counts too
    assert find_cycle(graph()) is None


def test_modules_are_readable_in_one_sitting() -> None:
    long = {name: n for name, path in SOURCES.items()
            if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_the_tile_class_only_composes_its_stages() -> None:
    tree = TREES["analogsim.tiles.tile"]
    tile = next(node for node in tree.body
                if isinstance(node, ast.ClassDef) and node.name == "AnalogTile")
    lines = tile.end_lineno - tile.lineno + 1
    assert lines < MAX_TILE_CLASS_LINES, f"AnalogTile has {lines} lines"


GLOBAL_GENERATORS = ("torch", "torch.random", "torch.default_generator", "torch.cuda")


def test_library_code_sets_no_process_wide_state() -> None:
    offenders = []
    for name in SOURCES:
        for node in ast.walk(TREES[name]):
            call = node.func if isinstance(node, ast.Call) else None
            if (isinstance(call, ast.Attribute)
                    and call.attr in ("manual_seed", "seed", "set_rng_state")
                    and ast.unparse(call.value) in GLOBAL_GENERATORS):
                offenders.append(f"{name}:{node.lineno} {ast.unparse(call)}")
            if isinstance(node, ast.Global):
                offenders.append(f"{name}:{node.lineno} global {node.names}")
    allowed = {"analogsim.seeding"}  # global_rng_seeded: manual_seed inside fork_rng
    assert not [o for o in offenders if o.split(":")[0] not in allowed], offenders
