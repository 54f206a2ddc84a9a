"""Runs the chat UI (`app.py` under Chainlit, as `lathe ui` does) on a free loopback port for browser tests
and benchmarks, and opens Debian's Chromium through Playwright, kept off every network but loopback.

Holds no tests; it starts and stops processes it owns and nothing else.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cli.ui_command import chainlit_command

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  # The page asks for web fonts; no name resolves except loopback, so nothing leaves the machine.
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
START_TIMEOUT_S = 60.0


def chromium() -> str | None:
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@contextmanager
def ui_server(ws_root: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`lathe ui`'s Chainlit process on `ws_root`; yields its URL once it answers, stops it afterwards."""
    port = free_port()
    base = dict(os.environ)
    for k in ("LATHE_MODEL", "LATHE_API_BASE", "LATHE_API_KEY_ENV"):
        base.pop(k, None)
    base.update(env or {})
    base["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p)
    argv, full_env, cwd = chainlit_command(ws_root, "127.0.0.1", port, base_env=base)
    url = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, env=full_env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _answers(url + "/"):
                if proc.poll() is not None:
                    raise RuntimeError(f"the UI exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the UI did not answer in {START_TIMEOUT_S:g} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)
            yield url
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@contextmanager
def browser() -> Iterator[Any]:
    """A headless Chromium (Debian's) driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()
