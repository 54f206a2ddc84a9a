"""A training dataset from the catalog, end to end: `DatasetSpec` → `plan_dataset` (read, detect, check,
refuse) → `prepare` (scrub, de-duplicate, hash, split, shape for TRL).

The plan has no side effects and is what the agent shows for approval; `prepare` writes nothing either
unless `PreparedDataset.save` is called. `datasets` is imported inside functions to keep imports cheap.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from catalog.data_source import SourceFields
from core.errors import UserError, validate_input
from core.principal import Principal
from core.workspace import Workspace
from runtimes.training.datasets.examples import Example
from runtimes.training.datasets.formats import MAP_HINT, ColumnMapping, DatasetFormat, detect_mapping
from runtimes.training.datasets.row_problems import BadRow
from runtimes.training.datasets.sources import read_source
from runtimes.training.datasets.validation import check_fit, check_rows, refuse_if_too_many
from runtimes.training.recipes import Technique


class DatasetSpec(SourceFields):
    """What the user asked for: the rows (`table` or `sql`), the technique and settings that all have defaults."""
    model_config = ConfigDict(extra="forbid")

    technique: Technique
    format: DatasetFormat | None = Field(None, description="the data's format; inferred when left out")
    mapping: dict[str, str] | None = Field(None, description="role → column, overriding the inferred mapping")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="share of rows held out for evaluation")
    seed: int = Field(42, description="seed of the train/eval split")
    deduplicate: bool = True
    scrub_pii: bool = Field(False, description="replace values of PII-tagged columns found in the text")
    pii_tables: list[str] | None = Field(None, description="tables whose PII to scrub; default: those read")
    max_bad_fraction: float = Field(0.05, ge=0, le=1, description="refuse the dataset above this share of bad rows")
    max_chars: int = Field(32_000, gt=0, description="a row with more text than this is bad (too long)")

    @classmethod
    def parse(cls, data: dict[str, Any]) -> "DatasetSpec":
        """Validate what a user or the agent gave; a bad field is a `UserError` naming the field."""
        return validate_input(cls, data, "dataset")


@dataclass
class DatasetPlan:
    """The checked dataset, before any compute: its SQL, mapping (for approval), counts and bad rows."""
    spec: DatasetSpec
    sql: str
    tables: list[str]
    mapping: ColumnMapping
    rows_read: int
    bad_rows: list[BadRow]
    examples: list[tuple[int, Example]] = field(repr=False)

    def describe(self) -> str:
        bad = f", {len(self.bad_rows):,} bad rows left out" if self.bad_rows else ""
        return (f"{self.rows_read:,} rows from {', '.join(self.tables) or 'the query'}; "
                f"{self.mapping.describe()}{bad}")


@dataclass
class PreparedDataset:
    technique: str
    mapping: ColumnMapping
    sql: str
    tables: list[str]
    content_hash: str  # sha256 of the prepared rows (after scrubbing and de-duplication), in source order
    train: Any  # datasets.Dataset in TRL's column format for the technique
    eval: Any | None
    rows_read: int
    bad_rows: list[BadRow]
    duplicates_removed: int
    pii_replacements: int
    pii_columns: list[str]

    def summary(self) -> dict[str, Any]:
        """What a job's lineage records about its data."""
        return {"technique": self.technique, "sql": self.sql, "tables": self.tables,
                "content_hash": self.content_hash, "format": self.mapping.format.value,
                "mapping": self.mapping.columns, "rows_read": self.rows_read,
                "train_rows": len(self.train), "eval_rows": len(self.eval) if self.eval is not None else 0,
                "bad_rows": len(self.bad_rows), "duplicates_removed": self.duplicates_removed,
                "pii_replacements": self.pii_replacements, "pii_columns": self.pii_columns,
                "columns": list(self.train.column_names)}

    def save(self, folder: Path) -> Path:
        """`train.jsonl`, `eval.jsonl` and `dataset.json` (the summary) in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        for name, ds in (("train", self.train), ("eval", self.eval)):
            if ds is not None:
                ds.to_json(str(folder / f"{name}.jsonl"), lines=True, force_ascii=False)
        (folder / "dataset.json").write_text(json.dumps(self.summary(), indent=2), encoding="utf-8")
        return folder


def plan_dataset(ws: Workspace, spec: DatasetSpec, *, principal: Principal | None = None) -> DatasetPlan:
    """Read the source, infer (or take) the mapping, check every row; refuse a dataset with too many bad
    rows. Raises `UserError` (`DatasetRefused` for bad rows) before any compute is spent."""
    source = read_source(ws, spec.source, principal=principal)
    try:
        mapping = detect_mapping(source.columns, source.rows, format=spec.format, override=spec.mapping)
    except UserError as no_format:
        if spec.mapping or spec.format:
            raise
        try:  # RLAIF needs no reply: a table of prompts alone is its data
            mapping = detect_mapping(source.columns, source.rows, format=DatasetFormat.prompt_only)
        except UserError:
            raise no_format from None
        if spec.technique != "rlaif":
            try:
                check_fit(mapping, spec.technique)
            except UserError as unfit:
                raise UserError(f"{unfit}; if a column holds the replies, {MAP_HINT}") from None
    check_fit(mapping, spec.technique)
    good, bad = check_rows(mapping, spec.technique, source.columns, source.rows, max_chars=spec.max_chars)
    refuse_if_too_many(bad, len(source.rows), spec.max_bad_fraction)
    return DatasetPlan(spec=spec, sql=source.sql, tables=source.tables, mapping=mapping,
                       rows_read=len(source.rows), bad_rows=bad, examples=good)


def prepare(plan: DatasetPlan, ws: Workspace | None = None) -> PreparedDataset:
    """Scrub PII (needs `ws`), de-duplicate, hash, split and shape the planned rows for the technique."""
    from datasets import Dataset

    spec = plan.spec
    examples = [ex for _, ex in plan.examples]
    replacements, pii_columns = 0, []
    if spec.scrub_pii:
        if ws is None:
            raise UserError("scrubbing PII needs the workspace (its catalog's PII tags)")
        from runtimes.training.datasets.pii_scrub import build_scrubber

        scrubber = build_scrubber(ws, spec.pii_tables if spec.pii_tables is not None else plan.tables)
        examples = [_scrubbed(ex, scrubber.scrub) for ex in examples]
        replacements, pii_columns = scrubber.replaced, scrubber.columns
    records = [_record(ex, spec.technique, plan.mapping.format) for ex in examples]
    duplicates = 0
    if spec.deduplicate:
        seen: set[str] = set()
        unique = []
        for r in records:
            key = json.dumps(r, sort_keys=True, ensure_ascii=False)
            if key not in seen:
                seen.add(key)
                unique.append(r)
        duplicates, records = len(records) - len(unique), unique
    digest = hashlib.sha256()
    for r in records:
        digest.update(json.dumps(r, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n")
    train_idx, eval_idx = _split(len(records), spec.eval_fraction, spec.seed)
    train = Dataset.from_list([records[i] for i in train_idx])
    evaluation = Dataset.from_list([records[i] for i in eval_idx]) if eval_idx else None
    return PreparedDataset(technique=spec.technique, mapping=plan.mapping, sql=plan.sql, tables=plan.tables,
                           content_hash=digest.hexdigest(), train=train, eval=evaluation, rows_read=plan.rows_read,
                           bad_rows=plan.bad_rows, duplicates_removed=duplicates, pii_replacements=replacements,
                           pii_columns=pii_columns)


def prepare_dataset(ws: Workspace, spec: DatasetSpec, *, principal: Principal | None = None) -> PreparedDataset:
    return prepare(plan_dataset(ws, spec, principal=principal), ws)


def _split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/eval indices, each kept in source order; at least one eval row when asked for any."""
    if fraction <= 0 or n < 2:
        return list(range(n)), []
    order = list(range(n))
    random.Random(seed).shuffle(order)
    k = min(n - 1, max(1, round(n * fraction)))
    return sorted(order[k:]), sorted(order[:k])


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _record(ex: Example, technique: str, fmt: DatasetFormat) -> dict[str, Any]:
    """One row in TRL's conversational format for the technique."""
    if technique == "sft":
        if ex.messages is not None:
            return {"messages": ex.messages}
        return {"prompt": ex.prompt, "completion": _assistant(ex.completion or "")}
    if technique == "dpo":
        return {"prompt": ex.prompt, "chosen": _assistant(ex.chosen or ""), "rejected": _assistant(ex.rejected or "")}
    if technique == "rlvr":
        # Extra columns reach GRPO's reward functions as keyword arguments.
        return {"prompt": ex.prompt, "answer": ex.answer, "solution": ex.completion}
    reference = ex.chosen if fmt in (DatasetFormat.preference, DatasetFormat.hh_rlhf) else ex.completion
    return {"prompt": ex.prompt, "reference": reference}


def _scrubbed(ex: Example, scrub: Any) -> Example:
    def msgs(ms: list[dict[str, str]] | None) -> list[dict[str, str]] | None:
        return None if ms is None else [{**m, "content": scrub(m["content"])} for m in ms]

    def text(t: str | None) -> str | None:
        return None if t is None else scrub(t)

    return replace(ex, prompt=msgs(ex.prompt) or [], messages=msgs(ex.messages), completion=text(ex.completion),
                   chosen=text(ex.chosen), rejected=text(ex.rejected), answer=text(ex.answer))
