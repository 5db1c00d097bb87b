"""Reading a rules file: YAML (safe loader) into a tree that remembers each value's file and
line, shipped rule sets, and `extends` merging."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ar_sync.rules.fields import PolicyError, PolicyIssue, fail
from ar_sync.rules.safe_read import MAX_DEPTH, check_text, max_rules_bytes, read_rules_file

NAMED_LISTS = ("reminders", "late_fees", "escalations")
MAX_EXTENDS_DEPTH = 8
MAX_NODES = 50_000  # guards against alias bombs ("billion laughs")
# ... and the size they expand to: a few nodes aliasing one long string are few nodes but
# gigabytes once every alias is a value of its own (a string-alias bomb under MAX_NODES
# validated, then a live run tried to allocate ~27 GB). Every scalar is counted each time an
# alias repeats it; the total may be at most twice the rules-file size limit.
EXPANSION_FACTOR = 2


@dataclass
class _Budget:
    """What is left to read: nodes, and characters of keys and values as expanded."""

    nodes: int
    chars: int

    def spend(self, node: yaml.Node, file: str, path: tuple[str | int, ...]) -> None:
        self.nodes -= 1
        if isinstance(node, yaml.ScalarNode):
            self.chars -= len(node.value)
        line = node.start_mark.line + 1
        if self.nodes < 0:
            raise fail(file, line, "document too large (alias expansion?)", _path_text(path))
        if self.chars < 0:
            raise fail(file, line, f"the values expand to more than {self.limit:,} characters "
                                   "(aliases repeating long text?)", _path_text(path))

    @property
    def limit(self) -> int:
        return EXPANSION_FACTOR * max_rules_bytes()


# ============================================================================= YAML with lines


@dataclass
class Loc:
    """A YAML value with where it was written."""

    value: Any  # dict[str, Loc] | list[Loc] | scalar
    file: str
    line: int
    text: str | None = None  # the scalar as written


_constructor = yaml.constructor.SafeConstructor()
_BOOL_WORDS = {"true", "false"}


def _scalar(node: yaml.ScalarNode) -> Any:
    tag = node.tag
    if tag == "tag:yaml.org,2002:float":
        text = node.value.replace("_", "")
        try:
            value = Decimal(text)
        except InvalidOperation:
            return node.value  # .inf / .nan: left as text so validation rejects it
        return value if value.is_finite() else node.value
    if tag == "tag:yaml.org,2002:bool" and node.value.lower() not in _BOOL_WORDS:
        return node.value  # YAML 1.1 yes/no/on/off stay text ("NO" is Norway)
    return _constructor.construct_object(node, deep=True)


def _path_text(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _convert(node: yaml.Node, file: str, budget: _Budget,
             path: tuple[str | int, ...] = ()) -> Loc:
    budget.spend(node, file, path)
    line = node.start_mark.line + 1
    if len(path) > MAX_DEPTH:
        raise fail(file, line, f"nested more than {MAX_DEPTH} levels deep", _path_text(path))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Loc] = {}
        for key_node, value_node in node.value:
            kline = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                raise fail(file, kline, "keys must be plain names (merge keys and complex "
                                         "keys are not supported)")
            key = str(key_node.value)
            budget.spend(key_node, file, (*path, key))
            if key in out:
                raise fail(file, kline, f"duplicate key {key!r}")
            child = _convert(value_node, file, budget, (*path, key))
            out[key] = Loc(child.value, file, kline, child.text)
        return Loc(out, file, line)
    if isinstance(node, yaml.SequenceNode):
        return Loc([_convert(n, file, budget, (*path, i)) for i, n in enumerate(node.value)],
                    file, line)
    assert isinstance(node, yaml.ScalarNode)
    try:
        value = _scalar(node)
    except (yaml.YAMLError, ValueError) as exc:
        raise fail(file, line, f"cannot read value {node.value!r}: {exc}",
                    _path_text(path)) from exc
    return Loc(value, file, line, node.value)


def _compose(text: str, file: str) -> Loc:
    check_text(text, file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise fail(file, None, "nested too deeply to read") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        at = text.count("\n", 0, exc.position) + 1
        raise fail(file, at, f"character {exc.character!r} is not allowed") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise fail(file, line, f"YAML syntax error: {problem}") from exc
    if node is None:
        raise fail(file, None, "the file is empty: a rules file needs at least "
                                "`extends: default` (an empty file would turn follow-up off)")
    tree = _convert(node, file, _Budget(MAX_NODES, EXPANSION_FACTOR * max_rules_bytes()))
    if not isinstance(tree.value, dict):
        raise fail(file, tree.line, "a rules file must be a mapping of keys to values")
    return tree


def _merge(parent: Loc, child: Loc, path: tuple[str | int, ...]) -> Loc:
    """Child over parent: the file and its sections (calendar, exclude, a named item) merge
    key by key; anything deeper (holidays, when, to, amounts) is replaced whole."""
    if isinstance(parent.value, dict) and isinstance(child.value, dict) and len(path) <= 1:
        merged = dict(parent.value)
        for key, value in child.value.items():
            merged[key] = _merge(merged[key], value, (*path, key)) if key in merged else value
        return Loc(merged, child.file, child.line)
    if (len(path) == 1 and path[0] in NAMED_LISTS and isinstance(parent.value, list)
            and isinstance(child.value, list)):
        return _merge_named(parent, child)
    return child


def _item_name(item: Loc) -> str | None:
    if isinstance(item.value, dict) and "name" in item.value:
        name = item.value["name"].value
        return name if isinstance(name, str) else None
    return None


def _merge_named(parent: Loc, child: Loc) -> Loc:
    items = list(parent.value)
    names = [_item_name(i) for i in items]
    for item in child.value:
        name = _item_name(item)
        remove = isinstance(item.value, dict) and "remove" in item.value
        if remove:
            flag = item.value["remove"]
            if flag.value is not True:
                raise fail(item.file, flag.line, "remove must be true", "remove")
            if name not in names:
                raise fail(item.file, item.line, f"nothing named {name!r} to remove in the "
                                                  "rule set this one extends")
            del items[names.index(name)]
            names.remove(name)
        elif name is not None and name in names:
            index = names.index(name)
            items[index] = _merge(items[index], item, ("item",))
        else:
            items.append(item)
            names.append(name)
    return Loc(items, child.file, child.line)


def flatten(tree: Loc) -> tuple[Any, dict[tuple[str | int, ...], Loc]]:
    locs: dict[tuple[str | int, ...], Loc] = {}

    def walk(node: Loc, path: tuple[str | int, ...]) -> Any:
        locs[path] = node
        if isinstance(node.value, dict):
            return {k: walk(v, (*path, k)) for k, v in node.value.items()}
        if isinstance(node.value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node.value)]
        return node.value

    return walk(tree, ()), locs


# ============================================================================= shipped sets


def shipped_rules_dir() -> Path:
    """Where the shipped rule sets are: ar_sync/_rules in a wheel, <repo>/rules otherwise."""
    packaged = Path(str(resources.files("ar_sync"))) / "_rules"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "rules"


def shipped_rule_sets() -> dict[str, Path]:
    """Shipped rule set names ('default', 'gentle', ...) mapped to their files."""
    folder = shipped_rules_dir()
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def is_name(source: str) -> bool:
    return "/" not in source and "\\" not in source and not source.endswith((".yaml", ".yml"))


def _resolve_extends(value: Loc, base_dir: Path | None) -> Path:
    target = value.value
    if not isinstance(target, str) or not target.strip():
        raise fail(value.file, value.line, "must be a shipped rule set name or a relative path",
                    "extends")
    if is_name(target):  # a shipped rule set
        shipped = shipped_rule_sets()
        if target not in shipped:
            known = ", ".join(shipped) or "none"
            raise fail(value.file, value.line, f"no shipped rule set named {target!r} "
                        f"(shipped: {known})", "extends")
        return shipped[target]
    # Otherwise a .yaml file in this file's own folder or below it: never /etc/passwd, never
    # a path that climbs out with `..` or a symlink.
    folder = (base_dir or Path.cwd()).resolve()
    path = Path(target)
    if path.is_absolute() or path.suffix not in (".yaml", ".yml"):
        raise fail(value.file, value.line, f"{target!r}: extends takes a shipped rule set "
                    "name or a relative path to a .yaml file under this file's folder",
                    "extends")
    resolved = (folder / path).resolve()
    if not resolved.is_relative_to(folder):
        raise fail(value.file, value.line, f"{target!r} is outside this file's folder "
                    f"({display(folder)})", "extends")
    if not resolved.is_file():
        raise fail(value.file, value.line, f"file not found: {target}", "extends")
    return resolved


def with_chain(issue: PolicyIssue, step: str) -> PolicyIssue:
    """The issue with the `extends` chain that led to its file."""
    before, sep, after = issue.message.rpartition(" (via ")
    if sep:
        return replace(issue, message=f"{before} (via {step}, {after}")
    return replace(issue, message=f"{issue.message} (via {step})")


def read_tree(text: str, file: str, base_dir: Path | None, chain: tuple[Path, ...],
               chains: dict[str, str] | None = None) -> Loc:
    """The merged tree; `chains` gets, for each extended file, how it was reached."""
    tree = _compose(text, file)
    ext = tree.value.get("extends")
    if ext is None or ext.value is None:
        return tree
    parent_path = _resolve_extends(ext, base_dir).resolve()
    if parent_path in chain:
        loop = " -> ".join(display(p) for p in (*chain, parent_path))
        raise fail(ext.file, ext.line, f"extends cycle: {loop}", "extends")
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise fail(ext.file, ext.line, "extends chain too deep", "extends")
    parent_file = display(parent_path)
    try:
        parent_text = read_rules_file(parent_path, parent_file)
        parent = read_tree(parent_text, parent_file, parent_path.parent,
                            (*chain, parent_path), chains)
    except PolicyError as exc:
        raise PolicyError([with_chain(i, f"{file} extends {parent_file}")
                           for i in exc.issues]) from None
    if chains is not None:
        step = f"{file} extends {parent_file}"
        for name, via in list(chains.items()):
            if via.startswith(f"{parent_file} extends "):
                chains[name] = f"{step}, {via}"
        chains[parent_file] = step
    parent.value.pop("extends", None)
    return _merge(parent, tree, ())
