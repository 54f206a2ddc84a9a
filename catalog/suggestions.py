"""Close-match suggestions for unknown names ("no metric `revnue`; did you mean `revenue`?")."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    cands = list(dict.fromkeys(candidates))
    low = {c.lower(): c for c in cands}
    hits = difflib.get_close_matches(name.lower(), list(low), n=n, cutoff=0.6)
    # A name that is a whole part of a candidate ("region" for "customer__region") is a good guess too.
    hits += [c.lower() for c in cands if name.lower() in c.lower().split("__") and c.lower() not in hits]
    return [low[h] for h in hits[:n]]


def unknown(kind: str, name: str, candidates: Iterable[str]) -> str:
    """`no metric `revnue`; did you mean `revenue`?` or, with no close match, the first few known names."""
    cands = list(candidates)
    hits = close_matches(name, cands)
    if hits:
        return f"no {kind} `{name}`; did you mean " + " or ".join(f"`{h}`" for h in hits) + "?"
    if not cands:
        return f"no {kind} `{name}`: none are defined"
    shown = ", ".join(f"`{c}`" for c in sorted(cands)[:8])
    more = f" (and {len(cands) - 8} more)" if len(cands) > 8 else ""
    return f"no {kind} `{name}`; known: {shown}{more}"
