"""Fine-tuning requests that cannot be honoured are refused before a job exists, in one line each, through the
real CLI on a real workspace: settings out of range (with the range), names that are not plain names, `--data`
that is not one read, a micro-batch larger than the data; `lathe jobs delete` removes an ended job."""
from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from core.errors import UserError
from runtimes.jobs import lifecycle as launcher
from runtimes.jobs.store import JobStore
from runtimes.training.jobs.spec import JobSpec


@pytest.fixture(scope="module")
def ws(demos_workspace):
    return demos_workspace(rows=20)


def _run(ws, *args: str):
    from cli.main import app

    return CliRunner().invoke(app, ["--workspace", str(ws.root), "finetune", "--model", "tiny", *args])


@pytest.mark.parametrize("setting, message", [
    ("epochs=1e9", "setting `epochs` = 1e+09 is out of range: it takes from 0.01 to 100"),
    ("epochs=1e308", "setting `epochs` = 1e+308 is out of range: it takes from 0.01 to 100"),
    ("seed=1180591620717411303424", "setting `seed` = 1180591620717411303424 is out of range: it takes from 0 to "
                                    "4,294,967,295"),
    ("seed=-1", "setting `seed` = -1 is out of range"),
    ("micro_batch=100000", "setting `micro_batch` = 100000 is out of range: it takes from 1 to 4,096"),
    ("micro_batch=64", "setting `micro_batch` = 64 is more than the 18 rows to train on: it takes from 1 to 18"),
    ("gradient_accumulation=0", "setting `gradient_accumulation` = 0 is out of range: it takes from 1 to 4,096"),
    ("learning_rate=1", "setting `learning_rate` = 1 is out of range: it takes strictly between 0 and 1"),
    ("max_steps=0", "setting `max_steps` = 0 is out of range: it takes from 1 to 10,000,000 (or -1 to train for"),
    ("max_length=100000000", "setting `max_length` = 100000000 is out of range"),
    ("max_degenerate_share=2", "setting `max_degenerate_share` = 2 is out of range: it takes from 0 to 1"),
    ("seed=2**70", "setting `seed` takes an integer, got '2**70'"),
])
def test_out_of_range_settings_are_refused_at_plan_time_in_one_line(ws, setting, message):
    for extra in (["--dry-run"], []):
        out = _run(ws, "--data", "demos", "--set", setting, *extra)
        assert out.exit_code != 0 and message in out.output, out.output
        assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1, out.output
    assert JobStore(ws).list() == []


@pytest.mark.parametrize("name", ["../../evil", "a/b", "evil.model", "with space", "x" * 65, "-leading", ""])
def test_a_model_name_that_is_not_a_plain_name_is_refused_up_front(ws, name):
    out = _run(ws, "--data", "demos", "--name", name, "--set", "max_steps=1")
    assert out.exit_code != 0 and "is not a model name: use 1 to 64 letters, digits" in out.output, out.output
    with pytest.raises(UserError, match=r"pattern \[A-Za-z0-9\]"):
        launcher.submit(ws, "finetune", {"model": "tiny", "table": "demos", "name": name})
    assert JobStore(ws).list() == [] and not (ws.root.parent / "evil").exists()


@pytest.mark.parametrize("data, why", [
    ("DELETE FROM demos", "DELETE refused"),
    ("SELECT prompt, completion FROM demos; DELETE FROM demos", "2 statements"),
    ("read_csv('/etc/passwd')", "refused"),
    ("SELECT * FROM read_csv('/etc/passwd')", "reads or lists files outside the warehouse"),
    ("demoz", "no table `demoz`"),
])
def test_data_that_is_not_one_read_is_refused_before_a_job_exists(ws, data, why):
    for extra in (["--dry-run"], []):
        out = _run(ws, "--data", data, "--set", "max_steps=1", *extra)
        assert out.exit_code != 0 and why in out.output, out.output
        assert "Traceback" not in out.output
    assert JobStore(ws).list() == []
    from catalog.warehouse import connect_reader

    with connect_reader(ws) as con:
        assert con.execute("SELECT count(*) FROM demos").fetchone()[0] == 20


def test_stated_settings_appear_in_the_plan(ws):
    from runtimes.training.planning import plan_finetune

    plan = plan_finetune(ws, JobSpec.parse({"model": "tiny", "table": "demos", "technique": "sft",
                                             "settings": {"epochs": 2, "learning_rate": 1e-4}}))
    text = plan.explain()
    assert "learning_rate = 1e-04 [yours]" in text and "epochs = 2 [yours]" in text
    assert plan.settings["learning_rate"] == 1e-4 and plan.settings["epochs"] == 2


def test_jobs_delete_removes_an_ended_job_and_refuses_a_running_one(ws):
    from cli.main import app

    store = JobStore(ws)
    job = launcher.submit(ws, "finetune", {"model": "tiny", "table": "demos",
                                           "settings": {"max_steps": 200, "max_length": 32}})
    running = CliRunner().invoke(app, ["--workspace", str(ws.root), "jobs", "delete", job.id])
    assert running.exit_code != 0 and f"cancel it first (`lathe jobs cancel {job.id}`)" in running.output
    deadline = time.monotonic() + 300
    while store.get(job.id).status != "running" and time.monotonic() < deadline:  # its SIGTERM handler is set
        time.sleep(0.1)
    launcher.cancel(ws, job.id)
    launcher.wait(ws, job.id, timeout_s=300)
    assert (ws.root / "runs" / job.id).is_dir()
    out = CliRunner().invoke(app, ["--workspace", str(ws.root), "jobs", "delete", job.id])
    assert out.exit_code == 0 and f"{job.id}: deleted (was cancelled)" in out.output, out.output
    assert store.list() == [] and not (ws.root / "runs" / job.id).exists()
    again = CliRunner().invoke(app, ["--workspace", str(ws.root), "jobs", "delete", job.id])
    assert again.exit_code != 0 and f"no job `{job.id}`" in again.output
