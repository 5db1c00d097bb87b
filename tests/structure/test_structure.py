"""The house rules of the code's shape (issue 19), checked from the source itself: no import
circle, no private name imported from another module, few modules at the top of the package,
modules of a readable size. import-linter (pyproject.toml, run by .ci/run) checks the layers;
it does not see circles inside one folder or private names, so this test does."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "src", ROOT / "connectors")
MAX_TOP_LEVEL_MODULES = 8
MAX_MODULE_LINES = 560  # "at most ~500": a little room, never a 700-line module


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base in SOURCES:
        for path in base.rglob("*.py"):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if parts:
                found[".".join(parts)] = path
    return found


def resolve(name: str, known: dict[str, Path]) -> str | None:
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def graph(known: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    """(edges between our modules, private names imported across modules). Imports inside
    functions and under TYPE_CHECKING count: a circle is a circle to a reader too."""
    edges: dict[str, set[str]] = {m: set() for m in known}
    private: list[str] = []
    for mod, path in known.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [(a.name, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([node.module] if node.module else [])])
                targets = [(f"{base}.{a.name}", base) for a in node.names]
                for alias in node.names:
                    owner = resolve(base, known)
                    if (alias.name.startswith("_") and not alias.name.startswith("__")
                            and owner not in (None, mod)):
                        private.append(f"{mod} imports {alias.name} from {base}")
            else:
                continue
            for full, base in targets:
                target = resolve(full, known) or resolve(base, known)
                if target and target != mod:
                    edges[mod].add(target)
    return edges, private


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_checker_sees_a_circle_and_a_private_import(tmp_path: Path) -> None:
    """The checks below can fail: a made-up package with both faults is caught."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from pkg.b import _hidden\n")
    (tmp_path / "pkg" / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                           "if TYPE_CHECKING:\n    from pkg import a\n"
                                           "_hidden = 1\n")
    known = {"pkg": tmp_path / "pkg" / "__init__.py", "pkg.a": tmp_path / "pkg" / "a.py",
             "pkg.b": tmp_path / "pkg" / "b.py"}
    edges, private = graph(known)
    assert circles(edges) == [["pkg.a", "pkg.b"]]
    assert private == ["pkg.a imports _hidden from pkg.b"]


def test_no_import_circles() -> None:
    edges, _ = graph(modules())
    assert circles(edges) == []


def test_no_private_name_imported_from_another_module() -> None:
    _, private = graph(modules())
    assert private == []


def test_few_modules_at_the_top_of_the_package() -> None:
    top = sorted(p.name for p in (ROOT / "src" / "ar_sync").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_modules_stay_readable() -> None:
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}


def test_no_note_between_engineers_is_committed() -> None:
    """Notes between engineers belong in issue notes: the repository's top level holds the
    project's own files only (a NOTE_FROM_LEAD.md once slipped in with a feature commit)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=False).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    notes = [p for p in tracked if "/" not in p and p.upper().startswith(("NOTE", "TODO"))]
    assert notes == [], f"notes between engineers committed: {notes}"
