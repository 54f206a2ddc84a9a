"""Reading and writing the workspace's YAML with errors that name the file and line.

Validation errors from pydantic are mapped back to the line of the offending key, so an analyst
editing `catalog/*.yml` by hand is told exactly where to look. It never writes partial files.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from catalog.errors import UserError

try:  # libyaml is much faster on large catalogs; the pure-Python classes are the fallback
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

M = TypeVar("M", bound=BaseModel)


class CatalogFileError(UserError):
    """A metadata file that cannot be read: says which file, which line and what is wrong."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path, self.line, self.message = str(path), line, message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def _lines(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    """Record the line of every key and item below `node`."""
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
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CatalogFileError(path, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        docs = []
        for node in yaml.compose_all(text, Loader=_Loader):
            if node is None:
                continue
            lines: dict[tuple, int] = {}
            _lines(node, (), lines)
            docs.append((_Loader("").construct_document(node), lines))
        return docs
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise CatalogFileError(path, line, f"malformed YAML: {what}") from None


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
