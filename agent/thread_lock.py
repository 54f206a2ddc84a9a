"""A lock per conversation thread, across processes: one run of a thread at a time, so two approvals
sent at once cannot both run a step. The operating system drops the lock when its process dies.

Uses `fcntl.flock` on a file under the workspace's cache; it never holds any other resource.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import UserError
from core.workspace import Workspace

WAIT_S = 60.0
_POLL_S = 0.05


@contextmanager
def thread_lock(ws: Workspace, thread_id: str, wait_s: float = WAIT_S) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # no flock on this platform: runs are still checkpointed, only not serialised
        yield
        return
    folder = ws.cache_dir / "thread_locks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(thread_id.encode()).hexdigest()[:24] + ".lock")
    with open(path, "a+b") as f:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise UserError(f"thread {thread_id} is busy in another process or window for more than "
                                    f"{wait_s:g} s; try again when it has finished") from None
                time.sleep(_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
