"""Catalog search: BM25 over the catalog's documents, fused with optional dense embeddings, each hit
saying why it matched.

The index lives under `workspace/.cache/search/<fingerprint>/`, keyed by the names, sizes and mtimes of
the catalog files, so a fresh index loads without reading any YAML. It never changes the catalog.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from catalog.embeddings import Embedder, embedder_for, identity_of, unit_rows
from core.errors import UserError
from catalog.search_documents import KINDS, STEMMER_NAME, Expansion, SearchDocument, documents, expansions, surface_words, term
from catalog.store import CatalogStore
from catalog.suggestions import unknown
from core.workspace import Workspace

INDEX_FORMAT = 1
_RRF_K = 60  # the constant of reciprocal rank fusion (Cormack et al.); damps the weight of the very top ranks
_CANDIDATES = 100  # how deep each ranking is read before fusion
_EMBED_BATCH = 256
# A query's words that a glossary synonym stands for count at this weight beside the term they expand to:
# literal mentions still count, but a synonym's rare words do not outweigh the rest of the question.
_SYNONYM_WEIGHT = 0.3

_log = logging.getLogger(__name__)


class SearchHit(BaseModel):
    kind: str
    name: str
    table: str | None = None
    score: float
    snippet: str = ""
    why: list[str] = Field(default_factory=list)


def catalog_fingerprint(ws: Workspace, embedder_identity: str | None = None) -> str:
    """A hash of the catalog files' names, sizes and mtimes, and of what builds the index from them."""
    h = hashlib.sha256(f"{INDEX_FORMAT}|{STEMMER_NAME}|{embedder_identity}".encode())
    root = ws.catalog_dir
    entries: list[tuple[str, int, int]] = []
    tables = root / "tables"
    if tables.is_dir():
        with os.scandir(tables) as it:
            for e in it:
                if e.name.endswith(".yml") and e.is_file():
                    st = e.stat()
                    entries.append((f"tables/{e.name}", st.st_size, st.st_mtime_ns))
    for name in ("glossary.yml", "owners.yml"):
        p = root / name
        if p.is_file():
            st = p.stat()
            entries.append((name, st.st_size, st.st_mtime_ns))
    semantic = root / "semantic"
    if semantic.is_dir():
        for p in semantic.rglob("*.y*ml"):
            st = p.stat()
            entries.append((str(p.relative_to(root)), st.st_size, st.st_mtime_ns))
    for rel, size, mtime in sorted(entries):
        h.update(f"\n{rel}\t{size}\t{mtime}".encode())
    return h.hexdigest()[:20]


class SearchIndex:
    """A built index on disk: BM25 arrays, the documents (read one at a time), optional vectors."""

    def __init__(self, path: Path):
        import bm25s

        self.path = path
        self.meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        self.size: int = self.meta["documents"]
        self.kinds = np.load(path / "kinds.npy")
        self.offsets = np.load(path / "offsets.npy")
        self.expansions = [Expansion(e["synonym"], tuple(e["synonym_terms"]), e["term_name"], tuple(e["term_terms"]))
                           for e in json.loads((path / "expansions.json").read_text(encoding="utf-8"))]
        self.bm25 = bm25s.BM25.load(path / "bm25", show_progress=False) if self.size else None
        self.vectors = np.load(path / "vectors.npy") if (path / "vectors.npy").exists() else None
        # Held open: a newer index may replace this folder while a long-lived process still reads it.
        self._docs = open(path / "documents.jsonl", "rb")

    def documents(self, ids: Iterable[int]) -> dict[int, SearchDocument]:
        fd = self._docs.fileno()
        out = {}
        for i in set(ids):
            start, end = int(self.offsets[i]), int(self.offsets[i + 1])
            out[i] = SearchDocument.from_json(json.loads(os.pread(fd, end - start, start)))
        return out

    def close(self) -> None:
        self._docs.close()

    def __del__(self) -> None:
        docs = getattr(self, "_docs", None)
        if docs is not None:
            docs.close()

    @staticmethod
    def write(path: Path, ws: Workspace, embedder: Embedder | None, fingerprint: str) -> None:
        """Build the index of the workspace's catalog into the (new, empty) folder `path`."""
        import bm25s

        started = time.perf_counter()
        catalog = CatalogStore(ws).load()
        docs = documents(catalog)
        path.mkdir(parents=True)
        offsets = [0]
        with open(path / "documents.jsonl", "wb") as f:
            for d in docs:
                offsets.append(offsets[-1] + f.write(json.dumps(d.to_json(), ensure_ascii=False).encode() + b"\n"))
        np.save(path / "offsets.npy", np.array(offsets, dtype=np.int64))
        np.save(path / "kinds.npy", np.array([KINDS.index(d.kind) for d in docs], dtype=np.int8))
        (path / "expansions.json").write_text(json.dumps([
            {"synonym": e.synonym, "synonym_terms": e.synonym_terms, "term_name": e.term_name, "term_terms": e.term_terms}
            for e in expansions(catalog)]), encoding="utf-8")
        if docs:
            bm25 = bm25s.BM25()
            bm25.index([d.index_terms() for d in docs], show_progress=False)
            bm25.save(path / "bm25", show_progress=False)
            if embedder is not None:
                texts = [d.embedding_text() for d in docs]
                vecs = np.concatenate([unit_rows(embedder.embed(texts[i:i + _EMBED_BATCH]))
                                       for i in range(0, len(texts), _EMBED_BATCH)])
                np.save(path / "vectors.npy", vecs)
        meta = {"format": INDEX_FORMAT, "fingerprint": fingerprint, "documents": len(docs), "stemmer": STEMMER_NAME,
                "embedder": identity_of(embedder) if embedder else None,
                "build_s": round(time.perf_counter() - started, 3)}
        (path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


class CatalogSearch:
    """Hybrid search over one workspace's catalog. Build with `for_workspace`; it reuses a fresh index."""

    def __init__(self, index: SearchIndex, embedder: Embedder | None, built: bool):
        self.index, self.embedder = index, embedder
        self.built = built  # True when this call had to (re)build the index, False when it loaded one

    @classmethod
    def for_workspace(cls, ws: Workspace, embedder: Embedder | None = None) -> "CatalogSearch":
        """Load the index of the catalog as it is now, building it first if the catalog changed.

        `embedder` defaults to the workspace's `[search] embedding_model` (none: BM25 alone).
        """
        ws.require()
        embedder = embedder if embedder is not None else embedder_for(ws.settings.search)
        CatalogStore(ws).recover()  # a half-applied catalog change is finished before fingerprinting
        fp = catalog_fingerprint(ws, identity_of(embedder) if embedder else None)
        root = ws.cache_dir / "search"
        final = root / fp
        if (final / "meta.json").exists():
            try:
                return cls(SearchIndex(final), embedder, built=False)
            except (OSError, ValueError, KeyError) as e:  # a damaged cache is disposable: build it again
                _log.warning("search index %s is unreadable (%s); rebuilding it", final, e)
                shutil.rmtree(final, ignore_errors=True)
        tmp = root / f".build-{uuid.uuid4().hex[:12]}"
        try:
            SearchIndex.write(tmp, ws, embedder, fp)
            try:
                tmp.rename(final)
            except OSError:  # another process built the same index meanwhile: keep theirs
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _remove_stale(root, keep=fp)
        return cls(SearchIndex(final), embedder, built=True)

    def search(self, text: str, k: int = 10, kinds: Sequence[str] | None = None) -> list[SearchHit]:
        """The `k` best matches for `text`, best first, optionally only of the given kinds."""
        if not text or not text.strip():
            raise UserError("search text is empty: give a few words to look for, e.g. `customer email`")
        if k < 1:
            raise UserError(f"the number of results must be at least 1, not {k}")
        for kind in kinds or ():
            if kind not in KINDS:
                raise UserError(unknown("search kind", kind, KINDS))
        ix = self.index
        if ix.size == 0:
            return []
        mask = np.isin(ix.kinds, [KINDS.index(x) for x in kinds]) if kinds else None

        surfaces = surface_words(text)
        query_terms = [term(w) for w in surfaces]
        covered: set[int] = set()
        found = []
        for e in ix.expansions:
            where = e.positions(query_terms)
            if where:
                found.append(e)
                covered.update(where)
        main = [t for i, t in enumerate(query_terms) if i not in covered] + [t for e in found for t in e.term_terms]
        synonyms = [query_terms[i] for i in sorted(covered) if query_terms[i] not in main]

        lexical = self._bm25([(main, 1.0), (synonyms, _SYNONYM_WEIGHT)], mask, max(k, _CANDIDATES))
        dense: dict[int, float] = {}
        if self.embedder is not None and ix.vectors is not None:
            dense = self._dense(text, mask, max(k, _CANDIDATES))
        if dense:
            fused: dict[int, float] = {}
            for ranking in (list(lexical), list(dense)):
                for rank, i in enumerate(ranking):
                    fused[i] = fused.get(i, 0.0) + 1.0 / (_RRF_K + rank + 1)
            ranked = sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:k]
        else:
            ranked = list(lexical.items())[:k]

        docs = ix.documents(i for i, _ in ranked)
        return [SearchHit(kind=docs[i].kind, name=docs[i].name, table=docs[i].table, score=round(float(s), 4),
                          snippet=docs[i].snippet, why=_why(docs[i], surfaces, found, dense.get(i)))
                for i, s in ranked]

    def _bm25(self, groups: list[tuple[list[str], float]], mask: np.ndarray | None, n: int) -> dict[int, float]:
        """BM25 scores of weighted groups of query terms (each term once), summed."""
        bm25 = self.index.bm25
        scores = None
        for terms, weight in groups:
            ids = bm25.get_tokens_ids(list(dict.fromkeys(terms)))
            if ids:
                part = bm25.get_scores_from_ids(ids) * weight
                scores = part if scores is None else scores + part
        if scores is None:
            return {}
        if mask is not None:
            scores = np.where(mask, scores, 0)
        return _top(scores, n)

    def _dense(self, text: str, mask: np.ndarray | None, n: int) -> dict[int, float]:
        q = unit_rows(self.embedder.embed([text]))[0]
        sims = self.index.vectors @ q
        if mask is not None:
            sims = np.where(mask, sims, -np.inf)
        # Only positively similar documents count as dense matches.
        return _top(sims, n)


def _top(scores: np.ndarray, n: int) -> dict[int, float]:
    """The `n` highest positive scores as {document: score}, best first (ties by document order)."""
    n = min(n, len(scores))
    idx = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    idx = idx[scores[idx] > 0]
    idx = idx[np.lexsort((idx, -scores[idx]))]
    return {int(i): float(scores[i]) for i in idx}


def _why(doc: SearchDocument, surfaces: list[str], found: list[Expansion], similarity: float | None) -> list[str]:
    why: list[str] = []
    for w in dict.fromkeys(surfaces):
        where = doc.where(term(w))
        if where:
            why.append(f"'{w}' {where}")
    for e in found:
        # The glossary term itself already says "'sales' in synonyms".
        if (doc.kind, doc.name) != ("glossary", e.term_name) and any(doc.where(t) for t in e.term_terms):
            why.append(f"glossary synonym '{e.synonym}' → {e.term_name}")
    if similarity is not None:
        why.append(f"dense similarity {similarity:.2f}")
    return why


def _remove_stale(root: Path, keep: str) -> None:
    """Drop indexes of earlier catalog states, and build folders abandoned over an hour ago."""
    now = time.time()
    for p in root.iterdir():
        if p.name == keep:
            continue
        if p.name.startswith(".build-"):
            try:
                if now - p.stat().st_mtime < 3600:
                    continue
            except FileNotFoundError:
                continue
        shutil.rmtree(p, ignore_errors=True)
