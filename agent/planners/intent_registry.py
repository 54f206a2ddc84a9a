"""The offline planner's kinds of question: every module of `agent/planners/kinds/` with `match(question,
context) -> Reading | None` and `plan(reading, context) -> PlannerReply`, found like tools are; adding a
kind of question is one new file there.

Readings are scored (how sure the cue is, and how much of the question the reading uses); the best one is
planned, and when two kinds read the question about equally well the planner asks which was meant.
"""
from __future__ import annotations

import importlib
from importlib import import_module
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from agent.planners.base import PlannerReply, PlanRequest
from agent.planners.question_words import Token, tokenize

if TYPE_CHECKING:
    from agent.planners.spelling import Lexicon
    from agent.planners.offline import OfflinePlanner
    from catalog.metadata import Catalog

CLOSE = 0.04  # two readings of different kinds closer than this: ask which one was meant


@dataclass
class Question:
    """One message, tokenized once (misspelt words read as the known word they are closest to): every kind
    reads the same tokens."""
    text: str
    tokens: list[Token]
    corrected: dict[int, str] = field(default_factory=dict)  # token index -> the word it was read as

    @property
    def notes(self) -> list[str]:
        return [f"read `{self.tokens[i].text}` as `{w}`" for i, w in sorted(self.corrected.items())]

    @property
    def content(self) -> list[Token]:
        return [t for t in self.tokens if not t.is_filler]

    @classmethod
    def of(cls, text: str, lexicon: "Lexicon | None" = None) -> "Question":
        tokens = tokenize(text)
        if lexicon is None:
            return cls(text, tokens)
        fixed, corrected = lexicon.correct(tokens)
        return cls(text, fixed, corrected)


@dataclass
class Context:
    """What a kind may read: the request (thread history included), the catalog, and the planner's parts."""
    request: PlanRequest
    catalog: "Catalog"
    planner: "OfflinePlanner"


@dataclass
class Reading:
    """One interpretation of the question: its kind, how sure the cue is, the tokens it uses, and what the
    kind needs to plan it. `describe` says it in words, for a question back when two readings are close."""
    kind: str
    certainty: float  # 0..1: how strongly the words ask for this kind
    used: set[int] = field(default_factory=set)
    data: dict[str, Any] = field(default_factory=dict)
    describe: str = ""
    exclusive: bool = False  # decided by its cue alone (a guided flow's answer, typed SQL): never asked about

    def score(self, question: Question) -> float:
        """Certainty, raised by the share of the question's content words the reading uses: filler and
        unknown words lower it, they never rule a reading out."""
        content = [t.index for t in question.content]
        covered = len([i for i in content if i in self.used]) / len(content) if content else 1.0
        return 0.6 * self.certainty + 0.4 * covered


@dataclass(frozen=True)
class Kind:
    name: str
    match: Callable[[Question, Context], Reading | list[Reading] | None]
    plan: Callable[[Reading, Context], PlannerReply]
    reads_sql: bool  # sees messages routed as SQL too (a guided answer such as "use reply_preferences")


@lru_cache(maxsize=1)
def kinds() -> tuple[Kind, ...]:
    """Every kind of question, from the modules of `agent.planners.kinds`."""
    from agent.planners import kinds as package

    found: list[Kind] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        if _is_kind(module):
            found.append(Kind(info.name, module.match, module.plan, bool(getattr(module, "READS_SQL", False))))
    return tuple(found)


@lru_cache(maxsize=1)
def cue_words() -> frozenset[str]:
    """Every word the kinds and readers listen for (their module-level word sets), for spelling correction."""
    from agent.planners import column_measures, follow_ups, intents, metric_questions, time_phrases

    modules = [import_module(f"agent.planners.kinds.{k.name}") for k in kinds()]
    modules += [column_measures, follow_ups, intents, metric_questions, time_phrases]
    words: set[str] = set()
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, (frozenset, set, dict)) and value and all(isinstance(w, str) for w in value):
                words |= {w for w in value if w.isalpha()}
    return frozenset(words)


def _is_kind(module: ModuleType) -> bool:
    return callable(getattr(module, "match", None)) and callable(getattr(module, "plan", None))


def readings(question: Question, context: Context) -> list[tuple[float, Reading, Kind]]:
    """Every kind's readings of the question, best first."""
    out: list[tuple[float, Reading, Kind]] = []
    for kind in kinds():
        if context.request.route == "sql" and not kind.reads_sql:
            continue
        found = kind.match(question, context)
        for r in found if isinstance(found, list) else [found] if found is not None else []:
            out.append((1.0 if r.exclusive else r.score(question), r, kind))
    return sorted(out, key=lambda x: -x[0])


def choose(question: Question, context: Context) -> PlannerReply | None:
    """The plan or reply of the best reading; a question back when the two best are close; None when no
    kind reads the question at all."""
    found = readings(question, context)
    if not found:
        return None
    best_score, best, kind = found[0]
    rival = next((x for x in found[1:] if x[1].kind != best.kind), None)
    if (rival is not None and not best.exclusive and best.describe and rival[1].describe
            and best_score - rival[0] < CLOSE and best_score >= 0.5):
        return PlannerReply(text=f"I can read this two ways: {best.describe}, or {rival[1].describe}. Which one "
                                 "did you mean? Ask again with more words, e.g. a table or metric name.")
    return kind.plan(best, context)
