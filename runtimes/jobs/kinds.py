"""The kinds of job: each maps its name to a plan function (spec → approved plan, no side effects) and the work its
worker runs with that plan. A new kind adds one line to `_KINDS` and a module with a `KIND`; it brings no store.

It never plans or runs anything itself; the kind modules are imported only when a kind is asked for.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.errors import UserError
from runtimes.jobs.store import Job, Progress

# kind name → the module holding its `KIND`
_KINDS = {"finetune": "runtimes.training.jobs.finetune_kind", "batch": "runtimes.serving.batch.batch_kind",
          "train": "runtimes.tabular.train_kind", "score": "runtimes.tabular.score_kind"}


@dataclass(frozen=True)
class Planned:
    """A kind's approved plan, as the job stores it at submit."""
    spec: dict[str, Any]
    plan: dict[str, Any]
    progress: Progress


@dataclass(frozen=True)
class JobKind:
    name: str
    plan: Callable[..., Planned]  # (ws, spec dict or model, principal) → Planned; raises UserError
    work: Callable[..., None]  # (WorkerRun) → None: the worker's part, run with the stored plan
    where: Callable[[Job], str]  # where a job stands, in words ("step 12", "30 of 40 rows done")
    resumes_from: Callable[[Job], str]  # what a resumed job keeps ("from checkpoint-12")
    slots: Callable[[], int] | None = None  # how many may run at once; None: no limit
    kept_because: Callable[[Job], str | None] = lambda job: None  # why a finished job may not be deleted


def kind(name: str) -> JobKind:
    if name not in _KINDS:
        raise UserError(f"no job kind `{name}`: the kinds are {', '.join(sorted(_KINDS))}")
    return importlib.import_module(_KINDS[name]).KIND


def kind_names() -> tuple[str, ...]:
    return tuple(_KINDS)
