"""Fine-tuning from the chat, followed to the end: the offline planner's conversation (`agent.Session`) starts a
real tiny job, approves it, follows it with `Session.follow_job` and gets the evaluation report and a registered
version, for SFT (demo tickets' preferred replies and GSM8K), RLVR (GSM8K, with only `micro_batch=2` set) and RLAIF
(the demo with a scripted judge, a real OpenAI-compatible server reached through LiteLLM, whose scores decide the
win rate asserted). The terminal follows a job it started (`lathe ask`) and stops following on Ctrl-C while the
job goes on (`lathe chat`).

Each job is a real worker process on a real workspace; they are tiny (1 layer, a few steps) but each takes a few
seconds to start, so the module is marked slow.
"""
from __future__ import annotations

import io
import json
import signal
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from agent.events import JobProgress, event_from_json
from agent.session import Session
from core.errors import UserError
from core.workspace import Workspace
from runtimes.jobs import lifecycle as launcher
from runtimes.jobs.store import JobStore
from tests.conftest import SHARED_DATA
from tests.scripted_llm import ScriptedLLM, say
from tests.agent_events import collect, done, of

pytestmark = pytest.mark.slow

GSM8K_ROWS = 40
POLL_S = 0.2
STALL_S = 600.0  # following gives up only when the job showed no change at all for this long


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Workspace:
    """The demo company with its tiny local models, and the first rows of the shared GSM8K as table `gsm8k`."""
    from catalog.importers import import_paths
    from catalog.workspace_setup import init_workspace
    from runtimes.training.tiny_models import install_demo_models

    ws = Workspace(Path(tmp_path_factory.mktemp("followed")) / "ws")
    init_workspace(ws, demo=True, scale=0.1)
    install_demo_models(ws)
    source = SHARED_DATA / "gsm8k_test.jsonl"
    if source.exists():
        head = tmp_path_factory.mktemp("gsm8k") / "gsm8k.jsonl"
        with source.open(encoding="utf-8") as f:
            head.write_text("".join(next(f) for _ in range(GSM8K_ROWS)), encoding="utf-8")
        import_paths(ws, [head])
    return ws


def _needs_gsm8k(ws: Workspace) -> None:
    from catalog.store import CatalogStore

    if "gsm8k" not in CatalogStore(ws).load().tables:
        pytest.skip("GSM8K is not in the shared data folder")


def _start(s: Session, request: str) -> str:
    """Send an all-at-once request, approve its plan, and return the id of the job the approved step started."""
    asked = collect(s.send(request))
    assert done(asked).status == "waiting_approval", [e.to_json() for e in asked][-3:]
    finished = of(collect(s.approve()), "step_finished")
    assert len(finished) == 1 and finished[0].ok and finished[0].tool == "start_finetune", finished
    assert finished[0].job_id and finished[0].job_id in finished[0].text
    return finished[0].job_id


def _follow_while_it_advances(s: Session, job_id: str) -> list[JobProgress]:
    """`Session.follow_job` in windows of STALL_S: a window in which the job changed is followed by another, so a
    slow job is followed to its end; one in which nothing changed fails."""
    seen: list[JobProgress] = []
    while not (seen and seen[-1].final):
        window = list(s.follow_job(job_id, interval=POLL_S, timeout=STALL_S))
        fresh = [p for p in window if not p.timed_out and (not seen or _key(p) != _key(seen[-1]))]
        assert fresh or not window[-1].timed_out, f"job {job_id} showed no change for {STALL_S:.0f} s"
        seen += fresh
    return seen


def _key(p: JobProgress) -> tuple:
    return p.status, p.step, tuple(sorted(p.metrics.items())), p.model_version


def _follow_to_the_end(s: Session, job_id: str) -> list[JobProgress]:
    seen = _follow_while_it_advances(s, job_id)
    assert seen and all(p.job_id == job_id for p in seen)
    assert [p.final for p in seen] == [False] * (len(seen) - 1) + [True]
    last = seen[-1]
    assert last.status == "succeeded", (last.text, last.error)
    assert last.step == last.max_steps and last.report and Path(last.report).is_file()
    assert last.curves and Path(last.curves).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert last.model_version and f"registered {last.model_version} (pending approval)" in last.text
    return seen


def _report(p: JobProgress) -> dict:
    return json.loads(Path(p.report).read_text(encoding="utf-8"))


def _version_metrics(ws: Workspace, model_version: str) -> dict:
    from runtimes.models.registry import get_version

    name, version = model_version.split("/")
    v = get_version(ws, name, version)
    assert v.approval == "pending"
    return v.lineage["metrics"]


def test_sft_on_the_demo_is_followed_from_start_to_report(demo):
    s = Session(demo, "sft-demo")
    with pytest.raises(UserError, match="no job `job-nope`|job-nope"):
        s.follow_job("job-nope")  # an unknown job is refused at once, before any polling
    job_id = _start(s, "fine-tune tiny-qwen3 with sft on reply_preferences max_steps=3 max_length=64")

    # A time limit stops following, never the job: the last event says so.
    brief = list(s.follow_job(job_id, interval=POLL_S, timeout=0))
    assert brief[-1].timed_out and not brief[-1].final and "stopped following after 0 s" in brief[-1].text

    seen = _follow_to_the_end(s, job_id)
    assert [p.status for p in seen][0] in ("queued", "validating", "running")
    steps = [p.step for p in seen]
    assert steps == sorted(steps) and steps[-1] == 3 and seen[-1].max_steps == 3
    # Consecutive events differ: an event comes only when something changed.
    keys = [(p.status, p.step, tuple(sorted(p.metrics.items()))) for p in seen]
    assert all(a != b for a, b in zip(keys, keys[1:]))
    last = seen[-1]
    assert {"eval_loss", "loss", "tokens_per_s"} <= set(last.evaluation)
    assert last.model_version == "tiny-qwen3-sft/1" and "eval loss" in last.text
    assert _report(last)["summary"]["eval_loss"] == last.evaluation["eval_loss"]
    assert event_from_json(last.to_json()) == last  # plain JSON, for front-ends in another process


def test_rlvr_on_gsm8k_with_only_a_micro_batch_set(demo):
    _needs_gsm8k(demo)
    s = Session(demo, "rlvr-gsm8k")
    # A random tiny model never gets a GSM8K answer right: no reward spread, no gradient. Such a run fails for
    # want of training signal unless the user accepts it, as here, with max_degenerate_share=1.
    job_id = _start(s, "fine-tune tiny-qwen3 with rlvr on gsm8k max_steps=2 micro_batch=2 "
                       "max_completion_length=16 max_length=128 max_degenerate_share=1")
    last = _follow_to_the_end(s, job_id)[-1]
    config = JobStore(demo).get(job_id).config
    # The group size was chosen to fit the user's micro-batch (`micro_batch=2` alone used to be refused).
    assert (config["micro_batch"] * config["gradient_accumulation"]) % config["num_generations"] == 0
    assert config["micro_batch"] == 2
    cmp = _report(last)["comparison"]
    assert cmp["compared_rows"] == 4  # the held-out tenth of 40 rows
    for key in ("base_reward", "tuned_reward", "reward_gain"):
        assert last.evaluation[key] == cmp[key]
    assert 0 <= cmp["base_reward"] <= 1 and 0 <= cmp["tuned_reward"] <= 1
    assert "base reward" in last.text and "tuned reward" in last.text
    assert _version_metrics(demo, last.model_version)["tuned_reward"] == cmp["tuned_reward"]


BASE_SCORE, TUNED_SCORE = 2, 7  # what the scripted judge gives the comparison's base and (changed) tuned replies


class ScriptedJudge:
    """Scores for a job's judge: while it trains, by the reply's length (a spread GRPO can learn from); once the
    job has saved its model (the base-vs-tuned comparison), the first reply to each held-out prompt is the base
    model's and scores BASE_SCORE, a second one is the tuned model's and scores TUNED_SCORE. A tuned reply equal
    to the base one is never asked again (the judge's cache): that row is a tie."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self.job_id = ""
        self.compared: list[str] = []  # held-out prompts, one entry per comparison request

    def __call__(self, body: dict) -> object:
        text = body["messages"][-1]["content"]
        prompt = text.split("## The conversation so far", 1)[1].split("## The assistant's reply", 1)[0].strip()
        reply = text.split("## The assistant's reply", 1)[1].split("##", 1)[0].strip()
        if self.job_id and (self.ws.root / "runs" / self.job_id / "model").is_dir():
            score = TUNED_SCORE if prompt in self.compared else BASE_SCORE
            self.compared.append(prompt)
            return say(f"Reasoning: compared.\nScore: {score}")
        return say(f"Reasoning: by length.\nScore: {len(reply) % 11}")


def test_rlaif_on_the_demo_reports_the_judges_win_rate_of_tuned_over_base(demo):
    judge = ScriptedJudge(demo)
    with ScriptedLLM([judge] * 2000) as llm:
        s = Session(demo, "rlaif-demo")
        job_id = _start(s, "fine-tune tiny-qwen3 with rlaif on reply_preferences max_steps=2 micro_batch=2 "
                           "num_generations=2 max_completion_length=12 learning_rate=0.01 judge_model=openai/judge "
                           f"judge_api_base={llm.url} judge_retries=0 judge_requests_per_second=1000")
        judge.job_id = job_id
        last = _follow_to_the_end(s, job_id)[-1]
    cmp = _report(last)["comparison"]
    n = int(cmp["compared_rows"])
    changed = len(judge.compared) - len(set(judge.compared))  # held-out prompts asked about twice
    assert n == 8 and cmp["judge_failures"] == 0 and len(set(judge.compared)) == n
    # Every base reply scored 2/10; a tuned reply that changed scored 7/10 and wins, an unchanged one ties.
    expected = (changed + 0.5 * (n - changed)) / n
    assert cmp["win_rate"] == pytest.approx(expected)
    assert cmp["base_judge_score"] == pytest.approx(BASE_SCORE / 10)
    assert cmp["tuned_judge_score"] == pytest.approx((TUNED_SCORE * changed + BASE_SCORE * (n - changed)) / (10 * n))
    assert last.evaluation["win_rate"] == cmp["win_rate"] and _report(last)["summary"]["win_rate"] == cmp["win_rate"]
    assert f"win rate of tuned over base {expected:.0%}" in last.text
    assert _version_metrics(demo, last.model_version)["win_rate"] == cmp["win_rate"]


# ---- the terminal ---------------------------------------------------------------------------------------
def _cli() -> typer.Typer:
    from cli.chat import command as chat_command
    from cli.context import set_workspace

    app = typer.Typer(pretty_exceptions_enable=False)

    @app.callback()
    def main(workspace: str = typer.Option(None, "--workspace", "-w")) -> None:
        set_workspace(workspace)

    chat_command.register(app)
    return app


def test_lathe_ask_follows_the_sft_job_it_started_on_gsm8k_to_its_report(demo, monkeypatch):
    _needs_gsm8k(demo)
    monkeypatch.setenv("COLUMNS", "200")
    r = CliRunner().invoke(_cli(), ["--workspace", str(demo.root), "ask", "--approve",
                                    "fine-tune tiny-llama with sft on gsm8k max_steps=2 max_length=128"])
    assert r.exit_code == 0, r.output
    out = r.output
    job_id = out.split("started job ", 1)[1].split()[0]
    assert f"Following job {job_id} until it ends" in out
    assert f"job {job_id} is " in out  # a progress line while it is queued, validating or running
    assert f"job {job_id} succeeded after 2 steps" in out
    assert "eval loss:" in out and f"report: {demo.root}/runs/{job_id}/report/report.json" in out
    assert "lathe models approve tiny-llama-sft 1" in out
    assert JobStore(demo).get(job_id).status == "succeeded"


class _CtrlCAt(io.StringIO):
    """A terminal that presses Ctrl-C (a real SIGINT to this process) when one of `cues` is first printed."""

    def __init__(self, *cues: str):
        super().__init__()
        self.cues, self.pressed = cues, False

    def write(self, text: str) -> int:
        n = super().write(text)
        if not self.pressed and any(c in self.getvalue() for c in self.cues):
            self.pressed = True
            signal.raise_signal(signal.SIGINT)
        return n


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt, as in a terminal, also when the tests run in the background (a shell
    starts a background command with SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_in_lathe_chat_stops_following_not_the_job(demo, ctrl_c_raises):
    from cli.chat.terminal import chat

    terminal = _CtrlCAt(" is queued: ", " is validating: ", " is running: ")  # at the first progress line
    console = Console(file=terminal, width=200, color_system=None)
    lines = iter(["fine-tune tiny-qwen3 with dpo on reply_preferences max_steps=2 max_length=64", "y", "/quit"])
    with Session(demo, "ctrl-c") as s:
        chat(s, console, lambda prompt: next(lines), lambda: [])
    out = terminal.getvalue()
    assert terminal.pressed
    job_id = out.split("started job ", 1)[1].split()[0]
    assert f"Stopped following job {job_id}; the job keeps running." in out
    assert "Bye." in out  # the chat went on to read `/quit`: Ctrl-C ended the following, not the chat
    assert "succeeded after" not in out
    job = launcher.wait(demo, job_id, timeout_s=STALL_S)  # gives up only when the job stops changing
    assert job.status == "succeeded", job.error  # the job's own process never saw the Ctrl-C
    with Session(demo, "ctrl-c") as s:  # what a resumed chat would follow again: the thread's job, now ended
        assert s.started_jobs() == [job_id] and s.running_jobs() == []
