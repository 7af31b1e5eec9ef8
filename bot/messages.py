"""Everything the bot says, by interface language: ``CATALOG[language][key]``.

English and Spanish are complete; a test checks that every catalog has the same keys and the
same ``{placeholders}``. A language without a catalog reads the interface in English, while
its descriptions still come in that language. Adding a catalog is one block here.

Everything is plain text, never Markdown or HTML: a caption with a stray ``*`` or ``_`` must
not break a message, and screen readers read plain text best.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telegram import User

__all__ = [
    "CATALOG",
    "COMMANDS",
    "COMMAND_NAMES",
    "READING_COMMANDS",
    "message",
    "ui_language",
    "user_language",
]

_FORMATS = "JPEG, PNG, WebP, HEIC, AVIF, GIF, BMP, TIFF"

CATALOG: dict[str, dict[str, str]] = {
    "en": {
        # -- descriptions, answers, and their labels --------------------------------------
        "description": "Automatic description",
        "descriptions_of": "Automatic descriptions of {count} pictures:",
        "descriptions": "Automatic descriptions",
        "answer": "Answer",
        "answers_for": "Answers for {count} pictures:",
        "answers": "Answers",
        "album_item_failed": "(this one couldn't be described)",
        "album_item_unanswered": "(no answer for this one)",
        "no_description": "I couldn't describe this picture.",
        "no_answer": "I don't have an answer to that.",
        "more_not_shown": "(+{count} more not shown)",
        # -- buttons ----------------------------------------------------------------------
        "button_again": "Describe again",
        "button_delete": "Delete",
        "button_read": "Read text",
        "button_translate": "Translate",
        "buttons_not_yours": "Only the person who asked, or an admin, can use these buttons.",
        "button_unknown": "This button no longer does anything.",
        "describing_again": "Describing it again, in more detail…",
        "picture_gone": "I can't find the picture this describes any more.",
        # -- commands ---------------------------------------------------------------------
        "help": (
            "I describe photos for people who can't see them, in English, Spanish and other "
            "languages.\n\n"
            "Send me a photo, or a picture as a file, and I reply with a short description. "
            "In a group, I describe every photo I can see while auto is on.\n\n"
            "Questions: reply to my description with a question "
            '("what color is the car?"), and I answer about that photo. In a private chat you '
            "can also reply to the photo itself, or send the photo with your question as its "
            "caption. In a group, I answer replies to me that ask "
            'something ("what is he holding?", "describe the background"), not "thanks".\n\n'
            "Commands:\n"
            "/describe - reply to a photo with it to have it described\n"
            "/read - reply to a photo with it to hear the text in it (signs, menus, screenshots)\n"
            "/auto on|off - describe every photo in this chat, or only when asked\n"
            "/autoread on|off - read out pictures that are mostly text without being asked\n"
            "/lang - the languages of the descriptions (/lang en es, say)\n"
            "/help - this message\n\n"
            "In groups, only admins can change /auto and /lang. Telegram hides most group "
            "messages from bots: make me an admin (or turn my privacy mode off with "
            "@BotFather) so I can see every photo.\n\n"
            "Privacy: pictures are never stored. I keep only Telegram's file ids, the "
            "descriptions and each chat's settings. Descriptions are made by a machine and "
            "can be wrong."
        ),
        "send_a_photo": (
            "Send me a photo and I'll describe it. To ask about a photo, reply to it (or to my "
            "description) with your question. /help tells you more."
        ),
        "describe_usage": "Reply to a photo with /describe and I'll describe it.",
        "admins_only": "Only this group's admins can change that.",
        "auto_usage": "Use /auto on or /auto off. Now: {state}.",
        "auto_on": "Auto is on: I'll describe every photo I can see here.",
        "auto_off": "Auto is off: reply to a photo with /describe to have it described.",
        "lang_usage": "Descriptions here are in: {current}. Tap a language to add or remove it, or send /lang {example}.",
        "lang_unknown": "I can't describe in {unknown}. I can in: {choices}.",
        "lang_set": "Descriptions here will be in: {languages}.",
        # -- reading the text in a picture ------------------------------------------------
        "text_found": "Text in the picture:",
        "no_text": "No text found in this picture.",
        "text_file": "The whole text ({count} characters), as a file.",
        "read_usage": "Reply to a photo with /read and I'll read out the text in it.",
        "reading_off": "Reading the text in pictures isn't available here.",
        "autoread_usage": "Use /autoread on or /autoread off. Now: {state}.",
        "autoread_on": "Autoread is on: when a picture is mostly text (a sign, a menu, a screenshot), I read it out too.",
        "autoread_off": "Autoread is off: reply to a picture with /read, or press Read text, to have its text read.",
        # -- questions --------------------------------------------------------------------
        "ask_how": "To ask about a photo, reply to the photo or to my description of it with your question.",
        "question_too_long": "Please ask a shorter question (at most {limit} characters).",
        "question_language_off": "I can't take questions in {language} here; please ask in English.",
        # -- waiting, and what went wrong -------------------------------------------------
        "queued": "Queued: your picture is number {position} in line. This message will become its description.",
        "busy": "I'm very busy right now; please send the picture again in a minute.",
        "busy_again": "I'm very busy right now; please press the button again in a minute.",
        "busy_question": "I'm very busy right now; please ask again in a minute.",
        "too_many_queued": (
            "You already have several pictures waiting; please wait for their descriptions before sending more."
        ),
        "timeout": "Describing this picture took too long; please send it again later.",
        "timeout_question": "Answering took too long; please ask again later.",
        "failed": "Sorry, something went wrong while describing this picture. Please try again.",
        "failed_question": "Sorry, something went wrong while answering. Please try again.",
        "no_longer_available": "That picture is no longer available; please send it again.",
        "too_large_to_download": (
            "This file is {size_mb} MB; Telegram only lets bots download files up to 20 MB. Send it as a photo instead."
        ),
        "unsupported_kind": "I can't describe {kind} yet, only photos and pictures sent as files.",
        "kind.sticker": "stickers",
        "kind.animation": "animations",
        "kind.video": "videos",
        "kind.video_note": "video messages",
        # InvalidImage reasons (captioning.errors), by their code.
        "invalid.empty": "The file is empty.",
        "invalid.too_large": "The file is too large.",
        "invalid.too_big": "The picture is too big (over 50 megapixels).",
        "invalid.damaged": "The picture is incomplete or damaged and can't be read; try sending it again.",
        "invalid.not_a_picture": f"This file isn't a picture I can read. Send a photo, or a {_FORMATS} file.",
        "invalid.pdf": "This is a PDF document, not a picture. Send a photo instead.",
        "invalid.svg": "SVG drawings aren't supported. Send it as a photo instead.",
        "invalid.heic": "HEIC pictures can't be read here. Send it as a photo instead.",
        # -- the command menu (setMyCommands) ---------------------------------------------
        "command.describe": "Describe the photo you reply to",
        "command.read": "Read out the text in the photo you reply to",
        "command.auto": "on|off: describe every photo in this chat",
        "command.autoread": "on|off: read out pictures that are mostly text",
        "command.lang": "The languages of the descriptions",
        "command.help": "What I do and what I keep",
    },
    "es": {
        "description": "Descripción automática",
        "descriptions_of": "Descripciones automáticas de {count} imágenes:",
        "descriptions": "Descripciones automáticas",
        "answer": "Respuesta",
        "answers_for": "Respuestas para {count} imágenes:",
        "answers": "Respuestas",
        "album_item_failed": "(esta no se pudo describir)",
        "album_item_unanswered": "(sin respuesta para esta)",
        "no_description": "No pude describir esta imagen.",
        "no_answer": "No tengo respuesta para eso.",
        "more_not_shown": "(+{count} más sin mostrar)",
        "button_again": "Describir de nuevo",
        "button_delete": "Borrar",
        "button_read": "Leer texto",
        "button_translate": "Traducir",
        "buttons_not_yours": "Solo quien lo pidió, o un administrador, puede usar estos botones.",
        "button_unknown": "Este botón ya no hace nada.",
        "describing_again": "Describiéndola de nuevo, con más detalle…",
        "picture_gone": "Ya no encuentro la imagen que esto describe.",
        "help": (
            "Describo fotos para quienes no pueden verlas, en inglés, en español y en otros "
            "idiomas.\n\n"
            "Envíame una foto, o una imagen como archivo, y te respondo con una descripción "
            "breve. En un grupo, describo cada foto que veo mientras auto esté activado.\n\n"
            "Preguntas: responde a mi descripción con una pregunta "
            '("¿de qué color es el coche?"), y te respondo sobre esa foto. En un chat privado '
            "también puedes responder a la foto, o enviarla con tu pregunta como pie de foto. "
            "En un grupo, contesto las respuestas a mis "
            'mensajes que preguntan o piden algo ("¿qué tiene en la mano?", "describe el '
            'fondo"), no un "gracias".\n\n'
            "Comandos:\n"
            "/describe - respóndelo a una foto para que la describa\n"
            "/leer - respóndelo a una foto para oír su texto (carteles, menús, capturas)\n"
            "/auto on|off - describir cada foto del chat, o solo cuando se pida\n"
            "/autoread on|off - leer sin que lo pidan las imágenes que son sobre todo texto\n"
            "/lang - los idiomas de las descripciones (/lang en es, por ejemplo)\n"
            "/help - este mensaje\n\n"
            "En los grupos, solo los administradores pueden cambiar /auto y /lang. Telegram "
            "oculta a los bots la mayoría de los mensajes de un grupo: hazme administrador "
            "(o desactiva mi modo de privacidad con @BotFather) para que vea todas las fotos.\n\n"
            "Privacidad: nunca guardo las imágenes. Solo guardo los identificadores de "
            "archivo de Telegram, las descripciones y los ajustes de cada chat. Las "
            "descripciones las hace una máquina y pueden equivocarse."
        ),
        "send_a_photo": (
            "Envíame una foto y la describiré. Para preguntar por una foto, responde a ella (o a "
            "mi descripción) con tu pregunta. /help te cuenta más."
        ),
        "describe_usage": "Responde a una foto con /describe y la describiré.",
        "admins_only": "Solo los administradores del grupo pueden cambiar eso.",
        "auto_usage": "Usa /auto on o /auto off. Ahora: {state}.",
        "auto_on": "Auto activado: describiré cada foto que vea aquí.",
        "auto_off": "Auto desactivado: responde a una foto con /describe para que la describa.",
        "lang_usage": (
            "Las descripciones aquí están en: {current}. Toca un idioma para añadirlo o quitarlo, "
            "o envía /lang {example}."
        ),
        "lang_unknown": "No puedo describir en {unknown}. Puedo en: {choices}.",
        "lang_set": "Las descripciones aquí estarán en: {languages}.",
        "text_found": "Texto en la imagen:",
        "no_text": "No encontré texto en esta imagen.",
        "text_file": "El texto completo ({count} caracteres), como archivo.",
        "read_usage": "Responde a una foto con /leer y te leeré el texto que tiene.",
        "reading_off": "Aquí no puedo leer el texto de las imágenes.",
        "autoread_usage": "Usa /autoread on o /autoread off. Ahora: {state}.",
        "autoread_on": "Lectura automática activada: cuando una imagen sea sobre todo texto (un cartel, un menú, una captura), también lo leeré.",
        "autoread_off": "Lectura automática desactivada: responde a una imagen con /leer, o pulsa Leer texto, para que lea su texto.",
        "ask_how": "Para preguntar por una foto, responde a la foto o a mi descripción con tu pregunta.",
        "question_too_long": "Haz una pregunta más corta (como mucho {limit} caracteres).",
        "question_language_off": "Aquí no puedo responder preguntas en {language}; pregunta en inglés, por favor.",
        "queued": "En cola: tu imagen es la número {position}. Este mensaje se convertirá en su descripción.",
        "busy": "Estoy muy ocupado ahora; vuelve a enviar la imagen en un minuto.",
        "busy_again": "Estoy muy ocupado ahora; vuelve a pulsar el botón en un minuto.",
        "busy_question": "Estoy muy ocupado ahora; vuelve a preguntar en un minuto.",
        "too_many_queued": "Ya tienes varias imágenes en espera; espera sus descripciones antes de enviar más.",
        "timeout": "Describir esta imagen tardó demasiado; vuelve a enviarla más tarde.",
        "timeout_question": "Responder tardó demasiado; vuelve a preguntar más tarde.",
        "failed": "Lo siento, algo falló al describir esta imagen. Inténtalo de nuevo.",
        "failed_question": "Lo siento, algo falló al responder. Inténtalo de nuevo.",
        "no_longer_available": "Esa imagen ya no está disponible; vuelve a enviarla.",
        "too_large_to_download": (
            "Este archivo pesa {size_mb} MB; Telegram solo deja a los bots descargar archivos "
            "de hasta 20 MB. Envíalo como foto."
        ),
        "unsupported_kind": "Todavía no puedo describir {kind}, solo fotos e imágenes enviadas como archivo.",
        "kind.sticker": "stickers",
        "kind.animation": "animaciones",
        "kind.video": "vídeos",
        "kind.video_note": "videomensajes",
        "invalid.empty": "El archivo está vacío.",
        "invalid.too_large": "El archivo es demasiado grande.",
        "invalid.too_big": "La imagen es demasiado grande (más de 50 megapíxeles).",
        "invalid.damaged": "La imagen está incompleta o dañada y no se puede leer; intenta enviarla de nuevo.",
        "invalid.not_a_picture": f"Este archivo no es una imagen que pueda leer. Envía una foto, o un archivo {_FORMATS}.",
        "invalid.pdf": "Esto es un documento PDF, no una imagen. Envía una foto.",
        "invalid.svg": "No puedo leer dibujos SVG. Envíalo como foto.",
        "invalid.heic": "Aquí no puedo leer imágenes HEIC. Envíala como foto.",
        "command.describe": "Describe la foto a la que respondes",
        "command.read": "Lee el texto de la foto a la que respondes",
        "command.auto": "on|off: describir cada foto del chat",
        "command.autoread": "on|off: leer las imágenes que son sobre todo texto",
        "command.lang": "Los idiomas de las descripciones",
        "command.help": "Qué hago y qué guardo",
    },
}

# The commands in Telegram's menu, in order; their descriptions are in each catalog. A
# catalog may name a command in its own language ("leer" for "read"): the bot answers to both.
COMMANDS = ("describe", "read", "auto", "autoread", "lang", "help")
COMMAND_NAMES = {"es": {"read": "leer"}}
# Only there while reading is on.
READING_COMMANDS = frozenset({"read", "autoread"})


def ui_language(language_code: str | None) -> str:
    """The interface language for a Telegram language code (es, es-MX, pt-br, ...): its own
    catalog if there is one, else English."""
    code = (language_code or "").lower().split("-")[0]
    return code if code in CATALOG else "en"


def user_language(user: User | None) -> str:
    """The interface language for a person (English for nobody in particular)."""
    return ui_language(user.language_code if user else None)


def message(key: str, lang: str, **values: object) -> str:
    """The text ``key`` in the interface language ``lang`` (English where there is no catalog)."""
    catalog = CATALOG.get(lang, CATALOG["en"])
    return catalog.get(key, CATALOG["en"][key]).format(**values)
