"""HH-RLHF transcripts (`\\n\\nHuman: … \\n\\nAssistant: …`) as chat messages, and a chosen/rejected pair of
them as one prompt with two last replies.

Pure text handling; it raises `RowProblem` with a reason that never quotes the row's text.
"""
from __future__ import annotations

import re

from runtimes.training.datasets.row_problems import RowProblem

_TURN = re.compile(r"\n\n(Human|Assistant):[ \t]?")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def parse_transcript(text: str, what: str = "transcript") -> list[dict[str, str]]:
    """The turns of one transcript as `{"role", "content"}` messages, in order."""
    if not isinstance(text, str):
        raise RowProblem(f"the {what} is a {type(text).__name__}, not text")
    parts = _TURN.split(text if text.startswith("\n\n") else "\n\n" + text.lstrip())
    if parts[0].strip() or len(parts) < 3:
        raise RowProblem(f"unparseable {what}: it does not start with `Human:` turns (`\\n\\nHuman: … "
                         "\\n\\nAssistant: …`)")
    messages = [{"role": _ROLES[speaker], "content": content.strip()}
                for speaker, content in zip(parts[1::2], parts[2::2])]
    if messages[0]["role"] != "user":
        raise RowProblem(f"unparseable {what}: it starts with an Assistant turn, not a Human one")
    return messages


def split_pair(chosen: str, rejected: str) -> tuple[list[dict[str, str]], str, str]:
    """(prompt messages, chosen reply, rejected reply) of two transcripts that differ only in the last reply."""
    good = parse_transcript(chosen, "chosen transcript")
    bad = parse_transcript(rejected, "rejected transcript")
    for name, msgs in (("chosen", good), ("rejected", bad)):
        if msgs[-1]["role"] != "assistant":
            raise RowProblem(f"the {name} transcript does not end with an Assistant reply")
        if not msgs[-1]["content"]:
            raise RowProblem(f"the {name} transcript's last Assistant reply is empty")
    if good[:-1] != bad[:-1]:
        raise RowProblem("the chosen and rejected transcripts differ before their last reply, so they share no prompt")
    return good[:-1], good[-1]["content"], bad[-1]["content"]
