"""What a person reads: descriptions and every message the bot sends, in English and Spanish.

Everything here is plain text, never Markdown or HTML: a caption with a stray ``*`` or ``_``
must not break the message, and screen readers read plain text best.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from captioning import Description

from .store import Language

__all__ = [
    "MESSAGES",
    "album_reply",
    "answer_reply",
    "describe_reply",
    "message",
    "sentence",
    "user_language",
]

# Telegram's limit is 4096 characters; a description is meant to be read aloud, so each
# language gets far less than that.
MAX_DESCRIPTION_CHARS = 600


def user_language(language_code: str | None) -> str:
    """Spanish for people whose Telegram speaks Spanish (es, es-MX, ...), else English."""
    return "es" if (language_code or "").lower().startswith("es") else "en"


def sentence(text: str) -> str:
    """'a red square' -> 'A red square.'; capped in length for screen readers."""
    text = text.strip()
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[: MAX_DESCRIPTION_CHARS - 1].rsplit(" ", 1)[0] + "…"
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def describe_reply(description: Description, lang: Language) -> str:
    """The reply under a photo, labelled as an automatic description."""
    english, spanish = sentence(description.english), sentence(description.spanish)
    if not english:
        return message("no_description", "es" if lang == "es" else "en")
    if lang == "en" or not spanish:
        return f"Automatic description: {english}"
    if lang == "es":
        return f"Descripción automática: {spanish}"
    return f"Automatic description / Descripción automática\nEnglish: {english}\nEspañol: {spanish}"


def album_reply(results: list[Description | BaseException], lang: Language, ui_lang: str) -> str:
    """One message for an album: its pictures numbered 1..N, in the order they were sent."""
    header = {
        "en": f"Automatic descriptions of {len(results)} pictures:",
        "es": f"Descripciones automáticas de {len(results)} imágenes:",
        "both": f"Automatic descriptions / Descripciones automáticas ({len(results)}):",
    }[lang]
    return fit([header, *_numbered(results, lang, ui_lang, "album_item_failed")])


def answer_reply(results: list[Description | str], lang: Language, ui_lang: str) -> str:
    """The answer to a question about one picture, or about each picture of an album.

    A result is an answer, or the sentence that says why there is none. ``ui_lang`` is the
    asker's language; the answers themselves are in the chat's languages (``lang``).
    """
    if len(results) == 1:
        [result] = results
        if isinstance(result, str):
            return result
        english, spanish = sentence(result.english), sentence(result.spanish)
        if not english:
            return message("no_answer", "es" if lang == "es" else ui_lang)
        if lang == "en" or not spanish:
            return f"Answer: {english}"
        if lang == "es":
            return f"Respuesta: {spanish}"
        return f"Answer: {english}\nRespuesta: {spanish}"
    header = {
        "en": f"Answers for {len(results)} pictures:",
        "es": f"Respuestas para {len(results)} imágenes:",
        "both": f"Answers / Respuestas ({len(results)}):",
    }[lang]
    return fit([header, *_numbered(results, lang, ui_lang, "album_item_unanswered")])


def _numbered(
    results: list[Description | object], lang: Language, ui_lang: str, failed_key: str
) -> list[str]:
    """One numbered entry per picture, 1..N, in the chat's languages."""
    lines = []
    for number, result in enumerate(results, start=1):
        if not isinstance(result, Description) or not result.english:
            lines.append(f"{number}. " + message(failed_key, "es" if lang == "es" else ui_lang))
            continue
        english, spanish = sentence(result.english), sentence(result.spanish)
        if lang == "en" or (lang == "both" and not spanish):
            lines.append(f"{number}. {english}")
        elif lang == "es":
            lines.append(f"{number}. {spanish}")
        else:
            lines.append(f"{number}. English: {english}\n   Español: {spanish}")
    return lines


def fit(lines: list[str], limit: int = 4096) -> str:
    """Join lines into one message within Telegram's limit, saying what was left out."""
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    for line in lines:
        if len("\n".join([*kept, line])) > limit - 40:
            break
        kept.append(line)
    return "\n".join([*kept, f"(+{len(lines) - len(kept)} more not shown)"])


def buttons(asker_id: int, lang: Language, *, again: bool = True) -> InlineKeyboardMarkup:
    """Under a description: "Describe again" (more detail) and "Delete".

    The buttons carry the id of the person who asked: in groups only they, or an admin,
    may use them.
    """
    labels = BUTTONS[lang]
    row = [InlineKeyboardButton(labels["again"], callback_data=f"again:{asker_id}")] if again else []
    row.append(InlineKeyboardButton(labels["delete"], callback_data=f"delete:{asker_id}"))
    return InlineKeyboardMarkup([row])


BUTTONS = {
    "en": {"again": "Describe again", "delete": "Delete"},
    "es": {"again": "Describir de nuevo", "delete": "Borrar"},
    "both": {"again": "Describe again / Describir de nuevo", "delete": "Delete / Borrar"},
}


def message(key: str, lang: str, **values: object) -> str:
    """A user-facing message in ``lang`` (en or es)."""
    return MESSAGES[key]["es" if lang == "es" else "en"].format(**values)


_FORMATS = "JPEG, PNG, WebP, GIF, BMP, TIFF"

MESSAGES: dict[str, dict[str, str]] = {
    "help": {
        "en": (
            "I describe photos for people who can't see them, in English and Spanish.\n\n"
            "Send me a photo, or a picture as a file, and I reply with a short description. "
            "In a group, I describe every photo I can see while auto is on.\n\n"
            "Questions: reply to my description with a question, in English or Spanish "
            '("what color is the car?"), and I answer about that photo. In a private chat you '
            "can also reply to the photo itself, or send the photo with your question as its "
            "caption. In a group, I answer replies to me that ask "
            'something ("what is he holding?", "describe the background"), not "thanks".\n\n'
            "Commands:\n"
            "/describe - reply to a photo with it to have it described\n"
            "/auto on|off - describe every photo in this chat, or only when asked\n"
            "/lang en|es|both - the language of the descriptions\n"
            "/help - this message\n\n"
            "In groups, only admins can change /auto and /lang. Telegram hides most group "
            "messages from bots: make me an admin (or turn my privacy mode off with "
            "@BotFather) so I can see every photo.\n\n"
            "Privacy: pictures are never stored. I keep only Telegram's file ids, the "
            "descriptions and each chat's settings. Descriptions are made by a machine and "
            "can be wrong."
        ),
        "es": (
            "Describo fotos para quienes no pueden verlas, en inglés y en español.\n\n"
            "Envíame una foto, o una imagen como archivo, y te respondo con una descripción "
            "breve. En un grupo, describo cada foto que veo mientras auto esté activado.\n\n"
            "Preguntas: responde a mi descripción con una pregunta, en español o en inglés "
            '("¿de qué color es el coche?"), y te respondo sobre esa foto. En un chat privado '
            "también puedes responder a la foto, o enviarla con tu pregunta como pie de foto. "
            "En un grupo, contesto las respuestas a mis "
            'mensajes que preguntan o piden algo ("¿qué tiene en la mano?", "describe el '
            'fondo"), no un "gracias".\n\n'
            "Comandos:\n"
            "/describe - respóndelo a una foto para que la describa\n"
            "/auto on|off - describir cada foto del chat, o solo cuando se pida\n"
            "/lang en|es|both - el idioma de las descripciones\n"
            "/help - este mensaje\n\n"
            "En los grupos, solo los administradores pueden cambiar /auto y /lang. Telegram "
            "oculta a los bots la mayoría de los mensajes de un grupo: hazme administrador "
            "(o desactiva mi modo de privacidad con @BotFather) para que vea todas las fotos.\n\n"
            "Privacidad: nunca guardo las imágenes. Solo guardo los identificadores de "
            "archivo de Telegram, las descripciones y los ajustes de cada chat. Las "
            "descripciones las hace una máquina y pueden equivocarse."
        ),
    },
    "send_a_photo": {
        "en": "Send me a photo and I'll describe it. To ask about a photo, reply to it (or to my "
        "description) with your question. /help tells you more.",
        "es": "Envíame una foto y la describiré. Para preguntar por una foto, responde a ella (o a "
        "mi descripción) con tu pregunta. /help te cuenta más.",
    },
    "buttons_not_yours": {
        "en": "Only the person who asked, or an admin, can use these buttons.",
        "es": "Solo quien lo pidió, o un administrador, puede usar estos botones.",
    },
    "describing_again": {
        "en": "Describing it again, in more detail…",
        "es": "Describiéndola de nuevo, con más detalle…",
    },
    "picture_gone": {
        "en": "I can't find the picture this describes any more.",
        "es": "Ya no encuentro la imagen que esto describe.",
    },
    "album_item_failed": {
        "en": "(this one couldn't be described)",
        "es": "(esta no se pudo describir)",
    },
    "album_item_unanswered": {
        "en": "(no answer for this one)",
        "es": "(sin respuesta para esta)",
    },
    "no_answer": {
        "en": "I don't have an answer to that.",
        "es": "No tengo respuesta para eso.",
    },
    "ask_how": {
        "en": "To ask about a photo, reply to the photo or to my description of it with your question.",
        "es": "Para preguntar por una foto, responde a la foto o a mi descripción con tu pregunta.",
    },
    "question_too_long": {
        "en": "Please ask a shorter question (at most {limit} characters).",
        "es": "Haz una pregunta más corta (como mucho {limit} caracteres).",
    },
    "busy_again": {
        "en": "I'm very busy right now; please press the button again in a minute.",
        "es": "Estoy muy ocupado ahora; vuelve a pulsar el botón en un minuto.",
    },
    "busy_question": {
        "en": "I'm very busy right now; please ask again in a minute.",
        "es": "Estoy muy ocupado ahora; vuelve a preguntar en un minuto.",
    },
    "timeout_question": {
        "en": "Answering took too long; please ask again later.",
        "es": "Responder tardó demasiado; vuelve a preguntar más tarde.",
    },
    "failed_question": {
        "en": "Sorry, something went wrong while answering. Please try again.",
        "es": "Lo siento, algo falló al responder. Inténtalo de nuevo.",
    },
    "no_description": {
        "en": "I couldn't describe this picture.",
        "es": "No pude describir esta imagen.",
    },
    "too_large_to_download": {
        "en": "This file is {size_mb} MB; Telegram only lets bots download files up to 20 MB. "
        "Send it as a photo instead.",
        "es": "Este archivo pesa {size_mb} MB; Telegram solo deja a los bots descargar archivos "
        "de hasta 20 MB. Envíalo como foto.",
    },
    "unsupported_kind": {
        "en": "I can't describe {kind} yet, only photos and pictures sent as files.",
        "es": "Todavía no puedo describir {kind}, solo fotos e imágenes enviadas como archivo.",
    },
    "describe_usage": {
        "en": "Reply to a photo with /describe and I'll describe it.",
        "es": "Responde a una foto con /describe y la describiré.",
    },
    "admins_only": {
        "en": "Only this group's admins can change that.",
        "es": "Solo los administradores del grupo pueden cambiar eso.",
    },
    "auto_usage": {
        "en": "Use /auto on or /auto off. Now: {state}.",
        "es": "Usa /auto on o /auto off. Ahora: {state}.",
    },
    "auto_on": {
        "en": "Auto is on: I'll describe every photo I can see here.",
        "es": "Auto activado: describiré cada foto que vea aquí.",
    },
    "auto_off": {
        "en": "Auto is off: reply to a photo with /describe to have it described.",
        "es": "Auto desactivado: responde a una foto con /describe para que la describa.",
    },
    "lang_usage": {
        "en": "Use /lang en, /lang es or /lang both. Now: {language}.",
        "es": "Usa /lang en, /lang es o /lang both. Ahora: {language}.",
    },
    "lang_set": {
        "en": "Descriptions here will be in: {language}.",
        "es": "Las descripciones aquí estarán en: {language}.",
    },
    "queued": {
        "en": "Queued: your picture is number {position} in line. This message will become its description.",
        "es": "En cola: tu imagen es la número {position}. Este mensaje se convertirá en su descripción.",
    },
    "busy": {
        "en": "I'm very busy right now; please send the picture again in a minute.",
        "es": "Estoy muy ocupado ahora; vuelve a enviar la imagen en un minuto.",
    },
    "too_many_queued": {
        "en": "You already have several pictures waiting; please wait for their descriptions "
        "before sending more.",
        "es": "Ya tienes varias imágenes en espera; espera sus descripciones antes de enviar más.",
    },
    "timeout": {
        "en": "Describing this picture took too long; please send it again later.",
        "es": "Describir esta imagen tardó demasiado; vuelve a enviarla más tarde.",
    },
    "failed": {
        "en": "Sorry, something went wrong while describing this picture. Please try again.",
        "es": "Lo siento, algo falló al describir esta imagen. Inténtalo de nuevo.",
    },
    # InvalidImage reasons (captioning.errors), for people whose Telegram speaks Spanish.
    "invalid.empty": {"en": "The file is empty.", "es": "El archivo está vacío."},
    "invalid.too_large": {"en": "The file is too large.", "es": "El archivo es demasiado grande."},
    "invalid.too_big": {
        "en": "The picture is too big (over 50 megapixels).",
        "es": "La imagen es demasiado grande (más de 50 megapíxeles).",
    },
    "invalid.damaged": {
        "en": "The picture is incomplete or damaged and can't be read; try sending it again.",
        "es": "La imagen está incompleta o dañada y no se puede leer; intenta enviarla de nuevo.",
    },
    "invalid.not_a_picture": {
        "en": f"This file isn't a picture I can read. Send a photo, or a {_FORMATS} file.",
        "es": f"Este archivo no es una imagen que pueda leer. Envía una foto, o un archivo {_FORMATS}.",
    },
    "invalid.pdf": {
        "en": "This is a PDF document, not a picture. Send a photo instead.",
        "es": "Esto es un documento PDF, no una imagen. Envía una foto.",
    },
    "invalid.svg": {
        "en": "SVG drawings aren't supported. Send it as a photo instead.",
        "es": "No puedo leer dibujos SVG. Envíalo como foto.",
    },
    "invalid.heic": {
        "en": "HEIC pictures aren't supported yet. Send it as a photo instead.",
        "es": "Todavía no puedo leer imágenes HEIC. Envíala como foto.",
    },
}

KINDS = {
    "sticker": {"en": "stickers", "es": "stickers"},
    "animation": {"en": "animations", "es": "animaciones"},
    "video": {"en": "videos", "es": "vídeos"},
    "video_note": {"en": "video messages", "es": "videomensajes"},
}

LANGUAGE_NAMES = {
    "en": {"en": "English", "es": "inglés"},
    "es": {"en": "Spanish", "es": "español"},
    "both": {"en": "English and Spanish", "es": "inglés y español"},
}


def invalid_image(reason: str, lang: str) -> str:
    """The message for a rejected picture, by its ``InvalidImage.reason``."""
    key = f"invalid.{reason}"
    return message(key if key in MESSAGES else "invalid.not_a_picture", lang)
