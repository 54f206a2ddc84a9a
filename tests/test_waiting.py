"""Waiting by progress: a wait outlasts its stall limit while its progress reading still changes, fails once the
reading stands still (saying what was last seen), and a process is waited for while it uses CPU."""
from __future__ import annotations

import subprocess
import sys
from itertools import count

import pytest

from tests.waiting import communicate, files_state, run, wait_for


def test_a_wait_that_still_progresses_outlasts_its_stall_limit():
    calls, ticks = count(), count()
    # Each reading differs from the last, so a stall limit of 0.05 s never trips over about 0.5 s of polls.
    assert wait_for(lambda: next(calls) >= 50, progress=lambda: next(ticks), stall_s=0.05, poll_s=0.01)


def test_a_wait_that_stands_still_fails_with_what_it_last_saw():
    with pytest.raises(AssertionError, match=r"waited for the page to show: no progress for 0.05 s; last seen: "
                                             r"'step 3 of 10'"):
        wait_for(lambda: False, progress=lambda: "step 3 of 10", stall_s=0.05, poll_s=0.01, what="the page to show")


def test_files_state_changes_when_a_file_under_a_folder_grows(tmp_path):
    log = tmp_path / "runs" / "job" / "worker.log"
    log.parent.mkdir(parents=True)
    log.write_text("started\n")
    before = files_state(tmp_path / "runs", tmp_path / "missing")
    with log.open("a") as f:
        f.write("step 1\n")
    assert files_state(tmp_path / "runs") != before and len(before) == 1


def test_a_process_is_waited_for_while_it_computes_and_its_output_kept():
    script = "import sys\nn = sum(i * i for i in range(3_000_000))\nprint(n); print('done', file=sys.stderr)"
    done = run([sys.executable, "-c", script], capture_output=True, text=True, stall_s=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{sum(i * i for i in range(3_000_000))}\n", "done\n")


def test_a_process_that_sleeps_stands_still_and_fails_the_wait():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(AssertionError, match="no progress for 1 s"):
            communicate(proc, stall_s=1)
    finally:
        proc.kill()
        proc.wait()
