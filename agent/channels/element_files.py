"""Files behind the chat UI's elements (charts, images, uploaded files) kept in the workspace, so a reopened
thread shows what it showed: a storage client for Chainlit's data layer writing under `ui/elements/`, read back
through one authenticated route of the UI's own server.

Object keys are Chainlit's `<user id>/<element id>/<name>`; a key is served to a signed-in user it starts with.
"""
from __future__ import annotations

import asyncio
import mimetypes
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chainlit.data.storage_clients.base import BaseStorageClient

ROUTE = "/lathe/elements"
MIME_SUFFIX = ".mime"


class LocalStorageClient(BaseStorageClient):
    """Chainlit's `BaseStorageClient` on a local folder."""

    def __init__(self, root: Path):
        self.root = root.resolve()

    def path_of(self, object_key: str) -> Path:
        """The file of `object_key`, refusing any key that would leave the folder."""
        path = (self.root / object_key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"element key {object_key!r} points outside {self.root}")
        return path

    def _write(self, object_key: str, data: bytes | str, mime: str, overwrite: bool) -> None:
        path = self.path_of(object_key)
        if path.exists() and not overwrite:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)  # a reader never sees half a file
        path.with_name(path.name + MIME_SUFFIX).write_text(mime)  # names often have no extension ("chart")

    def mime_of(self, path: Path) -> str:
        side = path.with_name(path.name + MIME_SUFFIX)
        if side.is_file():
            return side.read_text().strip()
        return mimetypes.guess_type(path.name)[0] or "application/octet-stream"

    async def upload_file(self, object_key: str, data: bytes | str, mime: str = "application/octet-stream",
                          overwrite: bool = True, content_disposition: str | None = None) -> dict[str, Any]:
        await asyncio.to_thread(self._write, object_key, data, mime, overwrite)
        return {"object_key": object_key, "url": await self.get_read_url(object_key)}

    async def delete_file(self, object_key: str) -> bool:
        path = self.path_of(object_key)
        try:
            await asyncio.to_thread(path.unlink)
            path.with_name(path.name + MIME_SUFFIX).unlink(missing_ok=True)
        except FileNotFoundError:
            return False
        return True

    async def get_read_url(self, object_key: str) -> str:
        prefix = os.getenv("CHAINLIT_PARENT_ROOT_PATH", "") + os.getenv("CHAINLIT_ROOT_PATH", "")
        return f"{prefix}{ROUTE}/{quote(object_key)}"

    async def close(self) -> None:
        return None


def add_route(app: Any, storage: LocalStorageClient) -> None:
    """`GET /lathe/elements/<key>` on Chainlit's FastAPI app, ahead of its catch-all page route; the signed-in
    user reads only keys under their own id."""
    from chainlit.auth import get_current_user
    from fastapi import Depends, HTTPException
    from fastapi.responses import FileResponse

    async def element_file(key: str, current_user: Any = Depends(get_current_user)) -> Any:
        owner = key.split("/", 1)[0]
        # "unknown": an upload stored before its thread had a user; its element id (a random UUID) is the secret.
        if current_user is None or owner not in (getattr(current_user, "id", None), "unknown"):
            raise HTTPException(status_code=404, detail="no such element")
        try:
            path = storage.path_of(key)
        except ValueError:
            raise HTTPException(status_code=404, detail="no such element") from None
        if not path.is_file() or path.name.endswith(MIME_SUFFIX):
            raise HTTPException(status_code=404, detail="no such element")
        return FileResponse(path, media_type=storage.mime_of(path))

    app.add_api_route(ROUTE + "/{key:path}", element_file, methods=["GET"])
    app.router.routes.insert(0, app.router.routes.pop())  # before the page route that matches every path
