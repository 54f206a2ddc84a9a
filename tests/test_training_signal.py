"""A job succeeds only when it learned from something: real RLAIF jobs on a tiny local model whose judge (a real
OpenAI-compatible server on loopback) stops answering fail with the reason and register nothing; an unreachable
judge is refused at plan time naming its URL; a `lathe/ENDPOINT` judge is found through the endpoint store;
prompt-only data trains RLAIF; the signal check reads logged steps as TRL writes them."""
from __future__ import annotations

import json
import math
import socket

import pytest

from core.errors import UserError
from catalog.importers import import_paths
from runtimes.jobs import lifecycle as launcher
from runtimes.training.jobs.signal_check import SignalCheck, step_problem
from runtimes.jobs.store import JobStore
from runtimes.training.jobs.spec import JobSpec
from runtimes.models.registry import list_versions
from tests.scripted_llm import ScriptedLLM, say
from tests.waiting import wait_for_job

PROMPTS = [f"Where is order {i}? It was due on day {i % 5 + 1}." for i in range(24)]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from core.workspace import Workspace
    from runtimes.training.tiny_models import build_tiny_model

    root = tmp_path_factory.mktemp("signal")
    ws = Workspace(root / "ws")
    ws.create()
    f = root / "questions.jsonl"  # prompts alone: no reference replies
    f.write_text("".join(json.dumps({"question_text": p, "ticket": i}) + "\n" for i, p in enumerate(PROMPTS)))
    g = root / "asked.jsonl"  # column names that say nothing: the mapping has to be given
    g.write_text("".join(json.dumps({"q": p, "a": f"Day {i % 5 + 1}."}) + "\n" for i, p in enumerate(PROMPTS)))
    import_paths(ws, [f, g])
    build_tiny_model("qwen3", ws.root / "models" / "base" / "tiny", PROMPTS + ["Score: 7", "Day 3."],
                     hidden=32, layers=1, heads=2, kv_heads=1, vocab_size=320)
    return ws


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed


def _rlaif(url: str, **settings) -> dict:
    return {"model": "tiny", "table": "questions", "technique": "rlaif", "eval_fraction": 0,
            "settings": {"max_steps": 4, "micro_batch": 4, "num_generations": 2, "max_completion_length": 8,
                         "judge_model": "openai/judge", "judge_api_base": url, "judge_retries": 0,
                         "judge_requests_per_second": 1000, **settings}}


def test_step_problems_as_trl_logs_them():
    assert step_problem({"loss": 1.2, "grad_norm": 0.4}) is None
    assert step_problem({"loss": 0.0, "grad_norm": 0.3, "reward": 0.5}) is None  # GRPO's loss rounds to 0
    assert "no reward" in step_problem({"loss": 0.0, "grad_norm": 0.0, "reward": math.nan})
    assert "gradient norm is 0" in step_problem({"loss": 0.0, "grad_norm": 0.0, "reward": 0.4})
    assert "not a number" in step_problem({"loss": math.nan, "grad_norm": 1.0})
    assert "exactly 0" in step_problem({"loss": 0.0, "grad_norm": 1e-3})
    check = SignalCheck(0.5)

    class State:
        max_steps = 4

    class Control:
        should_training_stop = False

    control = Control()
    for logs in ({"loss": 1.0, "grad_norm": 1.0}, {"loss": 0.0, "grad_norm": 0.0},
                 {"loss": 0.9, "grad_norm": 0.5}, {"eval_loss": 3.0}, {"train_runtime": 1.0, "train_loss": 0.0}):
        check.on_log(None, State(), control, logs)
    assert (check.steps, check.degenerate, check.verdict(), control.should_training_stop) == (3, 1, None, False)
    check.on_log(None, State(), control, {"loss": math.inf})
    check.on_log(None, State(), control, {"loss": 0.0, "grad_norm": 0.0, "reward": None, "train_runtime": 3.0})
    assert control.should_training_stop  # 3 of 4 planned steps without signal: no need to go on
    assert check.verdict().startswith("no training signal: 3 of 5 logged steps had none, over the 50% allowed")


def test_an_unreachable_judge_is_refused_at_plan_time_and_creates_no_job(ws):
    from runtimes.training.planning import plan_finetune

    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(UserError) as e:
        plan_finetune(ws, JobSpec.parse(_rlaif(url)))
    assert "the judge `openai/judge` at " + url + " does not answer" in str(e.value)
    with pytest.raises(UserError, match="does not answer"):
        launcher.submit(ws, "finetune", _rlaif(url))
    assert JobStore(ws).list() == []


@pytest.mark.slow
def test_a_judge_that_stops_answering_fails_the_job_and_registers_nothing(ws):
    store = JobStore(ws)
    # The probe before training and the first steps' scores are answered; then every call fails (HTTP 500).
    with ScriptedLLM([say("Score: 5")] * 3) as llm:
        job = launcher.submit(ws, "finetune", _rlaif(llm.url, max_steps=6))
        done = wait_for_job(ws, job.id)
    assert done.status == "failed", done.error
    assert done.error.startswith("no training signal: ") and "no reward" in done.error
    assert "nothing was registered" in done.error and done.model_version is None
    assert list_versions(ws) == []
    assert not (ws.root / "runs" / job.id / "model").exists()
    rewarded = [step for _, step, name, _ in store.metrics(job.id) if name == "reward"]
    trained = [step for _, step, name, _ in store.metrics(job.id) if name == "loss"]
    # The scripted answers go to the probes and the plan's warm-up steps (which score too) and at most to the
    # first step: no step after it has a reward, and training went on long enough to see that.
    assert set(rewarded) <= {1} and trained[:2] == [1, 2]
    assert done.step < 6  # it stopped once the outcome was certain


@pytest.mark.slow
def test_a_lathe_endpoint_is_the_judge_through_the_endpoint_store(ws):
    """The endpoint's row and local key are real; the scripted server stands where its process would listen."""
    from runtimes.serving.endpoints.store import EndpointStore
    from runtimes.serving.endpoints.deploy import endpoint_dir
    from runtimes.training.planning import plan_finetune
    from runtimes.judging.judge import local_judge_settings

    spec = JobSpec.parse(_rlaif("", judge_model="lathe/grader", judge_api_base=None))
    with pytest.raises(UserError, match=r"judge `lathe/grader`: this workspace has no endpoint or served version "
                                        r"`grader` \(endpoints: none yet\)"):
        plan_finetune(ws, spec)
    store = EndpointStore(ws)
    store.create(name="grader", models=[{"ref": "tiny-judge@1", "id": "tiny-judge-v1"}], mode="dedicated",
                 idle_timeout=0, host="127.0.0.1", fixed_port=None, key_hash="x", local_key_hash=None, engine={},
                 capture_rate=0.0)
    with pytest.raises(UserError, match="endpoint `grader` is stopped; start it with `lathe endpoints start grader`"):
        plan_finetune(ws, spec)
    endpoint_dir(ws, "grader").mkdir(parents=True, exist_ok=True)
    (endpoint_dir(ws, "grader") / "local.key").write_text("sk-local-123\n")
    with ScriptedLLM([say("Score: 6")] * 4) as llm:
        port = int(llm.url.rsplit(":", 1)[1].split("/")[0])
        store.update("grader", port=port, status="running")
        plan = plan_finetune(ws, spec)
        by_version = plan_finetune(ws, JobSpec.parse(_rlaif("", judge_model="lathe/tiny-judge@1",
                                                            judge_api_base=None)))
        assert len(llm.requests) == 2 and llm.requests[0]["model"] == "tiny-judge-v1"
        url = llm.url
    assert plan.settings["judge_model"] == "lathe/grader" and by_version.settings["judge_model"] == "lathe/tiny-judge@1"
    from runtimes.judging.judge import judge_target

    store.create(name="other", models=[{"ref": "support-bot", "id": "support-bot-v3", "version": 3}],
                 mode="dedicated", idle_timeout=0, host="127.0.0.1", fixed_port=None, key_hash="y",
                 local_key_hash=None, engine={}, capture_rate=0.0)
    endpoint_dir(ws, "other").mkdir(parents=True, exist_ok=True)
    (endpoint_dir(ws, "other") / "local.key").write_text("sk-other\n")
    store.update("other", port=port, status="running")
    target = judge_target(ws, {"judge_model": "lathe/support-bot@3"})
    assert (target.model, target.api_key) == ("openai/support-bot-v3", "sk-other")
    resolved = local_judge_settings(ws, {"judge_model": "lathe/grader"})
    assert resolved["judge_model"] == "openai/tiny-judge-v1" and resolved["judge_api_base"] == url


@pytest.mark.slow
def test_rlaif_trains_on_prompts_alone_and_a_mapping_can_be_given(ws, monkeypatch):
    from runtimes.training.datasets.preparation import DatasetSpec, plan_dataset

    data = plan_dataset(ws, DatasetSpec(table="questions", technique="rlaif"))
    assert data.mapping.format.value == "prompt_only" and data.mapping.columns == {"prompt": "question_text"}
    with pytest.raises(UserError, match="SFT learns a reply for each prompt, and this data has none"):
        plan_dataset(ws, DatasetSpec(table="questions", technique="sft"))
    with pytest.raises(UserError, match=r"--map prompt=COLUMN,completion=COLUMN"):
        plan_dataset(ws, DatasetSpec(table="asked", technique="sft"))
    mapped = plan_dataset(ws, DatasetSpec(table="asked", technique="sft", mapping={"prompt": "q", "completion": "a"}))
    assert len(mapped.examples) == len(PROMPTS)

    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("COLUMNS", "200")
    out = CliRunner().invoke(app, ["--workspace", str(ws.root), "finetune", "--model", "tiny", "--data", "asked",
                                   "--map", "prompt=q,completion=a", "--set", "max_steps=1", "--dry-run", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["dataset"]["mapping"] == {"prompt": "q", "completion": "a"}
    bad = CliRunner().invoke(app, ["--workspace", str(ws.root), "finetune", "--model", "tiny", "--data", "asked",
                                   "--map", "prompt", "--dry-run"])
    assert bad.exit_code != 0 and "write it as role=COLUMN pairs" in bad.output
