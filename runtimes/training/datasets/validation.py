"""Checks a dataset before any compute is spent: its format suits the technique, each row converts and
holds what the technique needs, and too many bad rows refuse the whole dataset.

It reports every bad row with its number and reason; it never drops a row without saying so.
"""
from __future__ import annotations

from typing import Any

from core.errors import UserError
from runtimes.training.datasets.examples import Example, to_example
from runtimes.training.datasets.formats import ColumnMapping, DatasetFormat
from runtimes.training.datasets.row_problems import BadRow, RowProblem
from runtimes.training.recipes import TECHNIQUES_IN_WORDS
_PAIRS = (DatasetFormat.preference, DatasetFormat.hh_rlhf)
# Which formats each technique can learn from, and what to tell a user whose data does not fit.
_FITS: dict[str, tuple[tuple[DatasetFormat, ...], str]] = {
    "sft": (tuple(f for f in DatasetFormat if f != DatasetFormat.prompt_only),
            "SFT learns a reply for each prompt, and this data has none (prompts alone train RLAIF, whose judge "
            "scores the replies)"),
    "dpo": (_PAIRS, "DPO learns from preference pairs (prompt/chosen/rejected, or HH-RLHF transcripts)"),
    "rlvr": ((DatasetFormat.question_answer,),
             "RLVR needs questions with a verifiable answer (question/answer, e.g. GSM8K's `#### n`)"),
    "rlaif": (tuple(DatasetFormat), ""),  # the judge scores replies: prompts alone are enough
}
_SHOWN = 20


class DatasetRefused(UserError):
    """Too many bad rows (or none good): nothing is trained on this dataset until they are fixed."""

    def __init__(self, message: str, bad_rows: list[BadRow]):
        super().__init__(message)
        self.bad_rows = bad_rows


def check_fit(mapping: ColumnMapping, technique: str) -> None:
    if technique not in _FITS:
        raise UserError(f"no technique `{technique}`; choose {TECHNIQUES_IN_WORDS}")
    fits, need = _FITS[technique]
    if mapping.format not in fits:
        hint = ("preference pairs can train DPO" if mapping.format in _PAIRS else
                "prompts alone train RLAIF" if mapping.format == DatasetFormat.prompt_only else
                "demonstrations (a prompt and a good reply) train SFT")
        raise UserError(f"{need}; this dataset is {mapping.format.value} ({mapping.describe()}): {hint}")


def check_rows(mapping: ColumnMapping, technique: str, columns: list[str], rows: list[list[Any]], *,
               max_chars: int) -> tuple[list[tuple[int, Example]], list[BadRow]]:
    """Convert every row; returns (row number, example) for the good ones and a `BadRow` for each other."""
    check_fit(mapping, technique)
    good: list[tuple[int, Example]] = []
    bad: list[BadRow] = []
    for n, values in enumerate(rows, 1):
        try:
            ex = to_example(mapping, dict(zip(columns, values)))
            _check_for_technique(ex, technique)
            size = sum(len(t) for t in ex.texts())
            if size > max_chars:
                raise RowProblem(f"too long: {size:,} characters, over the limit of {max_chars:,}")
        except RowProblem as e:
            bad.append(BadRow(n, str(e)))
            continue
        good.append((n, ex))
    return good, bad


def refuse_if_too_many(bad: list[BadRow], total: int, max_bad_fraction: float) -> None:
    """Raise `DatasetRefused` when more than `max_bad_fraction` of `total` rows are bad, or none is good."""
    if total == 0:
        raise DatasetRefused("the dataset has no rows", [])
    share = len(bad) / total
    if len(bad) == total or share > max_bad_fraction:
        listed = "; ".join(str(b) for b in bad[:_SHOWN]) + (f"; … and {len(bad) - _SHOWN} more"
                                                             if len(bad) > _SHOWN else "")
        raise DatasetRefused(
            f"{len(bad):,} of {total:,} rows ({share:.1%}) are bad, over the {max_bad_fraction:.0%} allowed; "
            f"fix them or filter them out in the SQL, or change the column mapping: {listed}", bad)


def _check_for_technique(ex: Example, technique: str) -> None:
    if technique == "dpo":
        if ex.chosen is None or ex.rejected is None:
            raise RowProblem("no chosen and rejected replies")
        if ex.chosen.strip() == ex.rejected.strip():
            raise RowProblem("chosen == rejected: the pair teaches no preference")
    elif technique == "rlvr" and not ex.answer:
        raise RowProblem("no verifiable final answer (GSM8K's `#### n`, or a short answer of at most 100 characters)")
    elif technique == "sft" and not ex.completion:
        raise RowProblem("no reply to learn")
