"""The business metadata model: tables, columns, glossary terms, owners and column lineage.

These pydantic models are what `catalog/*.yml` files hold and what search, the SQL guard and the
agent read; they carry no behaviour beyond lookups and never touch the warehouse.
"""
from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from catalog.semantic.spec import SemanticManifest


class _Meta(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PiiTag(str, Enum):
    email = "email"
    phone = "phone"
    card = "card"
    national_id = "national_id"
    name = "name"
    address = "address"
    ip_address = "ip_address"
    date_of_birth = "date_of_birth"
    other = "other"


class ColumnStats(_Meta):
    row_count: int | None = None
    null_count: int | None = None
    distinct_count: int | None = None
    min: Any = None
    max: Any = None
    top_values: list[tuple[Any, int]] = Field(default_factory=list)
    profiled_at: str | None = None


class Column(_Meta):
    name: str
    type: str = ""
    description: str = ""
    pii: PiiTag | None = None
    tags: list[str] = Field(default_factory=list)
    synonyms: list[str] = Field(default_factory=list)
    sample_values: list[Any] = Field(default_factory=list)
    stats: ColumnStats | None = None


class Table(_Meta):
    name: str
    description: str = ""
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    synonyms: list[str] = Field(default_factory=list)
    source: str | None = Field(None, description="where the data came from: a file path, `derived`, `demo`")
    primary_key: list[str] = Field(default_factory=list)
    row_count: int | None = None
    columns: list[Column] = Field(default_factory=list)

    def column(self, name: str) -> Column | None:
        low = name.lower()
        return next((c for c in self.columns if c.name.lower() == low), None)

    @property
    def pii_columns(self) -> list[Column]:
        return [c for c in self.columns if c.pii is not None]


class GlossaryTerm(_Meta):
    name: str
    definition: str = ""
    synonyms: list[str] = Field(default_factory=list)
    owner: str | None = None
    # What the term points at: "table", "table.column" or "metric:name".
    related: list[str] = Field(default_factory=list)


class Owner(_Meta):
    name: str
    email: str | None = None
    team: str | None = None
    description: str = ""


class ColumnLineage(_Meta):
    """One derived column and the source columns it is computed from (sqlglot lineage)."""
    table: str
    column: str
    sources: list[str] = Field(default_factory=list, description="`table.column` of each source")
    sql: str = ""
    created_at: str | None = None


class Catalog(BaseModel):
    """Everything the workspace knows about its data, as loaded from `catalog/`."""
    tables: dict[str, Table] = Field(default_factory=dict)
    glossary: dict[str, GlossaryTerm] = Field(default_factory=dict)
    owners: dict[str, Owner] = Field(default_factory=dict)
    semantic: SemanticManifest = Field(default_factory=SemanticManifest)
    lineage: list[ColumnLineage] = Field(default_factory=list)

    def table(self, name: str) -> Table | None:
        t = self.tables.get(name)
        if t is None:
            low = name.lower()
            t = next((v for k, v in self.tables.items() if k.lower() == low), None)
        return t

    def lineage_of(self, table: str, column: str) -> list[ColumnLineage]:
        return [x for x in self.lineage if x.table.lower() == table.lower() and x.column.lower() == column.lower()]
