"""The answer of a query, semantic or SQL: the SQL that ran, columns, rows and what to know about them."""
from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from typing import Any

from pydantic import BaseModel, Field


def json_value(v: Any) -> Any:
    """A DuckDB value as plain JSON (dates as ISO text, decimals as numbers, NaN as null)."""
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    return v


class QueryResult(BaseModel):
    sql: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = Field(False, description="more rows existed than the row limit allowed")
    warnings: list[str] = Field(default_factory=list)
    masked_columns: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sql": self.sql, "columns": self.columns,
                               "rows": [[json_value(v) for v in r] for r in self.rows]}
        if self.truncated:
            out["truncated"] = True
        if self.warnings:
            out["warnings"] = self.warnings
        if self.masked_columns:
            out["masked_columns"] = self.masked_columns
        return out
