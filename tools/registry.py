"""Finds the agent's tools: every `LatheTool` subclass defined in a module of the `tools` package.

A new feature adds tools as new files here and nothing else changes. It never runs a tool.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from core.errors import UserError
from catalog.suggestions import unknown
from core.workspace import Workspace
from tools.base import LatheTool
from tools.risk import Risk

_NOT_TOOLS = frozenset({"base", "registry", "risk"})


class ToolRegistry:
    def __init__(self, tools: Mapping[str, type[LatheTool]]):
        self._tools = dict(tools)

    @classmethod
    def discover(cls, extra_modules: Iterable[str] = ()) -> "ToolRegistry":
        """Every tool of the `tools` package, plus those of `extra_modules` (dotted names)."""
        return _discover(tuple(extra_modules))

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def get(self, name: str) -> type[LatheTool]:
        try:
            return self._tools[name]
        except KeyError:
            raise UserError(unknown("tool", name, self._tools)) from None

    def risk(self, name: str) -> Risk:
        return self.get(name).risk

    def schema(self, name: str) -> type[BaseModel]:
        return self.get(name).schema()

    def bind(self, workspace: Workspace, principal: Any = None) -> dict[str, LatheTool]:
        """Instances that act on `workspace` for `principal`, by name."""
        return {n: t(workspace=workspace, principal=principal) for n, t in self._tools.items()}


def tools_in(module: Any) -> list[type[LatheTool]]:
    """The tool classes a module defines itself (not those it imports)."""
    return [v for v in vars(module).values()
            if isinstance(v, type) and issubclass(v, LatheTool) and v is not LatheTool
            and v.__module__ == module.__name__ and v.model_fields.get("name") is not None
            and isinstance(v.model_fields["name"].default, str)]


@lru_cache(maxsize=8)
def _discover(extra_modules: tuple[str, ...]) -> ToolRegistry:
    import tools

    names = [f"tools.{m.name}" for m in pkgutil.iter_modules(tools.__path__) if m.name not in _NOT_TOOLS]
    found: dict[str, type[LatheTool]] = {}
    for modname in [*sorted(names), *extra_modules]:
        for t in tools_in(importlib.import_module(modname)):
            name = t.tool_name()
            if name in found and found[name] is not t:
                raise UserError(f"tool `{name}` is defined twice: in {found[name].__module__} and in {t.__module__}")
            found[name] = t
    return ToolRegistry(found)
