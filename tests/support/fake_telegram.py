"""A Bot API server stand-in that speaks real HTTP on 127.0.0.1.

It implements what the bot uses (getMe, getUpdates with offset and timeout, getFile and the
file download, sendMessage, editMessageText, sendChatAction, setMyCommands, getChatMember,
deleteWebhook, setWebhook) and records every call. Tests put updates in, as Telegram would,
and read back what the bot sent. ``fail_next`` injects errors such as a 429.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = {"id": 7000, "is_bot": True, "first_name": "Describe", "username": "describe_test_bot"}
# Methods whose whole answer is "done" (recorded like every call, for tests to read back).
_DONE_METHODS = {
    "deleteWebhook",
    "setWebhook",
    "setMyCommands",
    "sendChatAction",
    "deleteMessage",
}
# Values posted as plain strings by python-telegram-bot (everything else is JSON-encoded).
_STRING_PARAMS = {"text", "file_id", "language_code", "action", "url", "secret_token", "parse_mode"}


class ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.time)  # wall clock: comparable across processes


class FakeTelegram:
    def __init__(self, token: str = "123456:TEST-token-never-logged") -> None:
        self.token = token
        self.calls: list[Call] = []
        self._counts: collections.Counter[tuple[str, int | None]] = collections.Counter()
        self.files: dict[str, bytes] = {}
        self.file_sizes: dict[str, int] = {}
        self.members: dict[tuple[int, int], str] = {}
        self.fail_next: dict[str, list[dict[str, Any]]] = {}
        self.confirmed_offset = 0
        # While set, a getUpdates that would confirm an update fails (502), and the updates stay:
        # confirms lost on the way, as a network failure or a kill between journal and confirm.
        self.refuse_confirms = False
        # While set and not yet open, every file download waits for it; likewise getChatMember.
        self.download_gate: asyncio.Event | None = None
        # A download of one of these files waits for its own event instead.
        self.held_files: dict[str, asyncio.Event] = {}
        self.member_gate: asyncio.Event | None = None
        self.redirect_downloads = False
        self._closing = False
        # Called with the offset of each getUpdates, before anything is answered: the moment
        # Telegram forgets the updates below it.
        self.on_get_updates: Callable[[int], None] | None = None
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._answered: set[str] = set()  # button presses answered
        self._sent_ids: dict[int, int] = {}  # id(sendMessage params) -> the message id it got
        self._shown: dict[tuple[int, int], tuple[str, Any]] = {}  # what each bot message shows
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- the server ----------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        # A client that hangs up mid-request (a bot being stopped) is not the server's news.
        logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        # For a test or benchmark in another process: put files and updates in, read calls out.
        app.router.add_post("/_control/file", self._control_file)
        app.router.add_post("/_control/push", self._control_push)
        app.router.add_get("/_control/calls", self._control_calls)
        app.router.add_get("/_control/wait", self._control_wait)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._closing = True  # long polls answer at once: nothing keeps the server from closing
        for gate in (self.download_gate, *self.held_files.values()):
            if gate is not None:
                gate.set()  # no download left waiting on a test that is over
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params = await _params(request)
        self._record(Call(method, params))
        if method == "getUpdates":  # it waits for updates: tell waiters it was called first
            async with self._changed:
                self._changed.notify_all()
        response = await self._answer(method, params)
        if method != "getUpdates":  # waiters hear of a call once its answer is settled
            async with self._changed:
                self._changed.notify_all()
        return response

    async def _answer(self, method: str, params: dict[str, Any]) -> web.Response:
        if self.fail_next.get(method):
            error = self.fail_next[method].pop(0)
            return web.json_response({"ok": False, **error}, status=error["error_code"])
        if method in _DONE_METHODS:
            return web.json_response({"ok": True, "result": True})
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        try:
            result = await handler(params)
        except ApiError as exc:
            body = {"ok": False, "error_code": exc.code, "description": exc.description}
            return web.json_response(body, status=exc.code)
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        file_id = request.match_info["path"].removeprefix("pictures/")
        self._record(Call("download", {"file_id": file_id}))
        async with self._changed:
            self._changed.notify_all()
        gate = self.held_files.get(file_id, self.download_gate)
        if gate is not None:  # downloads in flight for as long as a test wants
            await gate.wait()
        if self.redirect_downloads:  # a file server gone wrong: it sends the client round in circles
            raise web.HTTPFound(request.path)
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id], content_type="application/octet-stream")

    async def _control_file(self, request: web.Request) -> web.Response:
        return web.json_response({"file_id": self.add_file(await request.read())})

    async def _control_push(self, request: web.Request) -> web.Response:
        return web.json_response({"update_id": await self.push(await request.json())})

    async def _control_wait(self, request: web.Request) -> web.Response:
        method = request.query.get("method", "sendMessage")
        await self.wait_for(method, count=int(request.query["count"]), timeout=600)
        return web.json_response({"count": self.count(method)})

    async def _control_calls(self, request: web.Request) -> web.Response:
        method = request.query.get("method", "sendMessage")
        calls = [{"params": c.params, "at": c.at} for c in self.calls if c.method == method]
        return web.json_response(calls)

    # -- Bot API methods -----------------------------------------------------------------

    async def _m_getMe(self, params):
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, params):
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        if self.refuse_confirms and any(u["update_id"] < offset for u in self._updates):
            raise ApiError(502, "Bad Gateway")
        if self.on_get_updates is not None:
            self.on_get_updates(offset)
        if offset:
            # Telegram forgets every update below the offset: they count as received.
            self.confirmed_offset = max(self.confirmed_offset, offset)
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not self._pending(offset) and time.monotonic() < deadline and not self._closing:
                try:
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())
                except TimeoutError:
                    break
        limit = int(params.get("limit") or 100)
        return self._pending(offset)[:limit]

    def _pending(self, offset: int) -> list[dict[str, Any]]:
        return [u for u in self._updates if u["update_id"] >= offset]

    async def _m_getFile(self, params):
        file_id = params["file_id"]
        size = self.file_sizes.get(file_id, len(self.files.get(file_id, b"")))
        if size > 20 * 1024 * 1024:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": size,
            "file_path": f"pictures/{file_id}",
        }

    async def _m_sendMessage(self, params):
        message = _bot_message(int(params["chat_id"]), next(self._message_ids), params["text"])
        self._sent_ids[id(params)] = message["message_id"]
        self._shown[(message["chat"]["id"], message["message_id"])] = (params["text"], _markup(params))
        if "message_thread_id" in params:
            message["message_thread_id"] = params["message_thread_id"]
        return message

    async def _m_sendDocument(self, params):
        message = _bot_message(int(params["chat_id"]), next(self._message_ids), params.get("caption", ""))
        message.pop("text")
        document = params["document"]
        name = document["filename"] if isinstance(document, dict) else "file"
        message["document"] = {
            "file_id": f"doc-{message['message_id']}",
            "file_unique_id": f"doc-{message['message_id']}",
            "file_name": name,
        }
        return message

    async def _m_editMessageText(self, params):
        return self._edit(params, text=params["text"])

    async def _m_editMessageReplyMarkup(self, params):
        return self._edit(params)

    def _edit(self, params, text: str | None = None):
        """As Telegram does, an edit that changes nothing is refused."""
        key = (int(params["chat_id"]), int(params["message_id"]))
        old_text, old_markup = self._shown.get(key, ("", None))
        new = (old_text if text is None else text, _markup(params))
        if key in self._shown and new == (old_text, old_markup):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message",
            )
        self._shown[key] = new
        message = _bot_message(key[0], key[1], new[0])
        return {**message, "edit_date": int(time.time())}

    async def _m_answerCallbackQuery(self, params):
        """As Telegram does, a press is answered once: a second answer is refused."""
        query_id = params["callback_query_id"]
        if query_id in self._answered:
            raise ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        self._answered.add(query_id)
        return True

    async def _m_getChatMember(self, params):
        if self.member_gate is not None:
            await self.member_gate.wait()
        user_id = int(params["user_id"])
        status = self.members.get((int(params["chat_id"]), user_id), "member")
        member = {"status": status, "user": {"id": user_id, "is_bot": False, "first_name": "U"}}
        if status == "administrator":
            member.update(
                can_be_edited=False,
                is_anonymous=False,
                can_manage_chat=True,
                can_delete_messages=True,
                can_manage_video_chats=True,
                can_restrict_members=True,
                can_promote_members=False,
                can_change_info=True,
                can_invite_users=True,
                can_post_stories=False,
                can_edit_stories=False,
                can_delete_stories=False,
            )
        if status == "creator":
            member.update(is_anonymous=False)
        return member

    # -- what tests call -----------------------------------------------------------------

    @staticmethod
    def too_many_requests(retry_after: int = 1) -> dict[str, Any]:
        return {
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        }

    @staticmethod
    def blocked() -> dict[str, Any]:
        return {"error_code": 403, "description": "Forbidden: bot was blocked by the user"}

    @staticmethod
    def bad_gateway() -> dict[str, Any]:
        return {"error_code": 502, "description": "Bad Gateway"}

    async def push(self, message: dict[str, Any], kind: str = "message") -> int:
        """Queue an update, as Telegram does when someone sends something (or presses a button)."""
        update_id = next(self._update_ids)
        async with self._changed:
            self._updates.append({"update_id": update_id, kind: message})
            self._changed.notify_all()
        return update_id

    def message_id_of(self, sent: dict[str, Any]) -> int:
        """The id of the bot's message sent with ``sent`` (sendMessage params)."""
        return self._sent_ids[id(sent)]

    def bot_message(self, sent: dict[str, Any]) -> dict[str, Any]:
        """The bot's message sent with ``sent`` (sendMessage params), as a reply to it carries
        it: one level deep, without the message it in turn replied to (Telegram nests one)."""
        return _bot_message(int(sent["chat_id"]), self._sent_ids[id(sent)], sent["text"])

    async def press(
        self,
        reply: dict[str, Any],
        photo: dict[str, Any] | None,
        data: str,
        *,
        user_id: int,
        chat: dict[str, Any] | None = None,
    ) -> int:
        """Someone presses a button under the bot's ``reply`` (sent params), a reply to ``photo``.
        As Telegram does, the message carries the buttons it shows; ``chat``: a channel's, whose
        posts (the bot's too) are signed by the channel."""
        chat_id = int(reply["chat_id"])
        message_id = self._sent_ids[id(reply)]
        sent = _bot_message(chat_id, message_id, reply["text"])
        if chat is not None:
            sent["chat"] = sent["sender_chat"] = chat
        markup = self._shown.get((chat_id, message_id), ("", None))[1]
        if markup:
            sent["reply_markup"] = markup
        if photo is not None:
            sent["reply_to_message"] = photo
        query = {
            "id": f"cq-{next(self._file_ids)}",
            "from": {"id": user_id, "is_bot": False, "first_name": "B", "language_code": "en"},
            "chat_instance": "ci",
            "data": data,
            "message": sent,
        }
        return await self.push(query, kind="callback_query")

    def add_file(self, data: bytes, size: int | None = None) -> str:
        file_id = f"file-{next(self._file_ids)}"
        self.files[file_id] = data
        if size is not None:
            self.file_sizes[file_id] = size
        return file_id

    def message(
        self,
        chat_id: int,
        *,
        user_id: int | None = None,
        language: str = "en",
        chat_type: str | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        user_id = user_id or (chat_id if chat_id > 0 else 42)
        chat = _chat(chat_id, chat_type)
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": "Ana", "language_code": language},
            **content,
        }

    def photo(self, data: bytes, sizes: list[tuple[int, int]] | None = None) -> list[dict[str, Any]]:
        """PhotoSize entries; only the ones the bot should never pick get placeholder bytes."""
        sizes = sizes or [(90, 90), (320, 320), (800, 800)]
        entries = []
        for width, height in sizes:
            file_id = self.add_file(data)
            entries.append(
                {
                    "file_id": file_id,
                    "file_unique_id": f"u-{file_id}",
                    "width": width,
                    "height": height,
                    "file_size": len(data),
                }
            )
        return entries

    def document(
        self, data: bytes, *, name: str = "picture.jpg", mime: str = "image/jpeg", size: int | None = None
    ) -> dict[str, Any]:
        file_id = self.add_file(data, size)
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_name": name,
            "mime_type": mime,
            "file_size": size if size is not None else len(data),
        }

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        chat_id = call.params.get("chat_id")
        self._counts[(call.method, None)] += 1
        if chat_id is not None:
            with contextlib.suppress(TypeError, ValueError):
                self._counts[(call.method, int(chat_id))] += 1

    def count(self, method: str = "sendMessage", chat_id: int | None = None) -> int:
        return self._counts[(method, chat_id)]

    def sent(self, method: str = "sendMessage", chat_id: int | None = None) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.calls
            if c.method == method and (chat_id is None or int(c.params.get("chat_id", 0)) == chat_id)
        ]

    async def wait_for(
        self, method: str = "sendMessage", count: int = 1, chat_id: int | None = None, timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Wait until the bot has called ``method`` at least ``count`` times."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while self.count(method, chat_id) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} {method} call(s), got {self.sent(method, chat_id)}; "
                        f"all calls: {[c.method for c in self.calls]}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), remaining)
        return self.sent(method, chat_id)

    async def settle(self, seconds: float = 0.5) -> None:
        """Give the bot time to (not) act: for asserting silence."""
        await asyncio.sleep(seconds)


def command(text: str) -> list[dict[str, Any]]:
    """The entities of a message that starts with the command in ``text`` ("/lang es")."""
    return [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]


def _chat(chat_id: int, chat_type: str | None = None) -> dict[str, Any]:
    """Positive ids are private chats, negative ones groups, as in Telegram."""
    chat_type = chat_type or ("private" if chat_id > 0 else "supergroup")
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if chat_type != "private":
        chat["title"] = "Group"
    return chat


def _markup(params: dict[str, Any]) -> Any:
    markup = params.get("reply_markup")
    return json.loads(markup) if isinstance(markup, str) else markup


def _bot_message(chat_id: int, message_id: int, text: str) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "date": int(time.time()),
        "chat": _chat(chat_id),
        "from": BOT_USER,
        "text": text,
    }


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return await request.json()
    form = await request.post() if request.can_read_body else {}
    params = dict(request.query)
    params.update({k: v for k, v in form.items() if isinstance(v, str)})
    # Files sent (sendDocument): their name and bytes, for tests to read back.
    params.update(
        {k: {"filename": v.filename, "data": v.file.read()} for k, v in form.items() if hasattr(v, "file")}
    )
    for key, value in list(params.items()):
        if key not in _STRING_PARAMS:
            with contextlib.suppress(TypeError, ValueError):
                params[key] = json.loads(value)
    return params


async def _serve(port: int) -> None:
    server = FakeTelegram()
    server.port = port
    await server.start()
    print(server.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    import sys

    asyncio.run(_serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
