"""The offline planner's reading of "predict X" requests: which catalog table holds the things predicted, what the
label is (churn, or a column of the table or of its lines), which tables to draw features from, and the task, family,
budget and horizon said in words. It reads words against the catalog's names and synonyms only; the proposal itself
(label SQL, features, split) is `tools/tabular_training.py`'s.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.planners.intents import find_tables
from agent.planners.question_words import FILLER, Token, stems
from catalog.metadata import Catalog, Table

# Words that ask for a model whatever else is said.
MODEL_WORDS = frozenset({"train", "training", "classifier", "classify", "classification", "regression", "regressor",
                         "model", "models", "ml"})
# Words that ask for a prediction: a model only when they are about rows of a table, not a total for a period.
PREDICT_WORDS = frozenset({"predict", "predicts", "predicting", "prediction", "predictions", "forecast", "forecasting",
                           "likely", "likelihood", "probability", "propensity", "chance", "risk"})
CHURN_WORDS = frozenset({"churn", "churns", "churned", "churning", "leave", "leaving", "lapse", "lapsing", "quit",
                         "attrition", "retention", "retain", "lose", "lost", "defect", "inactive"})
_TOTALS = ("how many", "how much", "total")
_SOURCE_CUES = frozenset({"from", "using", "based", "with"})
_HORIZONS = {"day": 1, "week": 7, "month": 30, "quarter": 90, "year": 365}
# How people name an amount of money or size, and the words a column that holds one is described with.
_AMOUNT_WORDS = frozenset({"value", "spend", "spending", "worth", "size", "revenue", "sales", "amount", "total"})
_AMOUNT_COLUMNS = frozenset({"amount", "revenue", "sales", "usd", "value", "total"})
_NUMBER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL")
_SNAKE_AFTER = re.compile(r"\b(?:from|on|using|in|of)\s+(?:the\s+)?`?([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`?", re.I)
_BEFORE_TABLE = re.compile(r"\b(?:the|a|our|my)\s+`?([A-Za-z_][\w]*)`?\s+table\b", re.I)
_AFTER_TABLE = re.compile(r"\btable\s+`?([A-Za-z_][\w]*)`?", re.I)


@dataclass
class TrainReading:
    """What a "predict X" request said, in catalog names; `problem` says why it cannot be proposed."""
    entity: str | None = None
    target: str | None = None
    sources: list[str] = field(default_factory=list)
    only: list[str] = field(default_factory=list)  # columns named as features ("from the customer's segment")
    settings: dict[str, Any] = field(default_factory=dict)  # task, family, trials, minutes, horizon_days
    problem: str = ""


def wants_model(text: str, tokens: list[Token], catalog: Catalog) -> bool:
    """Whether a message asks for a model trained on tables: model words, or prediction words about the rows of a
    table ("which customers will churn") rather than a total for a period ("how many orders in 2027")."""
    words = {t.low for t in tokens}
    if words & {"finetune", "fine", "llm", "assistant", "chatbot"}:
        return False  # a language model: fine-tuning's
    if words & MODEL_WORDS and words & (PREDICT_WORDS | CHURN_WORDS | {"classifier", "classification", "regression",
                                                                        "regressor", "predictive"}):
        return True
    if not words & (PREDICT_WORDS | CHURN_WORDS):
        return False
    low = text.lower()
    if any(p in low for p in _TOTALS) or any(t.low.isdigit() and len(t.low) == 4 for t in tokens):
        return False
    return bool(find_tables(tokens, catalog) or _missing_tables(text, catalog))


def read_request(text: str, tokens: list[Token], catalog: Catalog) -> TrainReading:
    reading = TrainReading(settings=_settings(text, tokens))
    missing = _missing_tables(text, catalog)
    if missing:
        names = ", ".join(f"`{t}`" for t in sorted(catalog.tables))
        reading.problem = (f"There is no table `{missing[0]}` in the catalog, so I cannot train on it. The catalog has "
                           f"{names}; name one of them (or import the data first with `lathe catalog import FILE`).")
        return reading
    mentions = find_tables(tokens, catalog)
    mentions.sort(key=lambda m: m.start)
    cue_at = next((t.index for t in tokens if t.low in _SOURCE_CUES and t.index > 0
                   and not (t.low == "with" and _numbered(tokens, t.index))), None)
    after_which = next((m for m in mentions if m.start > 0 and tokens[m.start - 1].low in ("which", "what", "whose")),
                       None)
    before = [m for m in mentions if cue_at is None or m.start < cue_at]
    reading.sources = list(dict.fromkeys(m.table for m in mentions if cue_at is not None and m.start > cue_at))
    keyed = [m for m in before if (t := catalog.table(m.table)) is not None and t.primary_key]
    entity = after_which or (keyed[0] if keyed else None)
    if entity is None:
        tables = ", ".join(f"`{t.name}`" for t in catalog.tables.values() if t.primary_key)
        reading.problem = ("Which rows should the model predict for? Name the table with one row per thing predicted "
                           f"(e.g. \"predict which customers will churn next month\"); the catalog has {tables}.")
        return reading
    reading.entity = entity.table
    reading.sources = [s for s in reading.sources if s != entity.table]
    if cue_at is not None:
        reading.only = _named_columns(tokens[cue_at + 1:], catalog, catalog.tables[entity.table])
    words = {t.low for t in tokens}
    if words & CHURN_WORDS:
        reading.target = "churn"
        return reading
    used = set(range(entity.start, entity.end))
    said = [t for t in tokens if t.index not in used and (cue_at is None or t.index < cue_at) and not t.is_filler
            or t.low in _AMOUNT_WORDS and (cue_at is None or t.index < cue_at)]
    target = _target(catalog, catalog.tables[entity.table], said, reading.settings.get("task"))
    if target is None:
        reading.problem = (f"What should the model predict for each row of `{entity.table}`? Name a column (e.g. "
                           f"\"predict the {_example(catalog.tables[entity.table])} of {entity.table}\") or say "
                           "\"churn\".")
        return reading
    reading.target = target
    return reading


def _named_columns(tokens: list[Token], catalog: Catalog, entity: Table) -> list[str]:
    """Columns of the entity and of the tables it refers to that the words name, in the order found."""
    from agent.planners.intents import find_column

    parents = [t for t in catalog.tables.values() if t.primary_key and t is not entity
               and entity.column(t.primary_key[0]) is not None]
    found: list[str] = []
    skip: set[int] = set()
    offset = tokens[0].index if tokens else 0
    local = [t.__class__(t.text, t.low, t.stem, t.index - offset, t.start, t.end) for t in tokens]
    for table in [entity, *parents]:
        while (hit := find_column(local, catalog, table.name, skip)) is not None:
            name, span = hit
            skip |= span
            if name not in table.primary_key and not name.endswith("_id"):
                found.append(name)
    return list(dict.fromkeys(found))


def _numbered(tokens: list[Token], at: int) -> bool:
    """"with 2 trials", "with 5 minutes": a budget, not a source of features."""
    return at + 1 < len(tokens) and tokens[at + 1].is_number


def _target(catalog: Catalog, entity: Table, said: list[Token], task: str | None) -> str | None:
    """The column the words name, of the entity or of its lines (tables holding its key): the one whose name and
    synonyms share most words with the request, numbers first for a regression or an amount."""
    key = entity.primary_key[0]
    heard = {t.stem for t in said} | {t.low for t in said}
    amount = bool({t.low for t in said} & _AMOUNT_WORDS)
    best: tuple[tuple[int, int, int], str] | None = None
    tables = [entity] + [t for t in catalog.tables.values() if t is not entity and t.column(key) is not None
                         and key not in t.primary_key]
    for t in tables:
        for c in t.columns:
            number = str(c.type).upper().split("(")[0] in _NUMBER_TYPES
            if (c.pii is not None or c.name in t.primary_key or c.name.endswith("_id")
                    or str(c.type).upper().startswith(("TIMESTAMP", "DATE")) or (t is not entity and not number)):
                continue  # a time is no label, and only numbers sum over an entity's lines
            named = set(stems(c.name.replace("_", " "))) | {s for syn in c.synonyms for s in stems(syn)}
            hits = len(named & heard)
            if amount and number:
                words = set(stems(c.name.replace("_", " "))) | {w for syn in c.synonyms for w in stems(syn)} | {
                    w.strip(".,;()") for w in c.description.lower().split()}
                hits += len(words & _AMOUNT_COLUMNS)
            if not hits:
                continue
            score = (hits, int(number and (task == "regression" or amount)), int(t is entity))
            if best is None or score > best[0]:
                best = (score, c.name if t is entity else f"{t.name}.{c.name}")
    return best[1] if best else None


def _example(t: Table) -> str:
    return next((c.name.replace("_", " ") for c in t.columns if c.pii is None and c.name not in t.primary_key
                 and not c.name.endswith("_id")), "value")


def _settings(text: str, tokens: list[Token]) -> dict[str, Any]:
    words = [t.low for t in tokens]
    out: dict[str, Any] = {}
    if {"classifier", "classification", "classify"} & set(words):
        out["task"] = "classification"
    elif {"regression", "regressor"} & set(words):
        out["task"] = "regression"
    for family, said in (("xgboost", {"xgboost"}), ("sklearn", {"sklearn", "scikit"}), ("lightgbm", {"lightgbm"})):
        if said & set(words):
            out["family"] = family
            break
    for i, w in enumerate(words[:-1]):
        nxt = words[i + 1]
        if w.isdigit() and nxt in ("trial", "trials"):
            out["trials"] = int(w)
        elif w.isdigit() and nxt in ("minute", "minutes", "min", "mins"):
            out["minutes"] = float(w)
        elif w.isdigit() and nxt.rstrip("s") in _HORIZONS:
            out["horizon_days"] = int(w) * _HORIZONS[nxt.rstrip("s")]
        elif w == "next" and nxt.rstrip("s") in _HORIZONS:
            out.setdefault("horizon_days", _HORIZONS[nxt.rstrip("s")])
    return out


def _missing_tables(text: str, catalog: Catalog) -> list[str]:
    """Names the message gives as tables ("the subscriptions table", "from customer_visits") that the catalog has
    under no name or synonym."""
    known = {n.lower() for n in catalog.tables} | {s.lower() for t in catalog.tables.values() for s in t.synonyms}
    found = [m.group(1) for rx in (_SNAKE_AFTER, _BEFORE_TABLE, _AFTER_TABLE) for m in rx.finditer(text)]
    return [n for n in dict.fromkeys(found) if n.lower() not in known and n.lower().rstrip("s") not in known
            and n.lower() not in FILLER and n.lower() not in ("new", "table", "tables")]
