"""Dataset formats and column mappings: which columns play which role, inferred from names and content.

The inferred `ColumnMapping` is a proposal (with its reasons) that the agent shows for approval and the
user can override; detection only looks at column names and sample values, it never changes data.
"""
from __future__ import annotations

import json
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

from core.errors import UserError
from catalog.suggestions import unknown


class DatasetFormat(str, Enum):
    messages = "messages"  # one column of chat messages ({role, content})
    prompt_completion = "prompt_completion"
    preference = "preference"  # prompt / chosen / rejected
    alpaca = "alpaca"  # instruction / input / output
    sharegpt = "sharegpt"  # conversations of {from, value}
    hh_rlhf = "hh_rlhf"  # chosen / rejected whole transcripts "\n\nHuman: … \n\nAssistant: …"
    question_answer = "question_answer"  # a question and an answer with a verifiable final value
    prompt_only = "prompt_only"  # prompts alone: RLAIF's judge scores the replies, so none is needed


# Per format: the roles a mapping must fill, then those it may.
ROLES: dict[DatasetFormat, tuple[tuple[str, ...], tuple[str, ...]]] = {
    DatasetFormat.messages: (("messages",), ()),
    DatasetFormat.prompt_completion: (("prompt", "completion"), ("system",)),
    DatasetFormat.preference: (("prompt", "chosen", "rejected"), ("system",)),
    DatasetFormat.alpaca: (("instruction", "output"), ("input", "system")),
    DatasetFormat.sharegpt: (("conversations",), ()),
    DatasetFormat.hh_rlhf: (("chosen", "rejected"), ()),
    DatasetFormat.question_answer: (("question", "answer"), ("system",)),
    DatasetFormat.prompt_only: (("prompt",), ("system",)),
}
# How a user gives a mapping, shown wherever one is needed.
MAP_HINT = ("give the mapping with `--map prompt=COLUMN,completion=COLUMN` on `lathe finetune` (in the chat: "
            "\"use column COLUMN as the prompt\")")

# Column names that suggest a role, best first.
_NAMES: dict[str, tuple[str, ...]] = {
    "messages": ("messages", "conversation", "chat", "dialogue", "dialog"),
    "conversations": ("conversations", "conversation", "dialogue"),
    "prompt": ("prompt", "query", "input_text", "message", "request", "ticket", "body", "text"),
    "completion": ("completion", "response", "reply", "output", "target", "answer", "assistant"),
    "chosen": ("chosen", "preferred", "better", "winner", "accepted"),
    "rejected": ("rejected", "dispreferred", "worse", "loser"),
    "instruction": ("instruction",),
    "input": ("input", "context"),
    "output": ("output",),
    "question": ("question", "problem", "query"),
    "answer": ("answer", "solution", "final_answer", "target"),
    "system": ("system", "system_prompt"),
}


class ColumnMapping(BaseModel):
    """Which source column plays which role in a dataset format; `reasons` say why it was inferred."""
    format: DatasetFormat
    columns: dict[str, str]
    reasons: list[str] = Field(default_factory=list)

    def describe(self) -> str:
        """One line for a person to approve: `prompt/completion: prompt ← body, completion ← reply`."""
        pairs = ", ".join(f"{role} ← {col}" for role, col in self.columns.items())
        return f"{self.format.value}: {pairs}"

    def check_columns(self, available: list[str]) -> None:
        required, optional = ROLES[self.format]
        missing = [r for r in required if r not in self.columns]
        if missing:
            raise UserError(f"the {self.format.value} format needs a column for {', '.join(missing)}; "
                            f"map one of: {', '.join(available)}")
        for role, col in self.columns.items():
            if role not in required + optional:
                raise UserError(f"`{role}` is not a role of the {self.format.value} format; its roles: "
                                f"{', '.join(required + optional)}")
            if col not in available:
                raise UserError(unknown("column", col, available) + f" (mapped to `{role}`)")


def detect_mapping(columns: list[str], rows: list[list[Any]], *, format: DatasetFormat | None = None,
                   override: dict[str, str] | None = None) -> ColumnMapping:
    """Infer the format and column mapping from column names and up to 50 sample rows; `override` (role →
    column) and `format` win over inference. Raises `UserError` when nothing fits."""
    sample = rows[:50]
    kinds = {c: _content_kind([r[i] for r in sample]) for i, c in enumerate(columns)}
    if override:
        fmt = format or format_of_roles(set(override))
        mapping = ColumnMapping(format=fmt, columns=dict(override), reasons=["mapping given by the user"])
        # Roles the user left out but the format may use (an optional system column) are not guessed.
        mapping.check_columns(columns)
        return mapping
    for candidate in ([format] if format else list(_ORDER)):
        found = _try(candidate, columns, kinds)
        if found is not None:
            found.check_columns(columns)
            return found
    what = f"the {format.value} format" if format else "a training format"
    raise UserError(f"could not match the columns ({', '.join(columns)}) to {what}: expected e.g. "
                    "messages; prompt/completion; prompt/chosen/rejected; instruction/input/output; "
                    f"conversations; question/answer; {MAP_HINT}")


_ORDER = (DatasetFormat.messages, DatasetFormat.sharegpt, DatasetFormat.hh_rlhf, DatasetFormat.preference,
          DatasetFormat.alpaca, DatasetFormat.question_answer, DatasetFormat.prompt_completion)


def _try(fmt: DatasetFormat, columns: list[str], kinds: dict[str, str]) -> ColumnMapping | None:
    text = [c for c in columns if kinds[c] in ("text", "transcript", "verifiable")]
    if fmt == DatasetFormat.messages:
        col = _by_kind(columns, kinds, "messages", "messages")
        return col and ColumnMapping(format=fmt, columns={"messages": col},
                                     reasons=[f"`{col}` holds lists of {{role, content}} messages"])
    if fmt == DatasetFormat.sharegpt:
        col = _by_kind(columns, kinds, "sharegpt", "conversations")
        return col and ColumnMapping(format=fmt, columns={"conversations": col},
                                     reasons=[f"`{col}` holds ShareGPT conversations ({{from, value}} turns)"])
    chosen, rejected = _named("chosen", text), _named("rejected", text)
    if fmt == DatasetFormat.hh_rlhf:
        if chosen and rejected and kinds[chosen] == kinds[rejected] == "transcript" and not _named("prompt", text):
            return ColumnMapping(format=fmt, columns={"chosen": chosen, "rejected": rejected}, reasons=[
                f"`{chosen}` and `{rejected}` hold whole `Human:`/`Assistant:` transcripts (HH-RLHF): the shared "
                "turns become the prompt, the last replies chosen and rejected"])
        return None
    if fmt == DatasetFormat.preference:
        prompt = _named("prompt", [c for c in text if c not in (chosen, rejected)]) or _named("question", text)
        if chosen and rejected and prompt:
            return ColumnMapping(format=fmt, columns=_with_system({"prompt": prompt, "chosen": chosen,
                                                                   "rejected": rejected}, text),
                                 reasons=[f"`{chosen}`/`{rejected}` are a better and a worse reply to `{prompt}`"])
        return None
    if fmt == DatasetFormat.alpaca:
        instruction, output = _named("instruction", text), _named("output", text)
        if instruction and output:
            cols = {"instruction": instruction, "output": output}
            inp = _named("input", [c for c in text if c not in (instruction, output)])
            if inp:
                cols["input"] = inp
            return ColumnMapping(format=fmt, columns=_with_system(cols, text),
                                 reasons=["instruction/input/output columns (Alpaca)"])
        return None
    if fmt == DatasetFormat.question_answer:
        verifiable = [c for c in columns if kinds[c] == "verifiable"]
        question = _named("question", [c for c in text if c not in verifiable]) or _named("prompt", text)
        answer = _named("answer", verifiable) or (verifiable[0] if verifiable else None)
        if question and answer and question != answer:
            return ColumnMapping(format=fmt, columns=_with_system({"question": question, "answer": answer}, text),
                                 reasons=[f"`{answer}` ends with a verifiable final answer (`#### n`) to `{question}`"])
        return None
    prompt = _named("prompt", text) or _named("question", text) or _named("instruction", text)
    if fmt == DatasetFormat.prompt_only:
        return prompt and ColumnMapping(format=fmt, columns=_with_system({"prompt": prompt}, text),
                                        reasons=[f"`{prompt}` reads as the request; there is no reply column"])
    completion = _named("completion", [c for c in text if c != prompt])
    if prompt and completion:
        return ColumnMapping(format=fmt, columns=_with_system({"prompt": prompt, "completion": completion}, text),
                             reasons=[f"`{prompt}` reads as the request and `{completion}` as the reply"])
    return None


def _with_system(cols: dict[str, str], text: list[str]) -> dict[str, str]:
    system = _named("system", [c for c in text if c not in cols.values()])
    return {**cols, "system": system} if system else cols


def _named(role: str, columns: list[str]) -> str | None:
    """The column whose name best suggests `role`: an exact synonym first, then one containing it."""
    low = {c.lower(): c for c in columns}
    for name in _NAMES[role]:
        if name in low:
            return low[name]
    for name in _NAMES[role]:
        for lc, c in low.items():
            if name in lc.split("_"):
                return c
    return None


def _by_kind(columns: list[str], kinds: dict[str, str], kind: str, role: str) -> str | None:
    hits = [c for c in columns if kinds[c] == kind]
    return (_named(role, hits) or hits[0]) if hits else None


def format_of_roles(roles: set[str]) -> DatasetFormat:
    fitting = [f for f, (req, opt) in ROLES.items() if set(req) <= roles <= set(req + opt)]
    if not fitting:
        raise UserError(f"the mapped roles ({', '.join(sorted(roles))}) fit no format; roles per format: " + "; ".join(
            f"{f.value}: {', '.join(req)}" for f, (req, _) in ROLES.items()))
    # hh_rlhf and preference both have chosen/rejected; without a prompt it is transcripts.
    return fitting[0]


def _content_kind(values: list[Any]) -> str:
    """What most non-empty sample values of a column are: messages, sharegpt, transcript, verifiable, text."""
    seen = [v for v in (_maybe_json(v) for v in values) if v not in (None, "")]
    if not seen:
        return "empty"
    kinds = [_value_kind(v) for v in seen]
    top = max(set(kinds), key=kinds.count)
    if kinds.count(top) * 2 > len(kinds):
        return top
    if set(kinds) <= {"text", "transcript", "verifiable"}:
        # Half the answers with a `#### n` still make a verifiable column; the rest are reported as bad rows.
        return "verifiable" if kinds.count("verifiable") * 2 >= len(kinds) else "text"
    return "mixed"


def _value_kind(v: Any) -> str:
    if isinstance(v, list) and v and all(isinstance(m, dict) for m in v):
        keys = set().union(*(m.keys() for m in v))
        if {"role", "content"} <= keys:
            return "messages"
        if {"from", "value"} <= keys:
            return "sharegpt"
        return "other"
    if isinstance(v, str):
        if "\n\nHuman:" in "\n\n" + v and "\n\nAssistant:" in v:
            return "transcript"
        if "####" in v:
            return "verifiable"
        return "text"
    return "other"


def _maybe_json(v: Any) -> Any:
    """Lists stored as JSON text (a VARCHAR column) read as lists."""
    if isinstance(v, str) and v[:1] == "[":
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v
