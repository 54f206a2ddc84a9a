"""Reading and writing the workspace's YAML with errors that name the file and line.

Validation errors from pydantic are mapped back to the line of the offending key, so an analyst
editing `catalog/*.yml` by hand is told exactly where to look. Reading is bounded (file size, nesting,
nodes after alias expansion) and refuses duplicate keys. It never writes partial files.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.errors import UserError

try:  # libyaml is much faster on large catalogs; the pure-Python classes are the fallback
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

M = TypeVar("M", bound=BaseModel)

# Bounds on what one file may hold. Aliases are counted each time they are used, so a few hundred bytes of
# nested anchors (a "billion laughs") are refused instead of being expanded by whatever walks the data.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_NODES = 500_000
MAX_DEPTH = 200


class CatalogFileError(UserError):
    """A metadata file that cannot be read: says which file, which line and what is wrong."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path, self.line, self.message = str(path), line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_bounds(node: yaml.Node, path: Path) -> None:
    """Refuse recursive aliases, nesting deeper than `MAX_DEPTH`, more than `MAX_NODES` nodes once aliases are
    expanded, and a key given twice in one mapping. Linear in the composed (unexpanded) nodes."""
    size: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(node, 1, False)]
    while stack:
        n, depth, done = stack.pop()
        key = id(n)
        if done:
            active.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(n))
            if size[key] > MAX_NODES:
                raise CatalogFileError(path, n.start_mark.line + 1, f"more than {MAX_NODES:,} values once its "
                                       "aliases are expanded; write the content out (or split the file)")
            if isinstance(n, yaml.MappingNode):
                _check_duplicate_keys(n, path)
            continue
        if key in size:
            continue
        if key in active:
            raise CatalogFileError(path, n.start_mark.line + 1, "an alias refers to a node that contains it "
                                   "(a recursive anchor); write the value out instead")
        if depth > MAX_DEPTH:
            raise CatalogFileError(path, n.start_mark.line + 1, f"nested more than {MAX_DEPTH} levels deep")
        active.add(key)
        stack.append((n, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(n) if id(c) not in size)


def _check_duplicate_keys(node: yaml.MappingNode, path: Path) -> None:
    seen: dict[str, int] = {}
    for k, _ in node.value:
        if not isinstance(k, yaml.ScalarNode) or k.tag == "tag:yaml.org,2002:merge":
            continue
        line = k.start_mark.line + 1
        if k.value in seen:
            raise CatalogFileError(path, line, f"key `{k.value}` appears twice in one mapping (first at line "
                                   f"{seen[k.value]}); keep one")
        seen[k.value] = line


def _lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    """Record the line of every key and item below `node` (bounded: run `_check_bounds` first)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else str(k.start_mark)
            lines[path + (key,)] = k.start_mark.line + 1
            _lines(v, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _lines(v, path + (i,), lines)


def load_documents(path: Path) -> list[tuple[Any, dict[tuple, int]]]:
    """Every YAML document of a file, each with a map from key path to line number."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise CatalogFileError(path, None, f"cannot read: {e.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise CatalogFileError(path, None, f"{size:,} bytes, more than the {MAX_FILE_BYTES // 2**20} MiB a "
                               "metadata file may have; split it into several files")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CatalogFileError(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        docs = []
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            _check_bounds(node, path)
            lines: dict[tuple, int] = {}
            _lines(node, (), lines)
            docs.append((_Loader("").construct_document(node), lines))
        return docs
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise CatalogFileError(path, line, f"malformed YAML: {what}") from None
    except yaml.YAMLError as e:  # libyaml's own limits (nesting) come without a mark
        raise CatalogFileError(path, None, f"malformed YAML: {str(e).splitlines()[0]}") from None


def load_yaml(path: Path) -> tuple[Any, dict[tuple, int]]:
    docs = load_documents(path)
    return docs[0] if docs else ({}, {})


def line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    """The line of the deepest key of `loc` that the file has."""
    for n in range(len(loc), -1, -1):
        if tuple(loc[:n]) in lines:
            return lines[tuple(loc[:n])]
    return None


def validate(model: type[M], data: Any, path: Path, lines: dict[tuple, int], prefix: tuple = ()) -> M:
    """`model.model_validate(data)`, with the first error reported at its file and line."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = prefix + tuple(err["loc"])
        field = ".".join(str(x) for x in loc) or "(document)"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise CatalogFileError(path, line_of(lines, loc), f"{field}: {err['msg']}{more}") from None


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
