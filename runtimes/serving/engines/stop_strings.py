"""Stop strings over streamed text: pieces are let through only once no stop string can still begin in them, so a
stream carries exactly the text a whole reply has (cut before its first stop string), whatever the piece borders.

Pure text: it knows nothing of tokens or models; the engine feeds it the decoded pieces.
"""
from __future__ import annotations

from collections.abc import Sequence


def cut_at_stop(text: str, stop: Sequence[str]) -> str | None:
    """`text` up to the first stop string, or None when none occurs."""
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[:min(hits)] if hits else None


class StopHoldBack:
    """Feed it streamed pieces; it returns what is safe to send. Text that could still be the start of a stop
    string is held until the next pieces decide it; once a stop string is complete and nothing before it is
    undecided, `stopped` is set and nothing more is let through."""

    def __init__(self, stop: Sequence[str]) -> None:
        self.stop = [s for s in stop if s]
        self.text = ""   # everything fed so far
        self.sent = 0    # how much of `text` has been let through
        self.stopped = False

    def feed(self, piece: str) -> str:
        if self.stopped or not piece:
            return ""
        self.text += piece
        if not self.stop:
            return self._let_through(len(self.text))
        hit = self._first_hit()
        held = self._first_undecided()
        if hit is not None and (held is None or held >= hit):
            self.stopped = True
            return self._let_through(hit)
        return self._let_through(min(x for x in (hit, held, len(self.text)) if x is not None))

    def rest(self, whole: str) -> str:
        """What is left to send once the reply is finished, `whole` being its text as a whole reply returns it
        (already cut at its stop string): the stream then adds up to exactly that."""
        sent = self.text[:self.sent]
        return whole[len(sent):] if whole.startswith(sent) else ""

    def _let_through(self, upto: int) -> str:
        out = self.text[self.sent:upto] if upto > self.sent else ""
        self.sent = max(self.sent, upto)
        return out

    def _first_hit(self) -> int | None:
        # A stop string wholly inside text already sent would have stopped the stream: search from the overlap.
        start = max(0, self.sent - max(len(s) for s in self.stop) + 1)
        hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
        return min(hits) if hits else None

    def _first_undecided(self) -> int | None:
        """The first position whose rest of the text is a proper beginning of some stop string."""
        longest = max(len(s) for s in self.stop)
        for i in range(max(self.sent, len(self.text) - longest + 1), len(self.text)):
            tail = self.text[i:]
            if any(len(s) > len(tail) and s.startswith(tail) for s in self.stop):
                return i
        return None
