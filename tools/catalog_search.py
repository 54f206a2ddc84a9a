"""Tool: search the catalog (tables, columns, glossary terms, metrics, dimensions) by words.

It reads the search index only; it never loads data rows.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from catalog.results import QueryResult
from tools.base import LatheTool, ToolArgs, ToolOutput
from tools.risk import Risk


class SearchCatalogArgs(ToolArgs):
    text: str = Field(..., min_length=1, description="words to look for, e.g. 'customer email'")
    k: int = Field(10, ge=1, le=50, description="how many results")
    kinds: list[Literal["table", "column", "glossary", "metric", "dimension"]] | None = Field(
        None, description="only these kinds of things")


class SearchCatalog(LatheTool):
    name: str = "search_catalog"
    description: str = "Search the data catalog for tables, columns, glossary terms, metrics and dimensions."
    args_schema: type[BaseModel] = SearchCatalogArgs
    risk = Risk.read

    def _run(self, text: str, k: int = 10, kinds: list[str] | None = None) -> ToolOutput:
        from catalog.search import CatalogSearch

        hits = CatalogSearch.for_workspace(self.workspace).search(text, k=k, kinds=kinds)
        result = QueryResult(sql="", columns=["kind", "name", "table", "score", "about", "why"],
                             rows=[[h.kind, h.name, h.table, h.score, h.snippet, "; ".join(h.why)] for h in hits])
        if not hits:
            return ToolOutput(text=f"nothing in the catalog matches `{text}`", result=result)
        names = ", ".join(f"{h.kind} `{h.table + '.' if h.table and h.kind in ('column', 'dimension') else ''}{h.name}`"
                          for h in hits)
        return ToolOutput(text=f"{len(hits)} matches for `{text}`: {names}", result=result)
