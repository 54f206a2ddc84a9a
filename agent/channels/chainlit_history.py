"""Chat history of the web UI: Chainlit's own SQLAlchemy data layer on a SQLite file in the workspace,
with the tables that layer expects, so threads, their messages and their elements (files under `ui/elements/`)
are shown again after a restart; threads started in the terminal are listed too, with their turns.

It stores what the UI showed; the agent's conversations, plans and approvals stay in `state.sqlite`
(the source of truth), and nothing here is read by the agent.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.workspace import Workspace

# Names Chainlit gives a thread whose first act was not a typed message (a button's callback name, an upload's
# empty text): the app names those threads itself.
PLACEHOLDER_NAMES = frozenset({"", "approve_plan", "reject_plan", "edit_plan", "custom_element", "audio"})
ASSISTANT = "Lathe"

# The columns Chainlit 2.12's SQLAlchemyDataLayer reads and writes (its documented schema, in SQLite types).
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        "id" TEXT PRIMARY KEY, "identifier" TEXT NOT NULL UNIQUE, "metadata" TEXT NOT NULL, "createdAt" TEXT)""",
    """CREATE TABLE IF NOT EXISTS threads (
        "id" TEXT PRIMARY KEY, "createdAt" TEXT, "name" TEXT, "userId" TEXT, "userIdentifier" TEXT,
        "tags" TEXT, "metadata" TEXT, FOREIGN KEY ("userId") REFERENCES users("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS steps (
        "id" TEXT PRIMARY KEY, "name" TEXT NOT NULL, "type" TEXT NOT NULL, "threadId" TEXT NOT NULL,
        "parentId" TEXT, "streaming" BOOLEAN NOT NULL, "waitForAnswer" BOOLEAN, "isError" BOOLEAN,
        "metadata" TEXT, "tags" TEXT, "input" TEXT, "output" TEXT, "createdAt" TEXT, "command" TEXT,
        "start" TEXT, "end" TEXT, "generation" TEXT, "showInput" TEXT, "language" TEXT, "indent" INT,
        "defaultOpen" BOOLEAN, "autoCollapse" BOOLEAN, "modes" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS elements (
        "id" TEXT PRIMARY KEY, "threadId" TEXT, "type" TEXT, "url" TEXT, "chainlitKey" TEXT, "name" TEXT NOT NULL,
        "display" TEXT, "objectKey" TEXT, "size" TEXT, "page" INT, "language" TEXT, "forId" TEXT, "mime" TEXT,
        "props" TEXT, "autoPlay" BOOLEAN, "playerConfig" TEXT,
        FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS feedbacks (
        "id" TEXT PRIMARY KEY, "forId" TEXT NOT NULL, "threadId" TEXT NOT NULL, "value" INT NOT NULL,
        "comment" TEXT, FOREIGN KEY ("threadId") REFERENCES threads("id") ON DELETE CASCADE)""",
)


def ensure_schema(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        for ddl in SCHEMA:
            db.execute(ddl)


def _chainlit_time(iso: str, plus_us: int = 0) -> str:
    """An ISO time from the agent's thread index in Chainlit's form (naive UTC with a Z), so both sort together."""
    t = dt.datetime.fromisoformat(iso).astimezone(dt.timezone.utc).replace(tzinfo=None)
    return (t + dt.timedelta(microseconds=plus_us)).isoformat() + "Z"


def agent_thread_steps(ws: Workspace, thread_id: str, user: str, created_at: str, updated_at: str,
                       after: int = 0) -> tuple[list[dict], int]:
    """The turns of an agent thread from the `after`-th on, as Chainlit message steps (the user's questions and
    the answers), and how many turns the thread has."""
    from agent.session import Session
    from core.principal import Principal

    with Session(ws, thread_id, Principal.local_admin()) as s:
        turns = s.history()
    steps = []
    for i, turn in enumerate(turns[after:], start=after):
        when = _chainlit_time(updated_at) if i == len(turns) - 1 else _chainlit_time(created_at, i)
        mine = turn.role == "user"
        steps.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lathe:{thread_id}:{i}")), "threadId": thread_id,
                      "name": user if mine else ASSISTANT, "type": "user_message" if mine else "assistant_message",
                      "output": turn.text, "streaming": False, "createdAt": when, "start": when, "end": when,
                      "metadata": "{}", "tags": "[]"})
    return steps, len(turns)


def history_length(ws: Workspace, thread_id: str) -> int:
    from agent.session import Session
    from core.principal import Principal

    with Session(ws, thread_id, Principal.local_admin()) as s:
        return len(s.history())


def data_layer(path: Path, ws: Workspace | None = None, elements: Path | None = None) -> Any:
    """Chainlit's SQLAlchemyDataLayer on `path` (SQLite through aiosqlite), its tables created if missing;
    elements kept as files under `elements`; the agent threads of `ws` listed with the UI's own."""
    from chainlit.data.sql_alchemy import SQLAlchemyDataLayer

    from agent.channels.element_files import LocalStorageClient

    class LatheDataLayer(SQLAlchemyDataLayer):
        secrets: dict[str, str] = {}  # a secret shown once -> what the history keeps instead

        def keep_redacted(self, secret: str, instead: str) -> None:
            """From now on, `secret` is stored as `instead` in every message and step of the history."""
            self.secrets[secret] = instead

        async def create_step(self, step_dict: Any) -> None:
            if self.secrets:
                step_dict = dict(step_dict)
                for field in ("output", "input"):
                    for secret, instead in self.secrets.items():
                        if isinstance(step_dict.get(field), str):
                            step_dict[field] = step_dict[field].replace(secret, instead)
            await super().create_step(step_dict)

        async def update_thread(self, thread_id: str, name: str | None = None, *args: Any, **kwargs: Any) -> None:
            if name is not None and name.strip() in PLACEHOLDER_NAMES:
                name = None  # the app names such a thread as soon as it knows what it is about
            await super().update_thread(thread_id, name, *args, **kwargs)

        async def list_threads(self, pagination: Any, filters: Any) -> Any:
            if ws is not None and filters.userId:
                await self.sync_agent_threads(filters.userId)
            return await super().list_threads(pagination, filters)

        async def sync_agent_threads(self, user_id: str) -> None:
            """Threads of this user started outside the UI (`lathe chat`, `lathe ask`) become UI threads with
            their turns; turns added there later are appended. What the UI drew itself is never redrawn: the
            metadata's `shown` counts the turns already on screen (see `mark_shown`)."""
            from agent import thread_index

            assert ws is not None
            user = await self._get_user_identifer_by_id(user_id)
            agent_threads = [t for t in await asyncio.to_thread(thread_index.list_threads, ws) if t.started_by == user]
            if not agent_threads:
                return
            known = {r["id"]: json.loads(r["metadata"] or "{}") for r in await self.execute_sql(
                'SELECT "id", "metadata" FROM threads', {}) or []}
            for t in agent_threads:
                seen = known.get(t.thread_id)
                if seen is not None and (seen.get("source") != "terminal" or seen.get("turns") == t.turns):
                    continue
                steps, shown = await asyncio.to_thread(agent_thread_steps, ws, t.thread_id, user, t.created_at,
                                                       t.updated_at, int((seen or {}).get("shown", 0)))
                meta = json.dumps({"source": "terminal", "turns": t.turns, "shown": shown})
                await self.execute_sql(
                    'INSERT INTO threads ("id", "createdAt", "name", "userId", "userIdentifier", "metadata") '
                    'VALUES (:id, :createdAt, :name, :userId, :userIdentifier, :metadata) ON CONFLICT ("id") DO '
                    'UPDATE SET "metadata" = excluded."metadata"',
                    {"id": t.thread_id, "createdAt": _chainlit_time(t.created_at), "name": t.title,
                     "userId": user_id, "userIdentifier": user, "metadata": meta})
                for step in steps:
                    cols = ", ".join(f'"{k}"' for k in step)
                    await self.execute_sql(f"INSERT INTO steps ({cols}) VALUES ({', '.join(':' + k for k in step)}) "
                                           'ON CONFLICT ("id") DO NOTHING', step)

        async def mark_shown(self, thread_id: str) -> None:
            """After the UI drew a turn of a thread the terminal started: its turns so far are on screen."""
            assert ws is not None
            found = await self.execute_sql('SELECT "metadata" FROM threads WHERE "id" = :id', {"id": thread_id})
            meta = json.loads((found[0]["metadata"] if found else None) or "{}")
            if meta.get("source") != "terminal":
                return
            from agent import thread_index

            info = next((t for t in await asyncio.to_thread(thread_index.list_threads, ws)
                         if t.thread_id == thread_id), None)
            meta.update(shown=await asyncio.to_thread(history_length, ws, thread_id),
                        turns=info.turns if info is not None else meta.get("turns"))
            await self.execute_sql('UPDATE threads SET "metadata" = :m WHERE "id" = :id',
                                   {"m": json.dumps(meta), "id": thread_id})

    ensure_schema(path)
    storage = LocalStorageClient(elements) if elements is not None else None
    return LatheDataLayer(conninfo=f"sqlite+aiosqlite:///{path}", storage_provider=storage)
