"""Tools: answers in words from the catalog's metadata: who owns a table or glossary term, what a term or
metric means, which columns are PII, and where a column's values come from (lineage).

They read the catalog files only, never the warehouse rows; PII values are never shown.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from core.errors import UserError
from catalog.metadata import Catalog
from catalog.suggestions import unknown
from tools.base import LatheTool, ToolArgs, ToolOutput
from tools.risk import Risk


def _catalog(tool: LatheTool) -> Catalog:
    from catalog.store import CatalogStore

    return CatalogStore(tool.workspace).load()


def _term(catalog: Catalog, name: str) -> str | None:
    """The glossary term a name or synonym stands for (any case)."""
    low = name.strip().lower()
    return next((g.name for g in catalog.glossary.values()
                 if low == g.name.lower() or low in (s.lower() for s in g.synonyms)), None)


class OwnersArgs(ToolArgs):
    table: str | None = Field(None, description="a table's name; omit both to list every owner")
    term: str | None = Field(None, description="a glossary term (or one of its synonyms)")


class WhoOwns(LatheTool):
    name: str = "who_owns"
    description: str = ("Who owns a table or a glossary term, with the owner's team and contact; with no arguments, "
                        "every owner and the tables they own. Use it for \"whom do I ask about X?\".")
    args_schema: type[BaseModel] = OwnersArgs
    risk = Risk.read

    def _run(self, table: str | None = None, term: str | None = None) -> ToolOutput:
        from catalog.metadata_answers import owners_text

        catalog = _catalog(self)
        found = None
        if term is not None:
            found = _term(catalog, term)
            if found is None:
                raise UserError(unknown("glossary term", term, catalog.glossary))
        return ToolOutput(text=owners_text(catalog, table, found))


class DefineArgs(ToolArgs):
    name: str = Field(..., min_length=1, description="a glossary term, abbreviation or metric name, e.g. 'AOV'")


class DefineTerm(LatheTool):
    name: str = "define_term"
    description: str = ("What a glossary term or abbreviation means and how its metric is computed (from the glossary "
                        "and the semantic layer).")
    args_schema: type[BaseModel] = DefineArgs
    risk = Risk.read

    def _run(self, name: str) -> ToolOutput:
        from catalog.metadata_answers import definition_text

        catalog = _catalog(self)
        term = _term(catalog, name)
        metric = next((m.name for m in catalog.semantic.metrics if m.name.lower() == name.strip().lower()
                       or (m.label or "").lower() == name.strip().lower()), None)
        if term is None and metric is None:
            raise UserError(unknown("glossary term or metric", name, [*catalog.glossary,
                                                                       *(m.name for m in catalog.semantic.metrics)]))
        return ToolOutput(text=definition_text(catalog, term, metric if term is None else None))


class PiiArgs(ToolArgs):
    table: str | None = Field(None, description="a table's name; omit it for the whole catalog")


class PiiColumns(LatheTool):
    name: str = "pii_columns"
    description: str = "The columns tagged as personal data (PII), in one table or the whole catalog."
    args_schema: type[BaseModel] = PiiArgs
    risk = Risk.read

    def _run(self, table: str | None = None) -> ToolOutput:
        from catalog.metadata_answers import pii_text

        return ToolOutput(text=pii_text(_catalog(self), table))


class LineageArgs(ToolArgs):
    table: str = Field(..., min_length=1, description="a table's name")
    column: str | None = Field(None, description="one of its columns; omit it for every column")


class ColumnLineage(LatheTool):
    name: str = "column_lineage"
    description: str = "Where a column's values come from: the source columns a derived table's column is computed from."
    args_schema: type[BaseModel] = LineageArgs
    risk = Risk.read

    def _run(self, table: str, column: str | None = None) -> ToolOutput:
        from catalog.metadata_answers import lineage_text

        return ToolOutput(text=lineage_text(_catalog(self), table, column))
