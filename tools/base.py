"""The shape of every Lathe tool: a typed LangChain tool bound to a workspace and a principal, with a risk.

A tool is a thin wrapper over `catalog/` or `runtimes/`; it never imports `agent/` and never decides
whether it may run (the review step does).
"""
from __future__ import annotations

from collections.abc import Iterable
from copy import copy
from typing import Any, ClassVar

from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

from catalog.results import QueryResult
from core.workspace import Workspace
from tools.risk import Risk


class ToolArgs(BaseModel):
    """Base of every tool's arguments: unknown arguments are errors, not silently dropped."""
    model_config = ConfigDict(extra="forbid")


def spec_fields(spec: type[BaseModel], exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of the runtime spec a tool calls, less `exclude`, as `pydantic.create_model` takes them: a tool's
    arguments are built from its spec, so that a field added to the spec is an argument of the tool too."""
    left_out = set(exclude)
    return {name: (f.annotation, copy(f)) for name, f in spec.model_fields.items() if name not in left_out}


def open_choice_fields(spec: type[BaseModel], include: Iterable[str]) -> dict[str, Any]:
    """`include`d fields of a runtime spec as choices still open: each may be None (not chosen yet) and is None
    until chosen; one with a default factory (an empty dict of overrides) keeps it. For `pydantic.create_model`."""
    fields: dict[str, Any] = {}
    for name in include:
        field = copy(spec.model_fields[name])
        if field.default_factory is None:
            field.default = None
            fields[name] = (field.annotation | None, field)
        else:
            fields[name] = (field.annotation, field)
    return fields


class ToolOutput(BaseModel):
    """What a tool answers: a short text (read by people and by the LLM) and, where it has rows, a table."""
    text: str
    result: QueryResult | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="structured extras, plain JSON")
    reveal: dict[str, str] = Field(default_factory=dict, description="secrets shown to the person once (an API "
                                   "key): streamed to the front-end, never kept in the thread")


class LatheTool(BaseTool):
    """Subclasses set `name`, `description`, `args_schema` (a pydantic model) and `risk`, and implement `_run`."""
    model_config = ConfigDict(arbitrary_types_allowed=True)

    risk: ClassVar[Risk] = Risk.read
    workspace: Workspace
    principal: Any = None  # a core.principal.Principal; None means the local user

    @classmethod
    def tool_name(cls) -> str:
        return cls.model_fields["name"].default

    @classmethod
    def schema(cls) -> type[BaseModel]:
        return cls.model_fields["args_schema"].default

    @classmethod
    def summary(cls) -> str:
        return cls.model_fields["description"].default

    @classmethod
    def risk_for(cls, args: dict[str, Any]) -> Risk:
        """The risk of one call with these (validated) arguments: the tool's own, unless a call costs more."""
        return cls.risk

    def estimate(self, args: BaseModel) -> str:
        """A short, human estimate of what running with `args` costs; no side effects."""
        return ""

    def run_validated(self, args: BaseModel) -> ToolOutput:
        """Run with arguments already validated against `args_schema`."""
        out = self.invoke(args.model_dump())
        if not isinstance(out, ToolOutput):
            raise TypeError(f"tool `{self.name}` returned {type(out).__name__}, not ToolOutput")
        return out


def principal_or_local(principal: Any) -> Any:
    """The principal a catalog call acts for: the one given, else the local user."""
    if principal is not None:
        return principal
    from core.principal import Principal

    return Principal.local_admin()


def table_text(result: QueryResult, show: int = 5) -> str:
    """A few lines for an LLM or a log: the row count, the columns and the first rows."""
    n = len(result.rows)
    head = f"{n}{'+' if result.truncated else ''} row{'s' if n != 1 else ''}; columns: {', '.join(result.columns)}"
    rows = [", ".join(str(v) for v in r) for r in result.to_json()["rows"][:show]]
    lines = [head, *rows]
    if n > show:
        lines.append(f"... ({n - show} more)")
    lines += [f"warning: {w}" for w in result.warnings]
    if result.masked_columns:
        lines.append("masked (PII): " + ", ".join(result.masked_columns))
    return "\n".join(lines)
