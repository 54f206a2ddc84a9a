"""Smoke run of the SFT throughput benchmark's functions at toy size: the Lathe pipeline (DuckDB table →
`prepare_dataset` → the `sft` recipe) and the plain TRL script train on the same rows, and every run reports
the non-padding tokens it processed and a tokens/s figure. No timed assertions."""
from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import ROOT, SHARED_DATA

sys.path.insert(0, str(ROOT / "bench"))
GSM = SHARED_DATA / "gsm8k_test.jsonl"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not GSM.exists(), reason=f"{GSM} is absent (shared data beside the project)")]


def test_both_pipelines_train_on_the_same_rows_and_report_tokens_per_second(tmp_path):
    import sft_throughput as bench

    lines: list[str] = []
    out = bench.run(steps=3, repeat=1, warmup=1, rows=24, workdir=tmp_path, log=lines.append,
                    model=dict(hidden=64, layers=2, heads=4, kv_heads=2, vocab_size=600),
                    same=dict(micro_batch=2, max_length=96))

    rows = [json.loads(line) for line in GSM.read_text(encoding="utf-8").splitlines()[:24]]
    lathe_rows, plain_rows = list(out["prepared"].train), list(out["plain"])
    assert lathe_rows == plain_rows and len(lathe_rows) == 24
    assert [r["prompt"][0]["content"] for r in lathe_rows] == [r["question"] for r in rows]
    assert [r["completion"][0]["content"] for r in lathe_rows] == [r["answer"] for r in rows]

    for key in ("same", "auto"):
        comparison = out[key]
        assert len(comparison.lathe) == len(comparison.baseline) == 1
        for meter in comparison.lathe + comparison.baseline:
            assert meter.steps == 2 and meter.tokens > 0 and meter.tokens_per_second > 0
        assert comparison.ratio > 0 and comparison.paired_ratio > 0
    same = out["same"]
    # Same data, same batch size and truncation, same shuffling seed: the same tokens pass through both models.
    assert same.lathe[0].tokens == same.baseline[0].tokens
    # At most micro-batch × max_length real tokens per step.
    assert same.lathe[0].tokens <= 2 * 2 * 96
    assert out["auto_knobs"]["packing"] or out["auto_knobs"]["padding_free"]
    # Like with like: gradient checkpointing is set on both sides, not left to TRL's default (on).
    assert any('"gradient_checkpointing": false' in line for line in lines if line.startswith("1. same settings"))
    assert any(f"gradient_checkpointing {out['auto_knobs']['gradient_checkpointing']} on both sides" in line
               for line in lines)
    assert any(line.startswith("1. same settings") for line in lines)
    assert any("tokens/s" in line for line in lines)
