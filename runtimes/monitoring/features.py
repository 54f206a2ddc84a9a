"""Features of LLM traffic, one row per request: prompt and response length (characters and words), the
prompt's language, its topic, latency, token counts and, where a judge is configured, a judge's score.

The same function computes them for captured traffic and for a model's training data, so the two compare.
It reads the catalog only for the topic vocabulary and never writes anything.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from runtimes.monitoring.drift import ColumnKind

# Every feature and how its drift is tested.
FEATURES: dict[str, ColumnKind] = {
    "prompt_length": "numerical",  # characters
    "prompt_words": "numerical",
    "response_length": "numerical",
    "response_words": "numerical",
    "language": "categorical",
    "topic": "categorical",
    "latency_ms": "numerical",
    "prompt_tokens": "numerical",
    "completion_tokens": "numerical",
    "judge_score": "numerical",
}
# Features only served traffic has: a training set has no latency and is not tokenized as served.
TRAFFIC_ONLY = ("latency_ms", "prompt_tokens", "completion_tokens")
OTHER_TOPIC = "other"
UNKNOWN_LANGUAGE = "unknown"
_LANGUAGE_CONFIDENCE = 0.5  # below this the language of a short text is a guess: call it unknown
_ROLE_PREFIX = re.compile(r"^(system|user|assistant|tool|developer):\s?", re.MULTILINE)


@dataclass(frozen=True)
class Topics:
    """The topic vocabulary: each glossary term and metric of the catalog, with the phrases that name it.

    A prompt's topic is the term its text names most often (whole words, any case; a tie goes to the term
    first in alphabetical order), or `other` when it names none."""
    phrases: dict[str, str]  # lower-case phrase → topic

    @classmethod
    def from_catalog(cls, ws: Any) -> "Topics":
        from catalog.store import CatalogStore

        catalog = CatalogStore(ws).load()
        phrases: dict[str, str] = {}
        for term in sorted(catalog.glossary.values(), key=lambda t: t.name):
            for p in (term.name, *term.synonyms):
                phrases.setdefault(p.strip().lower(), term.name)
        for metric in sorted(catalog.semantic.metrics, key=lambda m: m.name):
            for p in (metric.name, metric.name.replace("_", " "), metric.label or ""):
                if p.strip():
                    phrases.setdefault(p.strip().lower(), metric.name)
        return cls(phrases)

    @property
    def key(self) -> str:
        """Changes when the vocabulary does (stored features are then recomputed)."""
        import hashlib

        return hashlib.sha256(repr(sorted(self.phrases.items())).encode()).hexdigest()[:16]

    def of(self, texts: Sequence[str]) -> list[str]:
        if not self.phrases:
            return [OTHER_TOPIC] * len(texts)
        pattern = _phrase_pattern(tuple(sorted(self.phrases, key=lambda p: (-len(p), p))))
        out = []
        for text in texts:
            counts = Counter(self.phrases[m.lower()] for m in pattern.findall(text or ""))
            out.append(min(counts, key=lambda t: (-counts[t], t)) if counts else OTHER_TOPIC)
        return out


@lru_cache(maxsize=8)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    # Longest phrases first, so "average order value" wins over "order".
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(p) for p in phrases) + r")(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    # Our own instance: py3langid's module-level one is shared and `set_languages` would change it for all.
    return LanguageIdentifier.from_modelpath(Path(MODEL_DIR) / MODEL_FILE, norm_probs=True)


def languages(texts: Sequence[str]) -> list[str]:
    """ISO 639-1 code of each text's language (py3langid, offline), `unknown` for text too short to tell."""
    ident = _identifier()
    out = []
    for text in texts:
        plain = _ROLE_PREFIX.sub("", text or "")
        if not any(ch.isalpha() for ch in plain):
            out.append(UNKNOWN_LANGUAGE)
            continue
        lang, confidence = ident.classify(plain)
        out.append(lang if confidence >= _LANGUAGE_CONFIDENCE else UNKNOWN_LANGUAGE)
    return out


def user_text(prompt: str) -> str:
    """A prompt without the `role:` prefixes of rendered chat lines (what language and topic look at)."""
    return _ROLE_PREFIX.sub("", prompt or "")


@dataclass(frozen=True)
class JudgeSettings:
    """An LLM judge (any LiteLLM model name) that scores each reply 0..1 with a rubric."""
    model: str
    rubric: str = "helpfulness"
    api_base: str | None = None
    api_key: str | None = None


def judge_scores(judge: JudgeSettings, prompts: Sequence[str], responses: Sequence[str],
                 run_dir: Path) -> list[float | None]:
    """Scores from the training side's LiteLLM judge (cached on disk in `run_dir`; a failure is None)."""
    import asyncio

    from runtimes.judging.judge import Judge, load_rubric

    j = Judge(model=judge.model, rubric=load_rubric(judge.rubric), run_dir=run_dir, api_base=judge.api_base,
              api_key=judge.api_key)
    work = j.score([user_text(p) for p in prompts], list(responses))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    # Called from async code (a chat front-end): the judge's own loop runs in a thread beside it.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def compute_features(prompts: Sequence[str], responses: Sequence[str], *, topics: Topics,
                     latency_ms: Sequence[float] | None = None, prompt_tokens: Sequence[int] | None = None,
                     completion_tokens: Sequence[int] | None = None, judge: JudgeSettings | None = None,
                     judge_dir: Path | None = None) -> Any:
    """A DataFrame of the features of each (prompt, response); traffic-only columns are NaN where not given."""
    import numpy as np
    import pandas as pd

    n = len(prompts)
    if len(responses) != n:
        raise ValueError(f"{n} prompts but {len(responses)} responses")
    p = pd.Series(list(prompts), dtype=object).fillna("")
    r = pd.Series(list(responses), dtype=object).fillna("")
    plain = [user_text(t) for t in p]
    frame = pd.DataFrame({
        "prompt_length": p.str.len().astype(float),
        "prompt_words": p.str.split().str.len().fillna(0).astype(float),
        "response_length": r.str.len().astype(float),
        "response_words": r.str.split().str.len().fillna(0).astype(float),
        "language": languages(plain),
        "topic": topics.of(plain),
    })
    for name, values in (("latency_ms", latency_ms), ("prompt_tokens", prompt_tokens),
                         ("completion_tokens", completion_tokens)):
        frame[name] = np.asarray(values, dtype=float) if values is not None else np.full(n, np.nan)
    if judge is not None and n:
        if judge_dir is None:
            raise ValueError("a judge needs a folder for its cache (judge_dir)")
        scores = judge_scores(judge, list(p), list(r), judge_dir)
        frame["judge_score"] = [np.nan if s is None else s for s in scores]
    else:
        frame["judge_score"] = np.full(n, np.nan)
    return frame
