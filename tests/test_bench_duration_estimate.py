"""Smoke run of the duration-estimate benchmark at toy size: one real SFT job planned with warm-up steps reports
its estimate and its actual seconds, and the ratio between them. No timed assertions."""
from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT, SHARED_DATA

sys.path.insert(0, str(ROOT / "bench"))
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (SHARED_DATA / "gsm8k_test.jsonl").exists(),
                                                   reason="GSM8K is absent (shared data beside the project)")]


def test_a_job_reports_its_estimate_and_actual_duration(tmp_path):
    import duration_estimate as bench

    lines: list[str] = []
    (result,) = bench.run(["sft"], 12, tmp_path, scale=0.05, log=lines.append)
    assert result["technique"] == "sft" and result["steps"] == result["planned_steps"] >= 1
    assert result["estimated_s"] > 0 and result["actual_s"] > 0
    assert result["ratio"] == pytest.approx(result["actual_s"] / result["estimated_s"], rel=0.02)
    assert result["measured"]["warmup_steps"] == 2 and result["measured"]["evaluation_s"] > 0
    assert lines and lines[0].lstrip().startswith("sft") and "actual/estimated" in lines[0]
