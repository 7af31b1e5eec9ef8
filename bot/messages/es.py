"""The bot's texts in Spanish (for people whose Telegram is in Spanish)."""

from .en import FORMATS

# The commands' names in this language, where they differ from the action's own: /leer is
# /read, and the bot answers to both.
COMMANDS: dict[str, str] = {"read": "leer", "forget": "olvidar", "where": "donde", "detail": "detalle"}

MESSAGES: dict[str, str] = {
    "description": "Descripción automática, puede fallar",
    "descriptions_of": "Descripciones automáticas de {count} imágenes, pueden fallar:",
    "descriptions": "Descripciones automáticas, pueden fallar",
    "answer": "Respuesta",
    "answers_for": "Respuestas para {count} imágenes:",
    "answers": "Respuestas",
    "album_item_failed": "(esta no se pudo describir)",
    "album_item_unanswered": "(sin respuesta para esta)",
    "no_description": "No pude describir esta imagen.",
    "no_answer": "No tengo respuesta para eso.",
    "more_not_shown": "(+{count} más sin mostrar)",
    "button_again": "Más detalle",
    "button_delete": "Borrar",
    "button_read": "Leer texto",
    "button_where": "Dónde está cada cosa",
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
        "también puedes responder a la foto, enviarla con tu pregunta como pie de foto, o "
        "simplemente preguntar, sin responder, poco después de mi respuesta. "
        "En un grupo, contesto las respuestas a mis "
        'mensajes que preguntan o piden algo ("¿qué tiene en la mano?", "describe el '
        'fondo"), no un "gracias".\n\n'
        "Comandos:\n"
        "/describe - respóndelo a una foto para que la describa\n"
        "/leer - respóndelo a una foto para oír su texto (carteles, menús, capturas)\n"
        "/donde - respóndelo a una foto para saber dónde está cada cosa\n"
        "/auto on|off - describir cada foto del chat, o solo cuando se pida\n"
        "/autoread on|off - leer sin que lo pidan las imágenes que son sobre todo texto\n"
        "/lang - los idiomas de las descripciones (/lang en es, por ejemplo)\n"
        "/detalle corto|largo - una frase por imagen, o un párrafo\n"
        "/olvidar - borrar todo lo que guardo de este chat\n"
        "/help - este mensaje\n\n"
        "En los grupos, solo los administradores pueden cambiar /auto, /lang y /detalle, y usar /olvidar. Telegram "
        "oculta a los bots la mayoría de los mensajes de un grupo: hazme administrador "
        "(o desactiva mi modo de privacidad con @BotFather) para que vea todas las fotos.\n\n"
        "Privacidad: nunca guardo las imágenes. Durante 30 días guardo los identificadores "
        "de Telegram de las imágenes que respondí y de quién lo pidió (para que funcionen "
        "las preguntas y los botones), y las descripciones; el texto que leo en las "
        "imágenes, {read_hours} horas; los ajustes de cada chat, hasta que cambien. /olvidar "
        "lo borra todo de este chat. Las descripciones las hace una máquina y pueden "
        "equivocarse."
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
    "lang_codes": "Envía códigos de idioma, como /lang {example}. Puedo describir en: {choices}.",
    "lang_set": "Las descripciones aquí estarán en: {languages}.",
    "text_found": "Texto en la imagen:",
    "texts_found": "Texto en las imágenes:",
    "see_above.read": "Ya leí su texto justo arriba.",
    "see_above.describe": "Ya la describí justo arriba.",
    "see_above.where": "Ya dije dónde está cada cosa justo arriba.",
    "slow_down": "Estás pidiendo más rápido de lo que este chat puede llevar: te respondo de nuevo en un minuto.",
    "no_text": "No encontré texto en esta imagen.",
    "text_file": "El texto completo ({count} caracteres), como archivo.",
    "translation_file": "La traducción completa ({count} caracteres), como archivo.",
    "read_usage": "Responde a una foto con /leer y te leeré el texto que tiene.",
    "reading_off": "Aquí no puedo leer el texto de las imágenes.",
    "autoread_usage": "Usa /autoread on o /autoread off. Ahora: {state}.",
    "autoread_on": "Lectura automática activada: cuando una imagen sea sobre todo texto (un cartel, un menú, una captura), también lo leeré.",
    "autoread_off": "Lectura automática desactivada: responde a una imagen con /leer, o pulsa Leer texto, para que lea su texto.",
    "ask_how": "Para preguntar por una foto, responde a la foto o a mi descripción con tu pregunta.",
    "question_too_long": "Haz una pregunta más corta (como mucho {limit} caracteres).",
    "question_language_off": (
        "Aquí no puedo responder preguntas en este idioma ({language}); pregunta en inglés, por favor."
    ),
    "queued": "En cola: tu imagen es la número {position}. Este mensaje se convertirá en su descripción.",
    "busy": "Estoy muy ocupado ahora; vuelve a enviar la imagen en un minuto.",
    "busy_again": "Estoy muy ocupado ahora; vuelve a pulsar el botón en un minuto.",
    "busy_question": "Estoy muy ocupado ahora; vuelve a preguntar en un minuto.",
    "busy_read": "Estoy muy ocupado ahora; vuelve a pedir el texto en un minuto.",
    "too_many_queued": "Ya tienes varias imágenes en espera; espera sus descripciones antes de enviar más.",
    "timeout": "Describir esta imagen tardó demasiado; vuelve a enviarla más tarde.",
    "timeout_question": "Responder tardó demasiado; vuelve a preguntar más tarde.",
    "timeout_read": "Leer el texto tardó demasiado; vuelve a pedirlo más tarde.",
    "failed": "Lo siento, algo falló al describir esta imagen. Inténtalo de nuevo.",
    "failed_question": "Lo siento, algo falló al responder. Inténtalo de nuevo.",
    "failed_read": "Lo siento, algo falló al leer esta imagen. Inténtalo de nuevo.",
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
    "invalid.not_a_picture": f"Este archivo no es una imagen que pueda leer. Envía una foto, o un archivo {FORMATS}.",
    "invalid.pdf": "Esto es un documento PDF, no una imagen. Envía una foto.",
    "invalid.svg": "No puedo leer dibujos SVG. Envíalo como foto.",
    "invalid.heic": "Aquí no puedo leer imágenes HEIC. Envíala como foto.",
    "command.describe": "Describe la foto a la que respondes",
    "command.read": "Lee el texto de la foto a la que respondes",
    "command.auto": "on|off: describir cada foto del chat",
    "command.autoread": "on|off: leer las imágenes que son sobre todo texto",
    "command.lang": "Los idiomas de las descripciones",
    "command.help": "Qué hago y qué guardo",
    "command.detail": "Descripciones breves o detalladas",
    "detail_usage": "Usa /detalle corto o /detalle largo. Ahora: {state}.",
    "detail.short": "corto",
    "detail.long": "largo",
    "detail_short": "Aquí las descripciones serán breves: una frase por imagen.",
    "detail_long": "Aquí las descripciones serán detalladas: más sobre cada imagen.",
    "command.where": "Dónde está cada cosa en una foto",
    "where": "Dónde está cada cosa (automático)",
    "no_where": "No encontré nada que situar en esta imagen.",
    "where_usage": "Responde a una foto con /donde y te digo dónde está cada cosa.",
    "where_off": "Para decir dónde están las cosas hace falta el modelo de lectura (OCR_MODEL), que no está cargado aquí.",
    "command.forget": "Borrar lo que guardo de este chat",
    "forgotten": (
        "Hecho: borré los ajustes de este chat, lo que guardaba de sus imágenes ({pictures}: "
        "sus identificadores, descripciones y el texto que leí), y quién pidió mis respuestas "
        "({replies}). Los mensajes siguen en el chat: bórralos en Telegram si quieres que "
        "desaparezcan."
    ),
    "forgotten_nothing": "No guardo nada de este chat.",
}
