"""Close-spelling correction of a question's words against every word the planner knows: the workspace's
names, synonyms, glossary, metric labels and dimension values, time words, and the cue words of every kind
of question. A word is corrected only when one known word is clearly closest.

It changes the words a question is read with, never its text; corrections are reported with the answer.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable

from catalog.metadata import Catalog
from catalog.search_documents import term
from agent.planners.question_words import FILLER, Token, lows

MIN_LENGTH = 5
CUTOFF = 0.82  # one wrong letter in five (0.8) is too often another word: "since" is not "slice"
# Ordinary words of questions that no vocabulary lists, so they are never "corrected" into a name.
COMMON = frozenset("""
since before after until starting today yesterday tomorrow date dates time times season holiday holidays half
sold sell sells selling bought made came come comes sign signed signup placed handle handles handled recorded
stored visit visited visits people person place places thing things number count share year years month months
quarter quarters week weeks daily weekly monthly yearly happen happened lately recent recently average latest
earliest first second third fourth fifth single total totals value values money spend spent paid price prices
higher lower bigger smaller better worse above below under every other another entire whole which where there
their these those could would should might shall customer customers order orders between against versus
percentile percentiles median
""".split())


class Lexicon:
    def __init__(self, words: Iterable[str]):
        self.words = {w for w in words if w and not w.isdigit()}
        self._sorted = sorted(self.words)

    def correct(self, tokens: list[Token]) -> tuple[list[Token], dict[int, str]]:
        """The tokens with misspelt words replaced, and index -> the word each was read as."""
        out, fixed = [], {}
        for t in tokens:
            if t.low in self.words or t.is_number or len(t.low) < MIN_LENGTH or not t.low.isalpha():
                out.append(t)
                continue
            close = difflib.get_close_matches(t.low, self._sorted, n=2, cutoff=CUTOFF)
            if not close or (len(close) > 1 and term(close[0]) != term(close[1]) and _ratio(t.low, close[0])
                             == _ratio(t.low, close[1])):
                out.append(t)
                continue
            fixed[t.index] = close[0]
            out.append(Token(t.text, close[0], term(close[0]), t.index, t.start, t.end))
        return out, fixed


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def lexicon_of(catalog: Catalog, values: dict[tuple[str, str], list[str]], cue_words: Iterable[str]) -> Lexicon:
    """Every word of the workspace's vocabulary, plus the planner's own cue and time words."""
    phrases: list[str] = []
    for t in catalog.tables.values():
        phrases += [t.name, *t.synonyms]
        for c in t.columns:
            phrases += [c.name, *c.synonyms]
    for g in catalog.glossary.values():
        phrases += [g.name, *g.synonyms]
    for m in catalog.semantic.metrics:
        phrases += [m.name, m.label or ""]
    for sm in catalog.semantic.semantic_models:
        phrases += [sm.name] + [e.name for e in sm.entities] + [d.name for d in sm.dimensions]
    for vals in values.values():
        phrases += vals
    words = {w for p in phrases for w in lows(p)}
    return Lexicon(words | set(FILLER) | set(cue_words) | COMMON)
