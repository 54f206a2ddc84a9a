"""Checkpointless recovery with torchft on CPU (gloo): of a data-parallel job of two workers, one is SIGKILLed;
the survivor waits at the per-step quorum, and the replacement receives model and optimizer state from it (no
disk checkpoint exists) and joins at the survivor's step; both end with the same weights and optimizer moments. Runs where torchft is installed (`pip install lathe-ml[recovery]`)."""
from __future__ import annotations

import argparse
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
pytest.importorskip("torchft")
pytestmark = pytest.mark.slow


def test_a_killed_worker_is_replaced_from_its_peer_and_no_step_is_lost(tmp_path):
    import checkpointless_recovery as bench

    from runtimes.training.tiny_models import build_tiny_model

    rows = [f"Where is order {i}? Order {i} ships on day {i % 7}." for i in range(400)]
    build_tiny_model("qwen3", tmp_path / "tiny", rows, hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=320)
    # A quorum of 2: the survivor waits for the replacement, so the test need not outlast its start.
    a = argparse.Namespace(steps=8, kill_at=3, checkpoint_every=2, min_replicas=2, min_step_s=0.0)
    peer = bench.run(a, tmp_path, "peer")

    assert peer["lost_steps"] == 0  # the survivor kept every committed step
    assert not list((tmp_path / "peer").glob("checkpoint-*"))  # nothing on disk to recover from
    replacement = bench._steps(tmp_path / "peer" / "worker1.jsonl")
    after = [s for s in replacement if s["started"] > peer["killed_t"]]
    assert after[0]["step"] > a.kill_at  # joined at the peer's step, healed from it, not from step 0 or a file
    assert after[0]["participants"] == 1 and {s["participants"] for s in after[1:]} == {2}  # healing, then both
    assert max(s["step"] for s in replacement) == a.steps
    finals = [float((tmp_path / "peer" / f"final-{w}.txt").read_text()) for w in (0, 1)]
    assert finals[0] == finals[1]  # the same weights and Adam moments on both
