"""A picture as Telegram holds it: which file to fetch, and fetching it into memory.

Pictures are downloaded into memory and handed to the describer; their bytes never touch
the disk. Telegram lets bots download files up to 20 MB: a larger one is explained without
trying. A file Telegram no longer has (deleted, or its id expired) is :class:`PictureGone`.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from telegram import Bot, Document, Message, PhotoSize
from telegram.constants import FileSizeLimit
from telegram.error import BadRequest, InvalidToken

from .store import PictureRef

__all__ = [
    "READ_LIMIT",
    "PictureGone",
    "TooBigForTelegram",
    "choose_photo_size",
    "download",
    "might_be_a_picture",
    "picture_file",
    "picture_for_reading",
]


class TooBigForTelegram(Exception):
    """Telegram won't let a bot download this file (over 20 MB)."""

    def __init__(self, size_mb: int = 20) -> None:
        super().__init__(size_mb)
        self.size_mb = size_mb


class PictureGone(Exception):
    """Telegram no longer has the file: it was deleted, or is no longer available to the bot."""


def choose_photo_size(sizes: tuple[PhotoSize, ...], min_side: int) -> PhotoSize:
    """The smallest size whose short side is at least ``min_side``, else the largest.

    Chosen by the sizes given, not by their order: Telegram's order is not a promise.
    """
    big_enough = [s for s in sizes if min(s.width, s.height) >= min_side]
    if big_enough:
        return min(big_enough, key=lambda s: s.width * s.height)
    return max(sizes, key=lambda s: s.width * s.height)


# The largest photo fetched to read its text: Telegram's sizes go up to 2560 px a side.
READ_LIMIT = 2048


def picture_for_reading(message: Message, min_side: int) -> PictureRef:
    """The file to fetch to read a picture's text: the largest photo size up to READ_LIMIT px
    a side (text needs pixels: far more than a description does), or the document itself."""
    if message.photo:
        fitting = [s for s in message.photo if max(s.width, s.height) <= READ_LIMIT]
        if fitting:
            best = max(fitting, key=lambda s: s.width * s.height)
        else:
            best = choose_photo_size(message.photo, min_side)
        return PictureRef(best.file_id, best.file_unique_id, best.file_size)
    return picture_file(message, min_side)


# What a file's name ends with when it may be a picture the models take.
PICTURE_SUFFIXES = frozenset(
    (".jpg", ".jpeg", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif", ".heic", ".heif")
)
# What a client calls a file it knows nothing about: then only the bytes can tell.
_UNKNOWN_TYPES = frozenset(("", "application/octet-stream", "binary/octet-stream"))


def might_be_a_picture(document: Document) -> bool:
    """False for a file that clearly isn't a picture: its type says another kind (a zip, a
    video, a PDF) and its name doesn't end like a picture's, or its type says nothing and its
    name ends like something else. Groups skip those undownloaded; a private chat, where the
    person hears what went wrong, still lets the bytes decide."""
    mime = (document.mime_type or "").lower()
    suffix = PurePosixPath((document.file_name or "").lower()).suffix
    if mime.startswith("image/") or suffix in PICTURE_SUFFIXES:
        return True
    return mime in _UNKNOWN_TYPES and not suffix


def picture_file(message: Message, min_side: int) -> PictureRef:
    """The file to fetch for a photo (the size that suits the model) or a picture document."""
    if message.photo:
        best = choose_photo_size(message.photo, min_side)
        return PictureRef(best.file_id, best.file_unique_id, best.file_size)
    document = message.document
    if document is None:
        raise TypeError(f"message {message.message_id} has no picture")
    return PictureRef(document.file_id, document.file_unique_id, document.file_size)


async def download(bot: Bot, picture: PictureRef) -> bytearray:
    """The file's bytes, in memory only: pictures never touch the disk.

    Raises TooBigForTelegram for files over Telegram's 20 MB (without trying where the size
    is known), and PictureGone for a file Telegram no longer has.
    """
    if picture.size is not None and picture.size > FileSizeLimit.FILESIZE_DOWNLOAD:
        raise TooBigForTelegram(round(picture.size / 1_000_000))
    try:
        file = await bot.get_file(picture.file_id)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            raise TooBigForTelegram from exc
        raise PictureGone(str(exc)) from exc
    try:
        return await file.download_as_bytearray()
    except (BadRequest, InvalidToken) as exc:  # python-telegram-bot reports a 404 as InvalidToken
        raise PictureGone(str(exc)) from exc
