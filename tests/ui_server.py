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
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cli.ui_command import chainlit_command
from tests.waiting import cpu_seconds, files_state, wait_for

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  # The page asks for web fonts; no name resolves except loopback, so nothing leaves the machine.
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"  # every browser test's last page, for a person to look at
PAGE_STALL_S = 60.0  # the page's text, the given files and the servers' CPU stood still this long: stuck
# The pids of the UI servers this process runs: while one computes (a plan's warm-up, a job it started), a wait
# on the page is progressing even when the page shows nothing new.
_SERVERS: set[int] = set()


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
            try:
                wait_for(lambda: proc.poll() is not None or _answers(url + "/"),
                         progress=lambda: (files_state(log), cpu_seconds([proc.pid])), what=f"the UI to answer at {url}")
            except AssertionError as e:
                raise RuntimeError(f"{e}\n{log.read_text()[-3000:]}") from e
            if proc.poll() is not None:
                raise RuntimeError(f"the UI exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            _SERVERS.add(proc.pid)
            yield url
        finally:
            _SERVERS.discard(proc.pid)
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



def _by_page(page: Any, attempt: Any, watched: tuple[Path, ...], stall_s: float, what: str) -> None:
    """Retries `attempt` (a short Playwright action) while the page's text or the `watched` files still change."""
    from playwright.sync_api import Error as PlaywrightError, TimeoutError as PlaywrightTimeout

    def done() -> bool:
        try:
            attempt()
            return True
        except PlaywrightTimeout:
            return False

    def progress() -> tuple[Any, ...]:
        try:
            text = page.locator("body").inner_text(timeout=5000)
        except PlaywrightError as e:  # between two pages
            text = str(e)
        # In half CPU-seconds: a server that computes moves it at once, an idle one's heartbeats hardly ever do.
        return text, files_state(*watched), int(cpu_seconds(_SERVERS) * 2)

    wait_for(done, progress=progress, stall_s=stall_s, poll_s=0, what=what)


def shown(page: Any, locator: Any, *watched: Path, stall_s: float = PAGE_STALL_S) -> Any:
    """`locator` once visible, waiting while the page's text or the `watched` files (the server's log, a job's run
    folder) still change; fails when all stood still for `stall_s`."""
    _by_page(page, lambda: locator.wait_for(timeout=500), watched, stall_s, f"{locator} to show")
    return locator


def click(page: Any, locator: Any, *watched: Path, stall_s: float = PAGE_STALL_S) -> None:
    """Clicks `locator` once it would take a click (visible, enabled, still), waiting by progress as `shown` does.
    The wait is a trial click: a real one is made once, never retried (a second click could send twice)."""
    _by_page(page, lambda: locator.click(trial=True, timeout=500), watched, stall_s, f"{locator} to take a click")
    locator.click(timeout=stall_s * 1000)


def ask(page: Any, text: str, *watched: Path) -> None:
    """Types `text` into the chat and sends it (once the chat is idle and the button enabled)."""
    box = shown(page, page.locator("#chat-input"), *watched)
    box.fill(text)
    click(page, page.locator("#chat-submit"), *watched)


def screenshot(page: Any, name: str, full_page: bool = False) -> Path:
    """The page as `tests/artifacts/screenshots/<name>.png`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(shot), full_page=full_page)
    return shot


@contextmanager
def evidence(page: Any, folder: Path, name: str) -> Iterator[None]:
    """A screenshot of the page at the end, beside the test's files and in `tests/artifacts/screenshots/`; on a
    failure, named in the error with the page's text."""
    shot = folder / f"{name}.png"
    try:
        yield
    except BaseException as e:  # also pytest-timeout's stop, so that a wait still progressing leaves its evidence
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        page.screenshot(path=str(shot))
        screenshot(page, f"{name}-failed")
        text = page.locator("body").inner_text()[-1500:]
        raise AssertionError(f"{e}\n--- screenshot: {shot}\n--- page text (end):\n{text}") from e
    page.screenshot(path=str(shot))
    screenshot(page, name)
