"""Who and what each of the bot's replies is about, and which messages each answer sent.

* A reply's owner (who asked: the only person, besides admins, whose buttons work) and its
  pictures (what a question in reply to it asks about), for :data:`PICTURES_KEPT_S`.
* What an answer sent, part by part, under a key that names the answer (the update and what
  it answers, or an album): the "queued" reply (part 0), then each message and file. An answer
  tried again, or replayed after a crash, sends only the parts not sent yet, edits the queued
  reply it left rather than sending another, and "Delete" removes every message it sent.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PICTURES_KEPT_S", "Forgotten", "PictureRef", "Replies"]

# How long a reply stays askable: a question about a month-old photo is rare, and the ids
# of people's pictures are not kept longer than they are useful.
PICTURES_KEPT_S = 30 * 24 * 3600


@dataclass(frozen=True)
class PictureRef:
    """A picture as Telegram knows it: enough to fetch it again, never its bytes."""

    file_id: str
    unique_id: str
    size: int | None = None


class Replies:
    """The reply tables' SQL, for :class:`~bot.store.database.Database`."""

    _db: sqlite3.Connection

    def remember_reply(
        self, chat_id: int, message_id: int, owner_id: int, pictures: Sequence[PictureRef]
    ) -> None:
        """The bot's message ``message_id`` answers ``owner_id`` about ``pictures`` (in order)."""
        now = time.time()
        self._db.execute(
            "INSERT OR REPLACE INTO reply_owner (chat_id, message_id, owner_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (chat_id, message_id, owner_id, now),
        )
        self._db.execute(
            "DELETE FROM reply_pictures WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )
        self._db.executemany(
            "INSERT INTO reply_pictures "
            "(chat_id, message_id, position, file_id, file_unique_id, file_size, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (chat_id, message_id, n, p.file_id, p.unique_id, p.size, now)
                for n, p in enumerate(pictures, start=1)
            ],
        )

    def reply_owner(self, chat_id: int, message_id: int) -> int | None:
        """Who the bot's message answers: the only person, besides admins, whose buttons work."""
        row = self._db.execute(
            "SELECT owner_id FROM reply_owner WHERE chat_id = ? AND message_id = ? AND created_at >= ?",
            (chat_id, message_id, time.time() - PICTURES_KEPT_S),
        ).fetchone()
        return row[0] if row else None

    def pictures_of(self, chat_id: int, message_id: int) -> list[PictureRef]:
        """The pictures the bot's message is about, in order; [] if it is about none."""
        rows = self._db.execute(
            "SELECT file_id, file_unique_id, file_size FROM reply_pictures "
            "WHERE chat_id = ? AND message_id = ? AND created_at >= ? ORDER BY position",
            (chat_id, message_id, time.time() - PICTURES_KEPT_S),
        )
        return [PictureRef(*row) for row in rows]

    def latest_pictures(self, chat_id: int, since: float) -> list[PictureRef]:
        """The pictures the bot's latest message about any, in the chat since ``since`` (a
        time), is about: what a follow-up question without a reply asks about."""
        row = self._db.execute(
            "SELECT message_id FROM reply_pictures WHERE chat_id = ? AND created_at >= ? "
            "ORDER BY created_at DESC, message_id DESC LIMIT 1",
            (chat_id, since),
        ).fetchone()
        return self.pictures_of(chat_id, row[0]) if row else []

    def forget_reply(self, chat_id: int, message_id: int) -> None:
        """The bot's message was deleted: nothing can reply to it, or press its buttons, any more."""
        for table in ("reply_pictures", "reply_owner"):
            self._db.execute(
                f"DELETE FROM {table} WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
            )

    def sent(self, key: str) -> dict[int, tuple[int, int]]:
        """What the answer ``key`` has sent so far: part -> (chat id, message id)."""
        rows = self._db.execute("SELECT position, chat_id, message_id FROM sent WHERE key = ?", (key,))
        return {position: (chat_id, message_id) for position, chat_id, message_id in rows}

    def record_sent(
        self,
        key: str,
        position: int,
        chat_id: int,
        message_id: int,
        answer: str | None = None,
        picture: str | None = None,
    ) -> None:
        """The answer ``key``'s part ``position`` is the message ``message_id`` (the ``answer``
        it is, about the ``picture`` with that file_unique_id)."""
        self._db.execute(
            "INSERT OR REPLACE INTO sent (key, position, chat_id, message_id, created_at, answer, picture) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, position, chat_id, message_id, time.time(), answer, picture),
        )

    def recent_answer(
        self, chat_id: int, picture: str, answer: str, since: float, other_than: str = ""
    ) -> int | None:
        """The first message of the latest ``answer`` about ``picture`` in the chat since
        ``since`` (a time), if there is one; not the answer ``other_than`` (one's own, sent in
        part before a retry)."""
        row = self._db.execute(
            "SELECT message_id FROM sent WHERE chat_id = ? AND picture = ? AND answer = ? "
            "AND position = 1 AND created_at >= ? AND key != ? ORDER BY created_at DESC LIMIT 1",
            (chat_id, picture, answer, since, other_than),
        ).fetchone()
        return row[0] if row else None

    def forget_sent(self, key: str, position: int) -> None:
        self._db.execute("DELETE FROM sent WHERE key = ? AND position = ?", (key, position))

    def answer_of(self, chat_id: int, message_id: int) -> list[tuple[int, int]]:
        """Every message of the answer that sent ``message_id``, in order; [] if none is known."""
        rows = self._db.execute(
            "SELECT chat_id, message_id FROM sent WHERE key IN "
            "(SELECT key FROM sent WHERE chat_id = ? AND message_id = ?) ORDER BY position",
            (chat_id, message_id),
        )
        return [(chat, message) for chat, message in rows]

    def forget_answer(self, chat_id: int, message_id: int) -> None:
        """The answer that sent ``message_id`` was deleted, all of it: nothing can reply to its
        messages, or press their buttons, any more."""
        for chat, message in self.answer_of(chat_id, message_id) or [(chat_id, message_id)]:
            self.forget_reply(chat, message)
        self._db.execute(
            "DELETE FROM sent WHERE key IN (SELECT key FROM sent WHERE chat_id = ? AND message_id = ?)",
            (chat_id, message_id),
        )

    def forget_chat(self, chat_id: int) -> Forgotten:
        """Everything kept about a chat, gone in one transaction (/forget): its settings, its
        replies' owners and pictures, what its answers sent, and what the models said about
        its pictures (descriptions, text read, translations)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            pictures = [
                row[0]
                for row in self._db.execute(
                    "SELECT file_unique_id FROM reply_pictures WHERE chat_id = ? "
                    "UNION SELECT picture FROM sent WHERE chat_id = ? AND picture IS NOT NULL",
                    (chat_id, chat_id),
                )
            ]
            replies = self._db.execute(
                "SELECT count(*) FROM (SELECT message_id FROM reply_owner WHERE chat_id = ? "
                "UNION SELECT message_id FROM reply_pictures WHERE chat_id = ? "
                "UNION SELECT message_id FROM sent WHERE chat_id = ?)",
                (chat_id, chat_id, chat_id),
            ).fetchone()[0]
            texts = sum(
                self._db.execute("DELETE FROM texts WHERE file_unique_id = ?", (picture,)).rowcount
                for picture in pictures
            )
            for table in ("reply_pictures", "reply_owner", "sent"):
                self._db.execute(f"DELETE FROM {table} WHERE chat_id = ?", (chat_id,))
            settings = self._db.execute("DELETE FROM chats WHERE chat_id = ?", (chat_id,)).rowcount
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return Forgotten(bool(settings), replies, len(pictures), texts)


@dataclass(frozen=True)
class Forgotten:
    """What /forget deleted about a chat."""

    settings: bool  # the chat had settings of its own
    replies: int  # the bot's messages it knew who asked for, or what about
    pictures: int  # pictures whose ids, and what the models said of them, went
    texts: int  # descriptions, texts read and translations, one per language
