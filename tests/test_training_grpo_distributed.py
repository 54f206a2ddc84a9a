"""GRPO (rlvr, rlaif) on several ranks, as TRL's GRPOTrainer runs it: each rank generates its share of a step's
completions, and a prompt's group may span ranks, so micro_batch × gradient_accumulation × processes must hold whole
groups; the plan says so and refuses settings that cannot, with ones that would. A 2-rank RLVR job (gloo, torchrun)
on GSM8K rows trains with rewards reported by rank 0, then evaluates and registers as one process does. RLAIF's
ranks share one judge, each within its share of the job's rate limit and calls in flight."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core.errors import UserError
from runtimes.training.auto_config import DataProfile, auto_configure
from runtimes.training.plan_explanation import explain
from runtimes.training.recipes import parse_config
from tests.rank_processes import alive, rank_pids
from tests.test_training_distributed import cpu

PROMPTS = DataProfile.from_lengths([50] * 100, completion_lengths=[30] * 100)


def test_the_groups_fit_all_ranks_completions_and_the_plan_says_how_the_ranks_share_them(shape):
    # 2 completions a rank, 4 a step: one prompt's group of 4 spans both ranks.
    spanning = auto_configure(shape, PROMPTS, cpu(), "rlvr", {"processes": 2, "micro_batch": 2,
                                                              "gradient_accumulation": 1, "num_generations": 4})
    c = spanning.config
    assert (c.processes, c.strategy, c.effective_batch, c.num_generations) == (2, "ddp", 4, 4)
    assert ("Generation: each optimizer step samples 4 completions, 4 for each of 1 prompt; each of the 2 ranks "
            "generates 2 of them") in explain(spanning)
    # What the user left open follows: the accumulation (aiming at 16 completions: 3 × 3 × 2 = 18 does not hold
    # groups of 4, 3 × 4 × 2 = 24 does), then the group size.
    acc = auto_configure(shape, PROMPTS, cpu(), "rlvr", {"processes": 2, "micro_batch": 3, "num_generations": 4})
    assert (acc.config.gradient_accumulation, acc.config.effective_batch) == (4, 24)
    assert "micro_batch 3 × 4 × processes 2 = 24 completions per step" in acc.decision("gradient_accumulation").reason
    open_n = auto_configure(shape, PROMPTS, cpu(), "rlvr", {"processes": 2, "micro_batch": 1,
                                                            "gradient_accumulation": 1})
    assert open_n.config.num_generations == 2 and "× processes 2 = 2 completions per step" in \
        open_n.decision("num_generations").reason
    # Two epochs of 100 prompts, a step taking every rank's completions over the group size: 6 prompts, then 1.
    assert (acc.steps, open_n.steps) == (2 * (100 // 6), 2 * 100)

    with pytest.raises(UserError, match=r"^micro_batch × gradient_accumulation × processes \(2 × 1 × 2 = 4\) must be "
                                        r"a multiple of num_generations \(3\) \(TRL's generation batch, spread over "
                                        r"the ranks\): each prompt's completions are scored as one group; use "
                                        r"gradient_accumulation=3 \(2 × 3 × 2 = 12\), or num_generations=2 or 4$"):
        auto_configure(shape, PROMPTS, cpu(), "rlvr", {"processes": 2, "micro_batch": 2, "gradient_accumulation": 1,
                                                       "num_generations": 3})
    # The recipe checks the same rule (its settings reach every rank): one rank alone would not hold the group.
    assert parse_config("rlvr", {"micro_batch": 2, "num_generations": 4, "processes": 2}).grad_accum == 1
    with pytest.raises(UserError, match=r"micro_batch × grad_accum \(2 × 1 = 2\) must be a multiple of "
                                        r"num_generations \(4\)"):
        parse_config("rlvr", {"micro_batch": 2, "grad_accum": 1, "num_generations": 4})


def test_rlaif_ranks_share_one_judge_within_the_jobs_limits(tmp_path):
    from runtimes.training.recipes.rlaif_recipe import build_judge

    config = parse_config("rlaif", {"judge_model": "openai/judge", "judge_api_base": "http://127.0.0.1:9",
                                    "judge_concurrency": 5, "judge_requests_per_second": 8.0, "micro_batch": 2,
                                    "num_generations": 4, "processes": 2})
    rank = build_judge(config, tmp_path)
    assert (rank.concurrency, rank.requests_per_second) == (2, 4.0)  # two ranks: at most 4 in flight, 8 a second
    alone = build_judge(config, tmp_path, ranks=1)  # evaluation after training, in the job's one process
    assert (alone.concurrency, alone.requests_per_second) == (5, 8.0)
    few = build_judge(config.model_copy(update={"judge_concurrency": 1}), tmp_path)
    assert few.concurrency == 1  # each rank calls at least once at a time
    assert alone.cache_path == rank.cache_path  # one cache: a score paid for by any rank is reused on resume


# --- a job with 2 CPU ranks -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ws(gsm8k_demo):
    return gsm8k_demo


@pytest.mark.slow
def test_lathe_finetune_rlvr_on_two_ranks_trains_reports_rewards_from_rank_0_evaluates_and_registers(ws):
    from cli.main import app
    from runtimes.jobs import lifecycle
    from runtimes.jobs.store import JobStore
    from tests.waiting import JOB_STALL_S

    runner = CliRunner()
    args = ["--workspace", str(ws.root), "finetune", "--model", "tiny-qwen3", "--technique", "rlvr", "--data",
            "SELECT * FROM gsm8k LIMIT 24", "--processes", "2", "--set", "micro_batch=2", "--set",
            "gradient_accumulation=1"]
    bad = runner.invoke(app, [*args, "--set", "num_generations=3", "--dry-run"])
    assert bad.exit_code != 0 and "micro_batch × grad_accum × processes (2 × 1 × 2 = 4) must be a multiple of " \
                                  "num_generations (3)" in bad.output
    # 3 rows, one held out: 2 prompts to train on, and a step would take 4.
    short = runner.invoke(app, [*[a.replace("LIMIT 24", "LIMIT 3") for a in args], "--set", "gradient_accumulation=4",
                                "--set", "num_generations=4", "--dry-run"])
    assert short.exit_code != 0 and ("each GRPO step takes 4 prompts (micro_batch × gradient_accumulation × processes "
                                     "/ num_generations = 2 × 4 × 2 / 4), more than the 2 rows to train on, so no "
                                     "step would run") in short.output, short.output

    # A random model never gets GSM8K's number right; the weighted regex reward (a digit anywhere) has spread.
    rewards = '[{"name": "numeric_answer", "weight": 2}, {"name": "regex", "pattern": "\\\\d", "weight": 1}]'
    run = runner.invoke(app, [*args, "--set", "num_generations=4", "--set", "max_steps=2", "--set",
                              "max_completion_length=8", "--set", "max_length=128", "--set", f"rewards={rewards}"])
    assert run.exit_code == 0, run.output
    job = lifecycle.wait(ws, run.output.split(":")[0].strip(), timeout_s=JOB_STALL_S, poll_s=0.5)
    store = JobStore(ws)
    events = store.events(job.id)
    assert job.status == "succeeded", (job.error, [e.message for e in events][-3:])
    assert "each of the 2 ranks generates 2 of them" in job.plan["explanation"]
    assert (job.config["processes"], job.config["strategy"], job.config["num_generations"]) == (2, "ddp", 4)
    assert any(e.kind == "ranks" and len(e.data["pids"]) == 2 for e in events)

    # Rank 0 alone writes the metrics; TRL gathers every rank's rewards before it logs them.
    assert [r["weight"] for r in job.config["rewards"]] == [2, 1] and job.step == 2
    logged = {name: [(step, v) for _, step, _, v in store.metrics(job.id, name)]
              for name in ("reward", "rewards/numeric_answer/mean", "rewards/regex/mean")}
    assert all([s for s, _ in steps] == [1, 2] for steps in logged.values()), logged
    assert all(v == 0 for _, v in logged["rewards/numeric_answer/mean"])
    assert any(0 < v < 1 for _, v in logged["rewards/regex/mean"])  # the spread that gives a gradient
    assert [v for _, v in logged["reward"]] == [v for _, v in logged["rewards/regex/mean"]]  # weight 1, the other 0

    # Evaluation and registration as after one process: base vs tuned reward on held-out rows, a version.
    assert any(e.kind == "evaluation" and "held-out verifiable reward" in e.message for e in events)
    name, version = job.model_version.split("/")
    from runtimes.models.registry import get_version

    lineage = get_version(ws, name, version).lineage
    assert {"base_reward", "tuned_reward", "steps"} <= set(lineage["metrics"]) and lineage["config"]["processes"] == 2
    assert not any(alive(p) for p in rank_pids(store, job.id, 1))
