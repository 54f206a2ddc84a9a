"""What is wrong with one row of a dataset: `RowProblem` while converting, `BadRow` in the report.

Reasons name the field and the fault, never the row's text (some training data is offensive or private).
"""
from __future__ import annotations

from dataclasses import dataclass


class RowProblem(ValueError):
    """Raised while converting one row; the message is the reason shown to the user."""


@dataclass(frozen=True)
class BadRow:
    row: int  # 1-based, in the order the source query returned the rows
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"
