"""A workspace with registered versions to deploy, for the endpoint, CLI and tool tests: a base model
`tiny-qwen3` (in `models/base`), LoRA versions over it, one pending version, one adapter trained on another
base that must not fit, and one full model whose weights are broken (its start fails)."""
from __future__ import annotations

from pathlib import Path

from core.workspace import Workspace
from tests.serving_models import tiny_adapter, tiny_base


def _lineage(job: str, base: str = "tiny-qwen3") -> dict:
    return {"job_id": job, "base_model": base, "technique": "sft", "dataset_sql": 'SELECT * FROM "tickets"'}


def registered_workspace(root: Path) -> Workspace:
    from runtimes.models.registry import decide, register_version

    ws = Workspace(root / "ws")
    ws.create()
    base = tiny_base(ws.root / "models" / "base" / "tiny-qwen3")
    runs = ws.root / "runs"
    register_version(ws, "tickets-sft", str(tiny_adapter(base, runs / "j1" / "model", seed=1)), None, _lineage("j1"))
    decide(ws, "tickets-sft", "1", "approved", "dana")
    register_version(ws, "tickets-sft", str(tiny_adapter(base, runs / "j2" / "model", seed=2)), None, _lineage("j2"))
    register_version(ws, "replies-sft", str(tiny_adapter(base, runs / "j3" / "model", seed=3)), None, _lineage("j3"))
    decide(ws, "replies-sft", "1", "approved", "dana")

    # An adapter trained on a wider base, registered as if it were for tiny-qwen3: it must be refused.
    other = tiny_base(root / "other-base", hidden=48)
    register_version(ws, "wide-sft", str(tiny_adapter(other, runs / "j4" / "model", seed=4)), None, _lineage("j4"))
    decide(ws, "wide-sft", "1", "approved", "dana")

    # A full model whose weights file is broken: it passes every check and fails to load.
    broken = tiny_base(runs / "j5" / "model", seed=5)
    for weights in broken.glob("*.safetensors"):
        weights.write_bytes(b"not safetensors")
    register_version(ws, "broken-sft", str(broken), None, _lineage("j5"))
    decide(ws, "broken-sft", "1", "approved", "dana")
    return ws
