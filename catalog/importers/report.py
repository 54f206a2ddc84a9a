"""What an import changed: tables loaded, metadata files applied, semantic definitions added or updated.

A plain record for the CLI and the agent to print; it never changes anything itself.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

_SHOWN = 20  # metadata files listed one per line; the rest are summed up (a catalog folder has thousands)


class TableImport(BaseModel):
    name: str
    source: str
    action: Literal["created", "replaced"]
    rows: int
    columns: int


class MetadataImport(BaseModel):
    path: str
    format: Literal["lathe", "dbt"]
    tables: list[str] = Field(default_factory=list)
    glossary: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list)


class SemanticImport(BaseModel):
    project: str
    catalog_file: str
    files: list[str] = Field(default_factory=list)
    semantic_models_added: list[str] = Field(default_factory=list)
    semantic_models_updated: list[str] = Field(default_factory=list)
    semantic_models_removed: list[str] = Field(default_factory=list)
    metrics_added: list[str] = Field(default_factory=list)
    metrics_updated: list[str] = Field(default_factory=list)
    metrics_removed: list[str] = Field(default_factory=list)


class ImportReport(BaseModel):
    tables: list[TableImport] = Field(default_factory=list)
    metadata: list[MetadataImport] = Field(default_factory=list)
    semantic: list[SemanticImport] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="files skipped or parts ignored, and why")
    warnings: list[str] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.tables or self.metadata or self.semantic)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def lines(self) -> list[str]:
        """One line per change, then notes and warnings: what `lathe catalog import` prints."""
        out = [f"table {t.name}: {t.action}, {t.rows:,} rows, {t.columns} columns (from {t.source})" for t in self.tables]
        for m in self.metadata[:_SHOWN]:
            parts = [f"{len(getattr(m, k))} {label}" for k, label in
                     (("tables", "table(s)"), ("glossary", "glossary term(s)"), ("owners", "owner(s)")) if getattr(m, k)]
            out.append(f"metadata ({m.format}) {m.path}: " + (", ".join(parts) or "nothing applied"))
        if len(self.metadata) > _SHOWN:
            rest = self.metadata[_SHOWN:]
            out.append(f"metadata: {len(rest)} more file(s), {sum(len(m.tables) for m in rest)} more table(s)")
        for s in self.semantic:
            counts = []
            for key, label in (("semantic_models", "semantic model(s)"), ("metrics", "metric(s)")):
                done = [f"{len(getattr(s, f'{key}_{what}'))} {what}" for what in ("added", "updated", "removed")
                        if getattr(s, f"{key}_{what}")]
                if done:
                    counts.append(f"{label} " + ", ".join(done))
            out.append(f"semantic project {s.project} -> catalog/semantic/{s.catalog_file}: "
                       + ("; ".join(counts) or "empty"))
        if not self.changed:
            out.append("nothing imported")
        out += [f"note: {n}" for n in self.notes]
        out += [f"warning: {w}" for w in self.warnings]
        return out
