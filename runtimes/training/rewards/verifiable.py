"""Verifiable rewards: exact match, numeric answer (GSM8K's `#### n`), regex and JSON-schema validity.

Each factory returns a TRL reward function `(prompts, completions, **columns) -> list[float]`; scoring is
pure and deterministic, it never calls a model and never raises on a completion (a bad one scores 0).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from core.errors import UserError

RewardFunction = Callable[..., list[float | None]]
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_FINAL = re.compile(r"####\s*(" + _NUMBER.pattern + r")")


def completion_text(completion: Any) -> str:
    """The text of one completion, whether TRL gives plain text or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content") or "") for m in completion
                       if isinstance(m, dict) and m.get("role", "assistant") == "assistant")
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    return ""


def _named(fn: RewardFunction, name: str) -> RewardFunction:
    fn.__name__ = name  # GRPO logs each reward under its function's name
    return fn


def _column(columns: dict[str, Any], name: str, n: int, reward: str) -> Sequence[Any]:
    if name not in columns:
        raise UserError(f"the `{reward}` reward needs a `{name}` column in the dataset; it has: "
                        f"{', '.join(sorted(columns)) or 'none'}")
    values = columns[name]
    if len(values) != n:
        raise UserError(f"the `{name}` column has {len(values)} values for {n} completions")
    return values


def _normalise(text: str) -> str:
    return " ".join(text.strip().split()).casefold()


def exact_match(answer_column: str = "answer") -> RewardFunction:
    """1 when the completion, trimmed and with whitespace and case folded, equals the answer; else 0."""
    def reward(prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float | None]:
        answers = _column(columns, answer_column, len(completions), "exact_match")
        return [float(_normalise(completion_text(c)) == _normalise(str(a))) for c, a in zip(completions, answers)]
    return _named(reward, "exact_match")


def parse_number(text: str) -> Decimal | None:
    """A number as people write it: `1,234`, `$5`, `-3.5`; None when it is not one."""
    cleaned = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def final_number(text: str, *, strict: bool = False) -> Decimal | None:
    """The answer a completion commits to: the number after GSM8K's `#### `, else (unless `strict`) the last
    number in the text."""
    marked = _FINAL.findall(text)
    if marked:
        return parse_number(marked[-1])
    if strict:
        return None
    numbers = _NUMBER.findall(text)
    return parse_number(numbers[-1]) if numbers else None


def numeric_answer(answer_column: str = "answer", *, strict: bool = False,
                   tolerance: float = 1e-6) -> RewardFunction:
    """1 when the completion's final number (see `final_number`) equals the answer's within `tolerance`."""
    def reward(prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float | None]:
        answers = _column(columns, answer_column, len(completions), "numeric_answer")
        out: list[float | None] = []
        for c, a in zip(completions, answers):
            got = final_number(completion_text(c), strict=strict)
            want = final_number(str(a))
            out.append(float(got is not None and want is not None
                             and math.isclose(float(got), float(want), rel_tol=0, abs_tol=tolerance)))
        return out
    return _named(reward, "numeric_answer")


def regex_match(pattern: str, *, full: bool = False) -> RewardFunction:
    """1 when `pattern` is found in the completion (or matches all of it with `full`)."""
    try:
        compiled = re.compile(pattern, re.DOTALL)
    except re.error as e:
        raise UserError(f"the regex reward's pattern `{pattern}` is not a valid regular expression: {e}") from None

    def reward(prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float | None]:
        test = compiled.fullmatch if full else compiled.search
        return [float(test(completion_text(c).strip() if full else completion_text(c)) is not None)
                for c in completions]
    return _named(reward, "regex")


def _json_payload(text: str) -> Any:
    """The JSON a completion holds: all of it, or the body of a ```json fenced block."""
    body = text.strip()
    fence = re.search(r"```(?:json)?\s*\n(.*?)```", body, re.DOTALL)
    if fence:
        body = fence.group(1).strip()
    return json.loads(body)


def json_schema(schema: dict[str, Any] | str) -> RewardFunction:
    """1 when the completion is JSON valid against `schema` (a JSON Schema, as a dict or JSON text); else 0."""
    import jsonschema

    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as e:
            raise UserError(f"the JSON-schema reward's schema is not JSON: {e}") from None
    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise UserError(f"the JSON-schema reward's schema is not a valid JSON Schema: {e.message}") from None
    validator = validator_cls(schema)

    def reward(prompts: Any = None, completions: Sequence[Any] = (), **columns: Any) -> list[float | None]:
        out: list[float | None] = []
        for c in completions:
            try:
                payload = _json_payload(completion_text(c))
            except (json.JSONDecodeError, ValueError):
                out.append(0.0)
                continue
            out.append(float(validator.is_valid(payload)))
        return out
    return _named(reward, "json_schema")
