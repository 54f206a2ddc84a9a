"""One source row → one `Example` (prompt messages, replies, verifiable answer) under a `ColumnMapping`.

Pure conversion: a row that cannot be converted raises `RowProblem` with a reason; nothing is fixed silently.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from runtimes.training.datasets.formats import ColumnMapping, DatasetFormat
from runtimes.training.datasets.row_problems import RowProblem
from runtimes.training.datasets.transcripts import split_pair

Message = dict[str, str]
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "model": "assistant", "bot": "assistant", "system": "system"}
_ROLES = ("system", "user", "assistant")
# GSM8K's final answer: the text after the last `####`, numbers with their thousands separators removed.
_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)
_SHORT_ANSWER = 100


@dataclass(frozen=True)
class Example:
    prompt: list[Message]  # the conversation up to the reply (ends with a user turn)
    completion: str | None = None  # the reply to learn (SFT)
    chosen: str | None = None
    rejected: str | None = None
    answer: str | None = None  # verifiable final answer (RLVR)
    messages: list[Message] | None = None  # the whole conversation, for chat-format SFT

    def texts(self) -> list[str]:
        """Each piece of text once (a pair's completion is its chosen reply; a conversation holds its prompt)."""
        if self.messages is not None:
            return [m["content"] for m in self.messages]
        replies = (self.chosen, self.rejected) if self.chosen is not None else (self.completion,)
        return [m["content"] for m in self.prompt] + [t for t in replies if t]


def to_example(mapping: ColumnMapping, row: dict[str, Any]) -> Example:
    cols = mapping.columns
    fmt = mapping.format
    system = _text(row, cols["system"], "system", optional=True) if "system" in cols else None
    head = [{"role": "system", "content": system}] if system else []
    if fmt == DatasetFormat.messages:
        msgs = _messages(row[cols["messages"]], cols["messages"])
        return _from_conversation(head + msgs)
    if fmt == DatasetFormat.sharegpt:
        turns = _list_of_dicts(row[cols["conversations"]], cols["conversations"])
        msgs = []
        for i, t in enumerate(turns, 1):
            who = str(t.get("from", "")).lower()
            if who not in _SHAREGPT_ROLES:
                raise RowProblem(f"turn {i} of `{cols['conversations']}` is from `{who}`, not human, gpt or system")
            msgs.append({"role": _SHAREGPT_ROLES[who], "content": _content(t.get("value"), cols["conversations"], i)})
        return _from_conversation(msgs)
    if fmt == DatasetFormat.hh_rlhf:
        chosen, rejected = (_text(row, cols[k], k) for k in ("chosen", "rejected"))
        prompt, good, bad = split_pair(chosen, rejected)
        return Example(prompt=prompt, chosen=good, rejected=bad, completion=good)
    if fmt == DatasetFormat.preference:
        prompt = _text(row, cols["prompt"], "prompt")
        good, bad = _text(row, cols["chosen"], "chosen"), _text(row, cols["rejected"], "rejected")
        return Example(prompt=head + [{"role": "user", "content": prompt}], chosen=good, rejected=bad,
                       completion=good)
    if fmt == DatasetFormat.alpaca:
        instruction = _text(row, cols["instruction"], "instruction")
        extra = _text(row, cols["input"], "input", optional=True) if "input" in cols else None
        user = f"{instruction}\n\n{extra}" if extra else instruction
        return Example(prompt=head + [{"role": "user", "content": user}],
                       completion=_text(row, cols["output"], "output"))
    if fmt == DatasetFormat.question_answer:
        question, answer = _text(row, cols["question"], "question"), _text(row, cols["answer"], "answer")
        return Example(prompt=head + [{"role": "user", "content": question}], completion=answer,
                       answer=final_answer(answer))
    prompt = _text(row, cols["prompt"], "prompt")
    if fmt == DatasetFormat.prompt_only:
        return Example(prompt=head + [{"role": "user", "content": prompt}])
    return Example(prompt=head + [{"role": "user", "content": prompt}],
                   completion=_text(row, cols["completion"], "completion"))


def final_answer(text: str) -> str | None:
    """The verifiable answer in `text`: after GSM8K's `#### `, or the whole text when it is short."""
    m = _FINAL.search(text)
    if m:
        value = m.group(1).strip()
        return value.replace(",", "") if re.fullmatch(r"-?[\d,]+(\.\d+)?", value) else value
    return text.strip() if len(text.strip()) <= _SHORT_ANSWER else None


def _from_conversation(msgs: list[Message]) -> Example:
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    if last is None:
        raise RowProblem("the conversation has no assistant turn to learn from")
    if not any(m["role"] == "user" for m in msgs[:last]):
        raise RowProblem("the conversation has no user turn before its assistant reply")
    return Example(prompt=msgs[:last], completion=msgs[last]["content"], messages=msgs[:last + 1])


def _messages(value: Any, column: str) -> list[Message]:
    out = []
    for i, m in enumerate(_list_of_dicts(value, column), 1):
        role = m.get("role")
        if role not in _ROLES:
            raise RowProblem(f"message {i} of `{column}` has role `{role}`, not system, user or assistant")
        out.append({"role": role, "content": _content(m.get("content"), column, i)})
    return out


def _list_of_dicts(value: Any, column: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RowProblem(f"`{column}` is text that is not a JSON list of messages") from None
    if value is None:
        raise RowProblem(f"`{column}` is empty")
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise RowProblem(f"`{column}` is a {type(value).__name__}, not a list of messages")
    if not value:
        raise RowProblem(f"`{column}` is an empty list")
    return value


def _content(value: Any, column: str, i: int) -> str:
    if not isinstance(value, str):
        raise RowProblem(f"message {i} of `{column}` has {type(value).__name__} content, not text")
    if not value.strip():
        raise RowProblem(f"message {i} of `{column}` is empty")
    return value


def _text(row: dict[str, Any], column: str, role: str, *, optional: bool = False) -> str | None:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise RowProblem(f"`{column}` ({role}) is empty")
    if not isinstance(value, str):
        raise RowProblem(f"`{column}` ({role}) is a {type(value).__name__}, not text")
    return value.strip()
