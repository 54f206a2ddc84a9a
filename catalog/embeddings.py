"""The optional dense half of catalog search: text in, unit-length vectors out, behind one protocol.

The real embedder calls LiteLLM with the workspace's `[search] embedding_model`; with none configured
there is no embedder and search is BM25 alone. It never caches vectors itself (the search index does).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from core.errors import UserError
from core.settings import SearchSettings


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into vectors. An optional `identity` attribute (model and server) keys
    the cached document vectors, so that vectors from another embedder are never mixed in."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text (any length; search normalises them)."""
        ...


def identity_of(embedder: Embedder) -> str:
    return str(getattr(embedder, "identity", type(embedder).__qualname__))


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1, norms)


class LiteLLMEmbedder:
    """Embeddings from any LiteLLM embedding model: hosted, Ollama, vLLM or any OpenAI-compatible server."""

    def __init__(self, model: str, api_base: str | None = None, batch_size: int = 128, timeout_s: float = 60):
        self.model, self.api_base, self.batch_size, self.timeout_s = model, api_base, batch_size, timeout_s

    @property
    def identity(self) -> str:
        return f"litellm:{self.model}@{self.api_base or ''}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import litellm  # slow to import (seconds): only when dense search is configured

        kwargs: dict = {"model": self.model, "timeout": self.timeout_s}
        if self.api_base:
            kwargs["api_base"] = self.api_base
            # A self-hosted OpenAI-compatible server needs no key, but the OpenAI client insists on one.
            if self.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
                kwargs["api_key"] = "unused"
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            try:
                resp = litellm.embedding(input=batch, **kwargs)
            except Exception as e:  # LiteLLM maps every provider's failure to its own exception types
                where = f" at {self.api_base}" if self.api_base else ""
                raise UserError(f"embedding model `{self.model}`{where} failed: {type(e).__name__}: {e}; "
                                "fix `[search] embedding_model` / `embedding_api_base` in lathe.toml "
                                "or remove them to search with BM25 alone") from None
            data = sorted(resp.data, key=lambda d: d["index"])
            if len(data) != len(batch):
                raise UserError(f"embedding model `{self.model}` returned {len(data)} vectors for {len(batch)} texts")
            rows.extend(d["embedding"] for d in data)
        if not rows:
            return np.zeros((0, 0), dtype=np.float32)
        return unit_rows(np.array(rows, dtype=np.float32))


def embedder_for(settings: SearchSettings) -> Embedder | None:
    """The workspace's embedder, or None when `[search] embedding_model` is not set."""
    if not settings.embedding_model:
        return None
    return LiteLLMEmbedder(settings.embedding_model, settings.embedding_api_base)
