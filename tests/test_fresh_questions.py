"""The held-out question set of `tests/fresh_questions.py`, each question sent through `agent.Session` with the
offline planner on the demo company (with `store_visits.csv` imported first), its answer's rows compared with the
rows of hand-written SQL. One test reports the score per category and style and writes every failure to
`bench/out/fresh_questions_failures.json`; another holds the answers to the bar: 90 % right, every decline honest.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.planners.offline import create_planner
from agent.session import Session
from catalog.importers import import_paths
from catalog.warehouse import connect_reader
from core.workspace import Workspace
from tests.fresh_questions import CATEGORIES, QUESTIONS, STYLES, TODAY, Question, store_visits_csv
from tests.agent_events import collect, of, text_of

pytestmark = pytest.mark.slow

REPORT = Path(__file__).resolve().parent.parent / "bench" / "out" / "fresh_questions_failures.json"
BAR = 0.9


@dataclass
class Outcome:
    question: Question
    ok: bool
    why: str = ""
    got: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def demo(module_demo: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    upload = tmp_path_factory.mktemp("upload") / "store_visits.csv"
    upload.write_text(store_visits_csv())
    import_paths(module_demo, [upload])
    return module_demo


def rows_of(ws: Workspace, sql: str) -> list[tuple[Any, ...]]:
    with connect_reader(ws) as con:
        return [tuple(r) for r in con.execute(sql).fetchall()]


# --- comparing an answer's rows with the expected rows ---------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]00:00:00(?:\.0+)?)?")


def norm(v: Any) -> Any:
    """Numbers as float, dates as 'YYYY-MM-DD' (timestamps at midnight too), text as lower case."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float, Decimal)):
        return float(v)
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time(0) else v.isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    s = str(v).strip()
    return s[:10] if _DATE.fullmatch(s) else s.lower()


def same(got: Any, want: Any, share: bool) -> bool:
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, float):
        if not isinstance(got, float):
            return False
        if share:  # a fraction, or the same share in percent, to 0.05 percentage points
            return any(math.isclose(got / k, want, abs_tol=5e-4) for k in (1.0, 100.0))
        return math.isclose(got, want, rel_tol=1e-6, abs_tol=0.005)
    if isinstance(got, str) and isinstance(want, str):  # a month may be named 'YYYY-MM'
        return got == want or (bool(_DATE.fullmatch(want)) and want.endswith("-01") and got == want[:7])
    return got == want


def rows_match(got: list[tuple], want: list[tuple], share: bool) -> bool:
    """Same number of rows, and each expected row matched by its own answer row (in any order)."""
    if len(got) != len(want):
        return False
    free = list(range(len(got)))
    for w in want:
        hit = next((i for i in free if all(same(g, x, share) for g, x in zip(got[i], w))), None)
        if hit is None:
            return False
        free.remove(hit)
    return True


def ordered_match(got: list[tuple], want: list[tuple], share: bool) -> bool:
    """In order, except that rows tied on the last expected column may come in either order."""
    if len(got) != len(want):
        return False
    start = 0
    for end in range(1, len(want) + 1):
        if end == len(want) or want[end][-1] != want[start][-1]:
            if not rows_match(got[start:end], want[start:end], share):
                return False
            start = end
    return True


def table_matches(columns: int, got_rows: list[list[Any]], want_rows: list[tuple], q: Question) -> bool:
    """Some choice of the answer's columns (in any order; others may be extra) holds exactly the expected rows."""
    want = [tuple(norm(v) for v in r) for r in want_rows]
    got = [tuple(norm(v) for v in r) for r in got_rows]
    if q.labels_free:  # sides named by periods: only the numbers are compared
        keep = [j for j in range(len(want[0])) if all(isinstance(r[j], float) for r in want)]
        want = [tuple(r[j] for j in keep) for r in want]
    if not want or len(want[0]) > columns:
        return False
    for pick in itertools.permutations(range(columns), len(want[0])):
        projected = [tuple(r[i] if i < len(r) else None for i in pick) for r in got]
        if (ordered_match if q.ordered else rows_match)(projected, want, q.share):
            return True
    return False


# --- asking ------------------------------------------------------------------------------------------------------

def ask(ws: Workspace, q: Question) -> Outcome:
    session = Session(ws, f"fresh-{q.id}", planner=lambda deps: create_planner(deps, clock=lambda: TODAY))
    try:
        for earlier in q.before:
            collect(session.send(earlier))
        events = collect(session.send(q.text))
    except Exception as e:  # noqa: BLE001 - a crash is one wrong answer, not the end of the score
        return Outcome(q, False, f"raised {type(e).__name__}: {e}")
    end = events[-1] if events and events[-1].type == "done" else None
    said, streamed = (end.text if end else ""), text_of(events)
    text = said if streamed in said else f"{said}\n{streamed}".strip()  # what the user reads, once
    tables = of(events, "table")
    got: dict[str, Any] = {"status": end.status if end else None, "text": text[:1500],
                           "rows": [list(r) for r in tables[-1].table.rows[:30]] if tables else None,
                           "columns": tables[-1].table.columns if tables else None}
    if end is None:
        return Outcome(q, False, "the reply did not end", got)
    if q.status == "declined":
        return Outcome(q, *judge_decline(q, events, end.status, text), got)
    return Outcome(q, *judge_answer(ws, q, events, end.status, text), got)


def judge_decline(q: Question, events: list[Any], status: str, text: str) -> tuple[bool, str]:
    if status == "waiting_approval":
        return False, "proposed a plan for approval instead of declining"
    if of(events, "table"):
        return False, "answered with rows instead of declining"
    lowered, asked = text.lower(), q.text.lower()
    if not any(r in lowered and r not in asked for r in q.reason):
        return False, "declined without a reason of the right kind"
    return True, ""


def judge_answer(ws: Workspace, q: Question, events: list[Any], status: str, text: str) -> tuple[bool, str]:
    if status != "answered":
        return False, f"status {status}"
    lowered = text.lower()
    for words in q.says:
        options = (words,) if isinstance(words, str) else words
        if not any(w.lower() in lowered for w in options):
            return False, f"the reply does not say {' or '.join(map(repr, options))}"
    if q.shows_sql:
        if not re.search(r"\bselect\b[\s\S]+\bfrom\b", lowered):
            return False, "the reply shows no SELECT ... FROM"
        missing = [t for t in q.shows_sql if t not in lowered]
        if missing:
            return False, f"the SQL shown does not read {', '.join(missing)}"
    if q.sql is not None:
        tables = of(events, "table")
        if not tables:
            return False, "no table in the answer"
        last = tables[-1].table
        if not any(table_matches(len(last.columns), last.rows, rows_of(ws, sql), q)
                   for sql in (q.sql, q.alt_sql) if sql is not None):
            return False, "the rows differ from the expected rows"
    return True, ""


@pytest.fixture(scope="module")
def outcomes(demo: Workspace) -> list[Outcome]:
    with pytest.MonkeyPatch.context() as mp:  # the offline planner: no LLM configured
        for k in ("LATHE_MODEL", "LATHE_API_BASE", "LATHE_API_KEY_ENV"):
            mp.delenv(k, raising=False)
        return [ask(demo, q) for q in QUESTIONS]


def tally(results: list[Outcome]) -> tuple[int, int, int, int]:
    answerable = [o for o in results if o.question.status != "declined"]
    declines = [o for o in results if o.question.status == "declined"]
    return sum(o.ok for o in answerable), len(answerable), sum(o.ok for o in declines), len(declines)


# --- tests ---------------------------------------------------------------------------------------------------------

def test_every_question_is_well_formed_and_checked() -> None:
    assert len({q.id for q in QUESTIONS}) == len(QUESTIONS)
    assert {q.category for q in QUESTIONS} == set(CATEGORIES)
    per_style = {s: sum(q.style == s for q in QUESTIONS) for s in STYLES}
    assert set(per_style) == {q.style for q in QUESTIONS} and min(per_style.values()) >= len(QUESTIONS) // 6
    for q in QUESTIONS:
        assert q.status in ("answered", "declined"), q.id
        checks = q.sql is not None or bool(q.says) or bool(q.shows_sql)
        assert (q.status == "declined") == (not checks), f"{q.id}: an answer needs a check, a decline none"
        assert (q.status == "declined") == bool(q.reason), f"{q.id}: a decline needs its reasons"
        assert q.alt_sql is None or q.sql is not None, q.id


def test_every_expected_query_returns_rows_without_nulls(demo: Workspace) -> None:
    for q in QUESTIONS:
        for sql in (q.sql, q.alt_sql):
            if sql is not None:
                rows = rows_of(demo, sql)
                assert rows, f"{q.id}: no rows"
                assert all(v is not None for r in rows for v in r), f"{q.id}: a NULL in {rows[:5]}"
        if q.ordered and q.sql is not None and "LIMIT" in q.sql:  # the cut falls between two different values
            limit = int(q.sql.rsplit("LIMIT", 1)[1])
            wider = rows_of(demo, q.sql.rsplit("LIMIT", 1)[0] + f"LIMIT {limit + 1}")
            assert len(wider) == limit or wider[-1][-1] != wider[-2][-1], f"{q.id}: a tie at the cut"


def test_fresh_questions_score(outcomes: list[Outcome], capsys: pytest.CaptureFixture[str]) -> None:
    assert [o.question for o in outcomes] == QUESTIONS
    lines = []
    for name, key in (("category", lambda q: q.category), ("style", lambda q: q.style)):
        for value in (CATEGORIES if name == "category" else STYLES):
            mine = [o for o in outcomes if key(o.question) == value]
            lines.append(f"  {name} {value}: {sum(o.ok for o in mine)} of {len(mine)} correct")
    right, answerable, declined, declines = tally(outcomes)
    lines.append(f"fresh questions: {right} of {answerable} answerable answered correctly; "
                 f"{declined} of {declines} declines correct")
    failures = [{"id": o.question.id, "category": o.question.category, "style": o.question.style,
                 "before": list(o.question.before), "question": o.question.text, "why": o.why,
                 "expected": {"status": o.question.status, "sql": o.question.sql, "alt_sql": o.question.alt_sql,
                              "ordered": o.question.ordered, "says": [list(s) if isinstance(s, tuple) else s
                                                                      for s in o.question.says],
                              "shows_sql": list(o.question.shows_sql), "reason": list(o.question.reason)},
                 "got": o.got} for o in outcomes if not o.ok]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(failures, indent=2, default=str))
    with capsys.disabled():
        print("\n" + "\n".join(lines) + f"\n  failures: {REPORT}")
    assert len(json.loads(REPORT.read_text())) == len(outcomes) - right - declined


def test_fresh_questions_meet_the_bar(outcomes: list[Outcome]) -> None:
    right, answerable, declined, declines = tally(outcomes)
    wrong = [f"{o.question.id}: {o.why}" for o in outcomes if not o.ok]
    assert right >= BAR * answerable and declined == declines, (
        f"{right} of {answerable} answerable right, {declined} of {declines} declines; wrong:\n" + "\n".join(wrong))
