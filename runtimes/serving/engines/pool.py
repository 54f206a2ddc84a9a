"""The engines behind one endpoint: the served versions grouped by base model (LoRA adapters over one base share
one `Engine`), loaded at start (real-time) or on first use and dropped after an idle timeout (serverless).

It never unloads an engine while a request holds it, and it knows nothing of HTTP: the API asks it for an
engine, reports the first token of a cold start back, and releases the engine when done.
"""
from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import UserError
from runtimes.models.refs import ServedModel

EventSink = Callable[[str, str, dict[str, Any]], None]  # (kind, message, data)


class UnknownModel(UserError):
    """A request named a model this endpoint does not serve."""


@dataclass
class ColdStart:
    """An engine start a request waited for; completed by the request's first token."""
    model: str
    base: str
    load_ms: float
    requested_at: float  # perf_counter() when the request arrived


@dataclass
class _Slot:
    base: str
    served: list[ServedModel]
    engine: Any = None
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)
    loading: threading.Lock = field(default_factory=threading.Lock)


class EnginePool:
    def __init__(self, served: Sequence[ServedModel], *, serverless: bool = False, idle_timeout_s: float = 300.0,
                 engine_options: Mapping[str, Any] | None = None, aliases: Mapping[str, str] | None = None,
                 on_event: EventSink | None = None) -> None:
        if not served:
            raise UserError("an endpoint serves at least one model")
        self.serverless = serverless
        self.idle_timeout_s = idle_timeout_s
        self.engine_options = dict(engine_options or {})
        self._on_event = on_event or (lambda kind, message, data: None)
        self._served = {s.id: s for s in served}
        self._aliases = {a: i for a, i in (aliases or {}).items() if i in self._served and a not in self._served}
        self._slots: dict[str, _Slot] = {}
        for s in served:
            self._slots.setdefault(s.base, _Slot(base=s.base, served=[])).served.append(s)
        self._lock = threading.Lock()  # guards in_flight, last_used and engine swaps

    # ---- which models ---------------------------------------------------------------------------
    def ids(self) -> list[str]:
        return list(self._served)

    def resolve(self, name: str) -> ServedModel:
        """The served model a request's `model` field names (its id, or the reference it was deployed as)."""
        if name in self._served:
            return self._served[name]
        if name in self._aliases:
            return self._served[self._aliases[name]]
        raise UnknownModel(f"The model `{name}` does not exist on this endpoint; it serves: "
                           + ", ".join(f"`{i}`" for i in self._served))

    def loaded(self) -> list[str]:
        """Model ids whose engine is in memory."""
        with self._lock:
            return [m.id for s in self._slots.values() if s.engine is not None for m in s.served]

    def loaded_adapters(self) -> dict[str, list[str]]:
        """Per loaded base model, the model ids whose adapters are in memory."""
        with self._lock:
            engines = {s.base: s.engine for s in self._slots.values() if s.engine is not None}
        return {base: engine.loaded_adapters() for base, engine in engines.items()}

    # ---- engines ----------------------------------------------------------------------------------
    def acquire(self, model_id: str, requested_at: float | None = None) -> tuple[Any, ColdStart | None]:
        """The engine serving `model_id`, loaded now if it is not (the returned `ColdStart` says so); the caller
        holds it until `release`."""
        slot = self._slots[self._served[model_id].base]
        with self._lock:
            slot.in_flight += 1  # counted before loading: an idle sweep never drops what a request waits for
            slot.last_used = time.monotonic()
            engine = slot.engine
        if engine is not None:
            return engine, None
        try:
            with slot.loading:  # two first requests at once load one engine
                if slot.engine is not None:
                    return slot.engine, None
                started = time.perf_counter()
                engine = self._start(slot)
                load_ms = (time.perf_counter() - started) * 1000
                with self._lock:
                    slot.engine = engine
        except BaseException:
            self.release(model_id)
            raise
        self._on_event("loaded", f"loaded {slot.base} in {load_ms:.0f} ms",
                       {"base": slot.base, "models": [s.id for s in slot.served], "load_ms": round(load_ms, 1)})
        return engine, ColdStart(model=model_id, base=slot.base, load_ms=load_ms,
                                 requested_at=requested_at if requested_at is not None else started)

    def release(self, model_id: str) -> None:
        slot = self._slots[self._served[model_id].base]
        with self._lock:
            slot.in_flight = max(0, slot.in_flight - 1)
            slot.last_used = time.monotonic()

    def cold_start_done(self, cold: ColdStart, first_token_at: float) -> float:
        """Record a cold start once its first token is out; returns its length in ms (request to first token)."""
        total_ms = (first_token_at - cold.requested_at) * 1000
        self._on_event("cold_start", f"cold start of {cold.model}: {total_ms:.0f} ms to the first token "
                       f"(load {cold.load_ms:.0f} ms)",
                       {"model": cold.model, "base": cold.base, "cold_start_ms": round(total_ms, 1),
                        "load_ms": round(cold.load_ms, 1),
                        "first_token_ms": round(total_ms - cold.load_ms, 1)})
        return total_ms

    def load_all(self) -> None:
        """Load every engine now (a real-time endpoint's start)."""
        for s in self._slots.values():
            engine, _ = self.acquire(s.served[0].id)
            self.release(s.served[0].id)
            del engine

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Drop engines unused for the idle timeout with no request in flight (serverless only); returns
        the bases dropped."""
        if not self.serverless:
            return []
        now = time.monotonic() if now is None else now
        dropped = []
        with self._lock:
            for slot in self._slots.values():
                if slot.engine is not None and slot.in_flight == 0 and now - slot.last_used >= self.idle_timeout_s:
                    for model_id in slot.engine.loaded_adapters():  # they leave memory with their engine
                        self._adapter_changed("unloaded", model_id)
                    slot.engine = None
                    dropped.append(slot.base)
        if dropped:
            _free_memory()
            self._on_event("unloaded", f"scaled to zero after {self.idle_timeout_s:g} s idle: {', '.join(dropped)}",
                           {"bases": dropped, "loaded": self.loaded()})
        return dropped

    def _adapter_changed(self, change: str, model_id: str) -> None:
        """An adapter loaded on a request's demand or dropped (least recently used, or with its engine)."""
        self._on_event(f"adapter_{change}", f"adapter {model_id} {change}", {"model": model_id})

    def _start(self, slot: _Slot) -> Any:
        options = dict(self.engine_options)
        if options.pop("backend", "transformers") == "vllm":
            from runtimes.serving.engines.vllm_engine import VllmEngine as Engine
        else:
            from runtimes.serving.engines.transformers_engine import Engine  # type: ignore[assignment]

            options["on_adapter"] = self._adapter_changed
        engine = Engine(slot.base, **options)
        for s in slot.served:
            engine.register(s)
        return engine


def context_length(engine: Any) -> int | None:
    """How many tokens (prompt and completion together) the engine's model takes, None when it does not say."""
    config = getattr(getattr(engine, "model", None), "config", None)
    n = getattr(config, "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else None


def _free_memory() -> None:
    gc.collect()
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
