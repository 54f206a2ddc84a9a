"""A chat session that loads in the background: `lathe chat` shows its prompt at once, and the agent (LangGraph,
the tools, the catalog's index) loads while the person types; the first use waits for it.

Only the terminal chat uses it; everything else opens `agent.session.Session` directly.
"""
from __future__ import annotations

import threading
import uuid
from typing import Any

from core.workspace import Workspace


class LoadingSession:
    """Stands for `Session(ws, thread_id)`: `thread_id` and `new` at once, every other attribute once loaded."""

    def __init__(self, ws: Workspace, thread_id: str | None = None):
        self.ws = ws
        self.new = thread_id is None
        self.thread_id = thread_id or uuid.uuid4().hex[:16]  # as `Session` names a new thread
        self._session: Any = None
        self._error: BaseException | None = None
        self._loader = threading.Thread(target=self._load, name="lathe-chat-load", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        try:
            from agent.session import Session

            self._session = Session(self.ws, self.thread_id)
        except BaseException as e:  # raised where the session is first used
            self._error = e

    @property
    def ready(self) -> bool:
        return not self._loader.is_alive()

    def _loaded(self) -> Any:
        self._loader.join()
        if self._error is not None:
            raise self._error
        return self._session

    def threads(self) -> list[Any]:
        from agent.session import Session

        self._loaded()
        return Session.threads(self.ws)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loaded(), name)

    def close(self) -> None:
        self._loader.join()
        if self._session is not None:
            self._session.close()

    def __enter__(self) -> "LoadingSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
