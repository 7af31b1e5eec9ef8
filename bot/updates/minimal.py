"""What is kept of an update in the journal: what answering it needs, and nothing else.

:func:`minimal` keeps the ids, the chat and its type, the sender's id and language, text,
captions, file ids and the message replied to, and drops everything else: names, usernames,
phone numbers, places, file names, forward origins, signatures, polls. Required fields keep a
value, so the update still parses when it is replayed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["minimal"]

_PHOTO_SIZE = ("file_id", "file_unique_id", "width", "height", "file_size")
_MEDIA = {
    # Kept whole where the bot reads them (file ids and sizes); their required fields only
    # where their presence alone matters (which "not yet" to say).
    "document": ("file_id", "file_unique_id", "file_size", "mime_type"),
    "sticker": ("file_id", "file_unique_id", "width", "height", "is_animated", "is_video", "type"),
    "animation": ("file_id", "file_unique_id", "width", "height", "duration"),
    "video": ("file_id", "file_unique_id", "width", "height", "duration"),
    "video_note": ("file_id", "file_unique_id", "length", "duration"),
}
_MESSAGE_FIELDS = (
    "message_id",
    "date",
    "message_thread_id",
    "is_topic_message",
    "is_automatic_forward",
    "media_group_id",
    "text",
    "caption",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
)


def minimal(update: dict[str, Any]) -> dict[str, Any]:
    """What a replay of ``update`` needs, and nothing else (see the module's docstring)."""
    kept: dict[str, Any] = {"update_id": update["update_id"]}
    for kind in ("message", "channel_post"):
        if isinstance(update.get(kind), dict):
            kept[kind] = _message(update[kind], depth=1)
    query = update.get("callback_query")
    if isinstance(query, dict):
        kept["callback_query"] = {
            "id": query.get("id", ""),
            "from": _user(query.get("from") or {}),
            "chat_instance": query.get("chat_instance", ""),
            **{k: query[k] for k in ("data", "inline_message_id") if k in query},
        }
        if isinstance(query.get("message"), dict):
            kept["callback_query"]["message"] = _message(query["message"], depth=1)
            buttons = _buttons(query["message"].get("reply_markup"))
            if buttons is not None:  # which buttons it shows: a press counts only on its own
                kept["callback_query"]["message"]["reply_markup"] = buttons
    return kept


def _message(message: dict[str, Any], depth: int) -> dict[str, Any]:
    kept = {k: message[k] for k in _MESSAGE_FIELDS if k in message}
    kept.setdefault("date", 0)
    kept.setdefault("message_id", 0)
    kept["chat"] = _chat(message.get("chat") or {})
    if isinstance(message.get("from"), dict):
        kept["from"] = _user(message["from"])
    if isinstance(message.get("sender_chat"), dict):
        kept["sender_chat"] = _chat(message["sender_chat"])
    for key in ("entities", "caption_entities"):
        if isinstance(message.get(key), list):
            kept[key] = [{k: e[k] for k in ("type", "offset", "length") if k in e} for e in message[key]]
    if isinstance(message.get("photo"), list):
        kept["photo"] = [{k: size[k] for k in _PHOTO_SIZE if k in size} for size in message["photo"]]
    for kind, fields in _MEDIA.items():
        if isinstance(message.get(kind), dict):
            kept[kind] = {k: message[kind][k] for k in fields if k in message[kind]}
    if depth > 0 and isinstance(message.get("reply_to_message"), dict):
        kept["reply_to_message"] = _message(message["reply_to_message"], depth - 1)
    return kept


def _buttons(markup: Any) -> dict[str, Any] | None:
    """An inline keyboard's buttons, by their data only."""
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list):
        return None
    kept = [
        [
            {"text": "", "callback_data": b["callback_data"]}
            for b in row
            if isinstance(b, dict) and "callback_data" in b
        ]
        for row in rows
        if isinstance(row, list)
    ]
    return {"inline_keyboard": kept}


def _user(user: dict[str, Any]) -> dict[str, Any]:
    kept = {"id": user.get("id", 0), "is_bot": bool(user.get("is_bot")), "first_name": ""}
    if "language_code" in user:
        kept["language_code"] = user["language_code"]
    return kept


def _chat(chat: dict[str, Any]) -> dict[str, Any]:
    return {"id": chat.get("id", 0), "type": chat.get("type", "private")}
