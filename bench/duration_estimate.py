"""Benchmark of duration estimates: one real job per technique (SFT and RLVR on GSM8K, DPO on the demo's reply
preferences, RLAIF on the same prompts with a local scripted judge over HTTP) on the demo's tiny model, each
planned with warm-up steps of its own trainer; prints the plan's estimate against the job's actual seconds of
training and evaluation, and the median actual/estimated ratio (target within 0.7 to 1.4).

It never asserts; everything is written under a temporary folder.

    .venv/bin/python bench/duration_estimate.py [--rows 64] [--techniques sft,dpo,rlvr,rlaif]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.offline import apply_offline_env  # noqa: E402

apply_offline_env()

from core.workspace import Workspace  # noqa: E402

BAND = (0.7, 1.4)
# Each technique's data (a read query over the demo workspace) and its settings; epochs, not max_steps, so the
# plan's step count is tested too.
JOBS: dict[str, tuple[str, dict[str, Any]]] = {
    "sft": ("SELECT question, answer FROM gsm8k LIMIT {rows}", {"max_length": 256}),
    "dpo": ("SELECT prompt, chosen, rejected FROM reply_preferences LIMIT {rows}", {"max_length": 256}),
    "rlvr": ("SELECT question, answer FROM gsm8k LIMIT {rows}",
             {"num_generations": 4, "max_completion_length": 24, "micro_batch": 8, "max_length": 192}),
    "rlaif": ("SELECT prompt, chosen, rejected FROM reply_preferences LIMIT {rows}",
              {"num_generations": 4, "max_completion_length": 24, "micro_batch": 8, "max_length": 192,
               "rubric": "helpfulness", "judge_model": "openai/judge", "judge_retries": 0,
               "judge_requests_per_second": 1000}),
}


def setup(root: Path, scale: float) -> Workspace:
    from catalog.workspace_setup import init_workspace
    from runtimes.training.datasets.shared_data import import_gsm8k
    from runtimes.training.tiny_models import install_demo_models

    ws = Workspace(root / "ws")
    init_workspace(ws, demo=True, scale=scale)
    install_demo_models(ws)
    import_gsm8k(ws)
    return ws


def run_job(ws: Workspace, technique: str, rows: int, judge_url: str | None) -> dict[str, Any]:
    """One job to its end; its plan's estimate and its actual seconds (see the worker's duration check)."""
    from runtimes.jobs import lifecycle as launcher
    from runtimes.jobs.store import JobStore

    sql, settings = JOBS[technique]
    settings = {**settings, **({"judge_api_base": judge_url} if technique == "rlaif" else {})}
    job = launcher.submit(ws, "finetune", {"model": "tiny-qwen3", "sql": sql.format(rows=rows), "technique": technique,
                               "settings": settings, "name": f"bench-{technique}"})
    job = launcher.wait(ws, job.id, timeout_s=1800)
    if job.status != "succeeded":
        events = [e.message for e in JobStore(ws).events(job.id)][-3:]
        raise SystemExit(f"the {technique} job ended {job.status}: {job.error} {events}")
    report = json.loads((ws.root / "runs" / job.id / "report" / "report.json").read_text(encoding="utf-8"))
    summary, measured = report["summary"], job.lineage["plan"]["measured_duration"]
    return {"technique": technique, "steps": summary["steps"], "planned_steps": measured["steps"],
            "estimated_s": summary["duration_estimated_s"], "actual_s": summary["duration_actual_s"],
            "ratio": summary["duration_ratio"], "measured": measured}


def judge_server() -> Any:
    """A local OpenAI-compatible judge that grades each reply by its length (a score from 0 to 10)."""
    from tests.scripted_llm import ScriptedLLM, say

    def grade(body: dict) -> object:
        text = body["messages"][-1]["content"]
        reply = text.split("## The assistant's reply", 1)[-1].split("##", 1)[0]
        return say(f"Reasoning: brief.\nScore: {len(reply.strip()) % 11}")

    return ScriptedLLM([grade] * 100_000)


def run(techniques: list[str], rows: int, workdir: Path, *, scale: float = 0.1,
        log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    ws = setup(workdir, scale)
    results = []
    with judge_server() as judge:
        for technique in techniques:
            r = run_job(ws, technique, rows, judge.url)
            m = r["measured"]
            log(f"  {technique:5s}: {r['steps']:3d} steps (planned {r['planned_steps']}), estimated "
                f"{r['estimated_s']:6.1f} s (setup {m['setup_s']:.1f} + {m['steps']} × {m['step_s']:.2f} + "
                f"evaluation {m['evaluation_s']:.1f}), actual {r['actual_s']:6.1f} s, actual/estimated "
                f"{r['ratio']:.2f}")
            results.append(r)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64, help="rows each job reads (its query's LIMIT)")
    parser.add_argument("--techniques", default="sft,dpo,rlvr,rlaif")
    parser.add_argument("--scale", type=float, default=0.1, help="demo workspace scale")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="duration-estimate-") as tmp:
        results = run(a.techniques.split(","), a.rows, Path(tmp), scale=a.scale)
    ratios = [r["ratio"] for r in results]
    median = statistics.median(ratios)
    verdict = "within" if BAND[0] <= median <= BAND[1] else "outside"
    print(f"\nmedian actual/estimated over {len(ratios)} techniques: {median:.2f} ({verdict} the target band "
          f"{BAND[0]} to {BAND[1]}); range {min(ratios):.2f} to {max(ratios):.2f}")


if __name__ == "__main__":
    main()
