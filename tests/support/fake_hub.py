"""A Hugging Face hub stand-in on 127.0.0.1: the few endpoints ``snapshot_download`` uses.

It serves local model folders as hub repositories (``add("tiny/caption", folder)``), so
that a test can watch a first download (announced, with its size) and a second run from the
cache, with ``HF_ENDPOINT`` pointing here. Every request is recorded in ``requests``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, Path] = {}
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    def add(self, repo_id: str, folder: Path) -> None:
        self.repos[repo_id] = folder

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeHub:
        app = web.Application()
        app.router.add_get("/api/models/{org}/{name}/revision/{revision}", self._info)
        app.router.add_get("/api/models/{org}/{name}/tree/{revision}", self._tree)
        app.router.add_route("*", "/{org}/{name}/resolve/{revision}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _folder(self, request: web.Request) -> Path:
        self.requests.append(f"{request.method} {request.path}")
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        if repo not in self.repos:
            raise web.HTTPNotFound(headers={"X-Error-Code": "RepoNotFound"}, text="Repository not found")
        return self.repos[repo]

    def _files(self, folder: Path) -> list[Path]:
        return sorted(p for p in folder.rglob("*") if p.is_file())

    async def _info(self, request: web.Request) -> web.Response:
        folder = self._folder(request)
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        siblings = [{"rfilename": str(p.relative_to(folder))} for p in self._files(folder)]
        return web.json_response(
            {"id": repo, "modelId": repo, "sha": SHA, "siblings": siblings, "private": False}
        )

    async def _tree(self, request: web.Request) -> web.Response:
        folder = self._folder(request)
        entries = [
            {"type": "file", "path": str(p.relative_to(folder)), "size": p.stat().st_size, "oid": _oid(p)}
            for p in self._files(folder)
        ]
        return web.json_response(entries)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        folder = self._folder(request)
        path = folder / request.match_info["path"]
        if not path.is_file():
            raise web.HTTPNotFound(headers={"X-Error-Code": "EntryNotFound"}, text="Entry not found")
        headers = {
            "X-Repo-Commit": SHA,
            "ETag": f'"{_oid(path)}"',
            "Content-Length": str(path.stat().st_size),
        }
        if request.method == "HEAD":
            return web.Response(headers=headers)
        return web.Response(
            body=path.read_bytes(), headers={k: v for k, v in headers.items() if k != "Content-Length"}
        )


def _oid(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()
