"""The words of a question as the offline planner reads them: tokens with positions, lower-case forms and
stems, and the grammar words that carry no meaning of their own.

Reads English text only; it never reads SQL (SQL typed directly is routed before any planner sees it).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from catalog.search_documents import term

# An ISO date stays one word; otherwise runs of letters and digits, with an apostrophe suffix ("customer's").
_WORD = re.compile(r"\d{4}-\d{2}-\d{2}|[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_PARENTHESES = re.compile(r"\([^)]*\)")

# Words that only hold a question together: never reported as "not understood", never a meaning alone.
FILLER = frozenset("""
a about above after again against all also am an and any are as at be been before being below between both
but by can could did do does doing down during each every few for from further had has have having here how
i if in into is it its itself just me more most my no nor not now of off on once only or other our ours out
over own same so some such than that the their theirs them then there these they this those through to too
under until up very was we were what when where which while who whom why will with would you your yours
show shows showing give gives tell list display get see want need like know please let lets let's find look
number numbers figure figures total overall data value values amount amounts breakdown broken split splitting
grouped group grouping chart plot graph trend trends compare comparison versus vs via per across among
instead rather same again then just already really actually exactly roughly approximately
much many whats what's hows how's it's that's there's is it
basically roughly approx approximately told pls plz kindly honestly literally quick quickly curious wondering
wonder maybe perhaps ballpark anyway overall everything altogether
""".split())


@dataclass(frozen=True)
class Token:
    text: str  # as written
    low: str  # lower case, apostrophe suffix removed
    stem: str
    index: int
    start: int  # character offsets in the question
    end: int

    @property
    def is_number(self) -> bool:
        return self.low.isdigit()

    @property
    def is_filler(self) -> bool:
        return self.low in FILLER


def _lower(word: str) -> str:
    low = word.lower().replace("’", "'")
    return low.split("'", 1)[0] if "'" in low else low


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    for m in _WORD.finditer(text):
        low = _lower(m.group())
        if not low:
            continue
        out.append(Token(m.group(), low, term(low), len(out), m.start(), m.end()))
    return out


def stems(text: str) -> tuple[str, ...]:
    """The stems of a phrase, as the tokens of a question matching it would have them."""
    return tuple(t.stem for t in tokenize(text))


def lows(text: str) -> tuple[str, ...]:
    return tuple(t.low for t in tokenize(text))


def without_parentheses(text: str) -> str:
    """"Revenue growth (month over month)" -> "Revenue growth": the words a person would say."""
    return " ".join(_PARENTHESES.sub(" ", text).split())


def quoted(words: Iterable[str]) -> str:
    """`a`, `b` and `c`: words for a reply."""
    items = [f"`{w}`" for w in dict.fromkeys(words)]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
