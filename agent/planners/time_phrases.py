"""Time phrases of a question read into a date range and a time grain, relative to a reference date:
"last quarter", "in 2025", "Q3 2026", "since March", "last 30 days", "this year", "next month", "between
January and March 2026", "by month", "weekly".

Ranges are half-open, [start, end), in whole days; "last N days" is the N days before the reference date,
"last N weeks/months/quarters/years" the N complete periods before the current one; a month or quarter
without a year is its latest occurrence that has begun. It reads tokens only; it never builds filters.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from dateutil.relativedelta import relativedelta

from agent.planners.question_words import Token

UNITS = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month", "months": "month",
         "quarter": "quarter", "quarters": "quarter", "year": "year", "years": "year"}
GRAIN_WORDS = {"daily": "day", "weekly": "week", "monthly": "month", "quarterly": "quarter", "yearly": "year",
               "annual": "year", "annually": "year"}
MONTHS = {name: i + 1 for i, names in enumerate([
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
    ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
    ("december", "dec")]) for name in names}
# Month names that are also ordinary words count as months only next to a year or after a time preposition.
_WORDLIKE_MONTHS = frozenset({"may", "mar", "march", "jan", "dec", "sep", "oct", "nov", "aug", "apr", "jun", "jul"})
ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "fifty": 50,
                "hundred": 100}
_RELATIVE = frozenset({"last", "past", "previous", "prior", "trailing"})
_CURRENT = frozenset({"this", "current"})
_NEXT = frozenset({"next", "coming", "upcoming"})
_TO_DATE = {"ytd": "year", "qtd": "quarter", "mtd": "month", "wtd": "week"}
_PREPOSITIONS = frozenset({"in", "during", "for", "of", "on", "within", "over", "at"})
_RANGE_ENDS = frozenset({"to", "until", "till", "through", "thru"})
_GRAIN_MARKERS = frozenset({"by", "per", "each", "every", "a"})
_JOINERS = frozenset({"and", "or", "to", "vs", "versus", "compared", "against"})
_HALVES = {"h1": 1, "h2": 2}
# Named seasons as month spans (first month, months); a reading states its dates, so a user can correct it.
_SEASONS = {"holiday": (11, 2), "holidays": (11, 2)}


def number_of(word: str) -> int | None:
    if word.isdigit() and len(word) <= 4:
        return int(word)
    return NUMBER_WORDS.get(word)


def start_of(unit: str, d: dt.date) -> dt.date:
    if unit == "week":
        return d - dt.timedelta(days=d.weekday())
    if unit == "month":
        return d.replace(day=1)
    if unit == "quarter":
        return dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    if unit == "year":
        return dt.date(d.year, 1, 1)
    return d


def shift(unit: str, d: dt.date, n: int) -> dt.date:
    if unit == "day":
        return d + dt.timedelta(days=n)
    if unit == "week":
        return d + dt.timedelta(days=7 * n)
    return d + relativedelta(**({"months": n} if unit == "month" else {"months": 3 * n} if unit == "quarter"
                                else {"years": n}))


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # exclusive
    next: int  # the token after the phrase
    year_given: bool = True
    unit: str | None = None  # a whole calendar day, month, quarter or year


@dataclass
class TimeReading:
    """What the time words of a question say: a range (either end may be open), a grain, and which words said it."""
    start: dt.date | None = None
    end: dt.date | None = None  # exclusive
    grain: str | None = None
    used: set[int] = field(default_factory=set)
    phrases: list[str] = field(default_factory=list)  # the words that named the range
    grain_words: str = ""
    points: list[dt.date] = field(default_factory=list)  # "October 2026 vs October 2025": only these periods

    @property
    def has_range(self) -> bool:
        return self.start is not None or self.end is not None

    def describe(self) -> str:
        """`last quarter (2026-07-01 to 2026-09-30)`: the words and the days they mean, both ends included."""
        words = ", ".join(self.phrases)
        if self.start and self.end:
            days = f"{self.start.isoformat()} to {(self.end - dt.timedelta(days=1)).isoformat()}"
        elif self.start:
            days = f"from {self.start.isoformat()}"
        elif self.end:
            days = f"up to {(self.end - dt.timedelta(days=1)).isoformat()}"
        else:
            return ""
        return f"{words} ({days})" if words else days


class _Reader:
    def __init__(self, tokens: Sequence[Token], today: dt.date, skip: set[int]):
        self.w = [t.low for t in tokens]
        self.tokens = tokens
        self.today = today
        self.skip = skip

    def word(self, i: int) -> str:
        return self.w[i] if 0 <= i < len(self.w) and i not in self.skip else ""

    def year_at(self, i: int) -> int | None:
        w = self.word(i)
        return int(w) if w.isdigit() and len(w) == 4 and 1900 <= int(w) <= 2199 else None

    def latest(self, unit: str, index: int, year: int | None) -> tuple[dt.date, bool]:
        """The start of month or quarter `index` of `year`, or of its latest occurrence that has begun."""
        month = index if unit == "month" else 3 * (index - 1) + 1
        if year is not None:
            return dt.date(year, month, 1), True
        start = dt.date(self.today.year, month, 1)
        return (start if start <= self.today else dt.date(self.today.year - 1, month, 1)), False

    def point(self, i: int, after_preposition: bool = False, default_year: int | None = None) -> Period | None:
        """One period named at token `i`: a date, quarter, month, year or relative period."""
        if self.word(i) == "the":
            i += 1
        w = self.word(i)
        if not w:
            return None
        if len(w) == 10 and w[4] == "-" and w[7] == "-":
            try:
                d = dt.date.fromisoformat(w)
            except ValueError:
                return None
            return Period(d, d + dt.timedelta(days=1), i + 1, unit="day")
        if len(w) == 2 and w[0] == "q" and w[1] in "1234":
            year = self.year_at(i + 1)
            start, given = self.latest("quarter", int(w[1]), year if year is not None else default_year)
            return Period(start, shift("quarter", start, 1), i + (2 if year is not None else 1), given, "quarter")
        if w in ORDINALS and self.word(i + 1) == "quarter":
            j = i + 2
            if self.word(j) == "of" and self.year_at(j + 1) is not None:
                j += 1
            year = self.year_at(j)
            start, given = self.latest("quarter", ORDINALS[w], year if year is not None else default_year)
            return Period(start, shift("quarter", start, 1), j + (1 if year is not None else 0), given, "quarter")
        half = _HALVES.get(w) or (ORDINALS.get(w) if self.word(i + 1) == "half" and ORDINALS.get(w, 3) <= 2 else None)
        if half is not None:
            j = i + 1 if w in _HALVES else i + 2
            if self.word(j) == "of":
                j += 1
            year = self.year_at(j)
            start = dt.date(year if year is not None else self.today.year, 1 + 6 * (half - 1), 1)
            if year is None and start > self.today:
                start = start.replace(year=start.year - 1)
            return Period(start, shift("month", start, 6), j + (1 if year is not None else 0), year is not None)
        if w in _SEASONS:
            first, months = _SEASONS[w]
            j = i + 1 + (self.word(i + 1) == "season")
            if self.word(j) == "of":
                j += 1
            year = self.year_at(j)
            start = dt.date(year if year is not None else self.today.year, first, 1)
            if year is None and start > self.today:
                start = start.replace(year=start.year - 1)
            return Period(start, shift("month", start, months), j + (1 if year is not None else 0), year is not None)
        if w in MONTHS:
            j = i + 1
            if self.word(j) == "of" and self.year_at(j + 1) is not None:
                j += 1
            year = self.year_at(j)
            if year is None and w in _WORDLIKE_MONTHS and not after_preposition and default_year is None:
                return None
            start, given = self.latest("month", MONTHS[w], year if year is not None else default_year)
            return Period(start, shift("month", start, 1), j + (1 if year is not None else 0), given, "month")
        year = self.year_at(i)
        if year is not None and self.word(i + 1) in _SEASONS:  # "the 2025 holiday season"
            first, months = _SEASONS[self.word(i + 1)]
            start = dt.date(year, first, 1)
            return Period(start, shift("month", start, months), i + 2 + (self.word(i + 2) == "season"), True)
        if year is not None:
            return Period(dt.date(year, 1, 1), dt.date(year + 1, 1, 1), i + 1, unit="year")
        if w == "today":
            return Period(self.today, self.today + dt.timedelta(days=1), i + 1)
        if w == "yesterday":
            return Period(self.today - dt.timedelta(days=1), self.today, i + 1)
        if w in _TO_DATE:
            unit = _TO_DATE[w]
            return Period(start_of(unit, self.today), self.today + dt.timedelta(days=1), i + 1)
        if w in UNITS and self.word(i + 1) == "to" and self.word(i + 2) == "date":
            unit = UNITS[w]
            return Period(start_of(unit, self.today), self.today + dt.timedelta(days=1), i + 3)
        if w in _RELATIVE and self.word(i + 1) in _SEASONS:  # "last holiday season": the latest one that ended
            first, months = _SEASONS[self.word(i + 1)]
            start = dt.date(self.today.year, first, 1)
            while shift("month", start, months) > self.today:
                start = start.replace(year=start.year - 1)
            return Period(start, shift("month", start, months), i + 2 + (self.word(i + 2) == "season"), True)
        if w in _RELATIVE:
            n = number_of(self.word(i + 1))
            j = i + 2 if n is not None else i + 1
            unit = UNITS.get(self.word(j))
            if unit is None:
                return None
            n = n or 1
            if unit == "day":
                return Period(self.today - dt.timedelta(days=n), self.today, j + 1)
            current = start_of(unit, self.today)
            return Period(shift(unit, current, -n), current, j + 1)
        if w in _NEXT:
            n = number_of(self.word(i + 1))
            j = i + 2 if n is not None else i + 1
            unit = UNITS.get(self.word(j))
            if unit is None:
                return None
            start = self.today + dt.timedelta(days=1) if unit == "day" else shift(unit, start_of(unit, self.today), 1)
            return Period(start, shift(unit, start, n or 1), j + 1)
        if w in _CURRENT and self.word(i + 1) in UNITS:
            unit = UNITS[self.word(i + 1)]
            start = start_of(unit, self.today)
            return Period(start, shift(unit, start, 1), i + 2)
        return None


def _in_year(r: "_Reader", p: Period, at: int, given_years: list[int], after_preposition: bool) -> Period:
    """A month or quarter without a year, after a period that named one ("the 2025 holiday season (November and
    December)"), is in that year."""
    if p.year_given:
        given_years.append(p.start.year)
        return p
    if given_years and p.unit in ("month", "quarter"):
        return r.point(at, after_preposition, default_year=given_years[-1]) or p
    return p


def read_time(tokens: Sequence[Token], today: dt.date, skip: set[int] | None = None) -> TimeReading:
    """The time range and grain the tokens name; tokens in `skip` (already read as something else) are not read."""
    r = _Reader(tokens, today, set(skip or ()))
    out = TimeReading()
    ranges: list[tuple[dt.date | None, dt.date | None, int]] = []  # start, end, first token
    i, n = 0, len(tokens)

    def take(a: int, b: int, grain: str | None = None) -> None:
        out.used.update(range(a, b))
        words = " ".join(tokens[k].text for k in range(a, b))
        if grain is None:
            out.phrases.append(words)
        else:
            out.grain, out.grain_words = grain, words

    units: list[str | None] = []
    given_years: list[int] = []  # years the question named, for months named without one after them
    while i < n:
        w = r.word(i)
        if not w:
            i += 1
            continue
        if w in ("since", "from", "after", "starting") and (p := r.point(i + 1, after_preposition=True)):
            if w == "from" and r.word(p.next) in _RANGE_ENDS and (q := r.point(p.next + 1, True)):
                if not p.year_given and q.year_given:
                    p = r.point(i + 1, True, default_year=q.start.year) or p
                ranges.append((p.start, q.end, i))
                take(i, q.next)
                i = q.next
                continue
            ranges.append((p.end if w == "after" else p.start, None, i))
            take(i, p.next)
            i = p.next
            continue
        if w == "between" and (p := r.point(i + 1, True)) and r.word(p.next) == "and" and (
                q := r.point(p.next + 1, True)):
            if not p.year_given and q.year_given:
                p = r.point(i + 1, True, default_year=q.start.year) or p
            ranges.append((p.start, q.end, i))
            take(i, q.next)
            i = q.next
            continue
        if w in ("before", "until", "till", "through", "thru") and (p := r.point(i + 1, True)):
            ranges.append((None, p.start if w == "before" else p.end, i))
            take(i, p.next)
            i = p.next
            continue
        if w in _PREPOSITIONS and (p := r.point(i + 1, True)):
            p = _in_year(r, p, i + 1, given_years, True)
            ranges.append((p.start, p.end, i))
            units.append(p.unit)
            take(i, p.next)
            i = p.next
            continue
        if p := r.point(i):
            p = _in_year(r, p, i, given_years, False)
            ranges.append((p.start, p.end, i))
            units.append(p.unit)
            take(i, p.next)
            i = p.next
            continue
        if w in _GRAIN_MARKERS and r.word(i + 1) in UNITS:
            take(i, i + 2, UNITS[r.word(i + 1)])
            i += 2
            continue
        if w in GRAIN_WORDS:
            take(i, i + 1, GRAIN_WORDS[w])
        elif w == "over" and r.word(i + 1) == "time":
            take(i, i + 2, out.grain or "month")
            i += 1
        elif w in UNITS:
            take(i, i + 1, UNITS[w])
        i += 1
    if ranges:
        start, end, first = ranges[0]
        for s, e, at in ranges[1:]:
            between = {r.word(k) for k in range(first, at)} - {""}
            joined = bool(between & _JOINERS)
            if joined and out.grain is None and len(units) == len(ranges) and len(set(units)) == 1 and units[0]:
                out.grain = units[0]  # "2025 vs 2026": one row each
            if joined:  # "in 2025 and 2026": the span of both
                start = None if start is None or s is None else min(start, s)
                end = None if end is None or e is None else max(end, e)
            else:  # "in 2026 since March": both hold
                start = s if start is None else start if s is None else max(start, s)
                end = e if end is None else end if e is None else min(end, e)
            first = at
        out.start, out.end = start, end
        unit = units[0] if units and len(units) == len(ranges) and len(set(units)) == 1 else None
        if unit and out.grain == unit and len(ranges) > 1 and start and end and all(s and e for s, e, _ in ranges):
            if shift(unit, start, len(ranges)) < end:  # periods apart: compare them alone, not the span
                out.points = sorted(s for s, _, _ in ranges)
    return out
