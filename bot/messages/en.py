"""The bot's texts in English: the interface language of everyone without a catalog of their own.

Every catalog has the same keys and ``{placeholders}`` (a test checks). Plain text only, never
Markdown or HTML: a caption with a stray ``*`` or ``_`` must not break a message, and screen
readers read plain text best.
"""

FORMATS = "JPEG, PNG, WebP, HEIC, AVIF, GIF, BMP, TIFF"

# The commands' names in this language, where they differ from the action's own ("read").
COMMANDS: dict[str, str] = {}

MESSAGES: dict[str, str] = {
    # -- descriptions, answers, and their labels --------------------------------------
    "description": "Automatic description, may be wrong",
    "descriptions_of": "Automatic descriptions of {count} pictures, may be wrong:",
    "descriptions": "Automatic descriptions, may be wrong",
    "answer": "Answer",
    "answers_for": "Answers for {count} pictures:",
    "answers": "Answers",
    "album_item_failed": "(this one couldn't be described)",
    "album_item_unanswered": "(no answer for this one)",
    "no_description": "I couldn't describe this picture.",
    "no_answer": "I don't have an answer to that.",
    "more_not_shown": "(+{count} more not shown)",
    # -- buttons ----------------------------------------------------------------------
    "button_again": "More detail",
    "button_delete": "Delete",
    "button_read": "Read text",
    "button_translate": "Translate",
    "button_where": "Where things are",
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
        "can also reply to the photo itself, send the photo with your question as its "
        "caption, or just ask, without replying, soon after my answer. In a group, I answer replies to me that ask "
        'something ("what is he holding?", "describe the background"), not "thanks".\n\n'
        "Commands:\n"
        "/describe - reply to a photo with it to have it described\n"
        "/read - reply to a photo with it to hear the text in it (signs, menus, screenshots)\n"
        "/where - reply to a photo with it to hear where things are in it\n"
        "/auto on|off - describe every photo in this chat, or only when asked\n"
        "/autoread on|off - read out pictures that are mostly text without being asked\n"
        "/lang - the languages of the descriptions (/lang en es, say)\n"
        "/detail short|long - one sentence for each picture, or a paragraph\n"
        "/forget - delete everything I keep about this chat\n"
        "/help - this message\n\n"
        "In groups, only admins can change /auto, /lang and /detail, and use /forget. Telegram hides most group "
        "messages from bots: make me an admin (or turn my privacy mode off with "
        "@BotFather) so I can see every photo.\n\n"
        "Privacy: pictures are never stored. For 30 days I keep Telegram's ids of the "
        "pictures I answered and of who asked (so questions and buttons work), and the "
        "descriptions; the text I read from pictures, {read_hours} hours; each chat's "
        "settings, until changed. /forget deletes all of it for this chat. Descriptions "
        "are made by a machine and can be wrong."
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
    "lang_codes": "Send language codes, such as /lang {example}. I can describe in: {choices}.",
    "lang_set": "Descriptions here will be in: {languages}.",
    # -- reading the text in a picture ------------------------------------------------
    "text_found": "Text in the picture:",
    "texts_found": "Text in the pictures:",
    "see_above.read": "I read its text out just above.",
    "see_above.describe": "I described it just above.",
    "see_above.where": "I said where things are in it just above.",
    "slow_down": "You're asking faster than this chat can take: I'll answer you again in a minute.",
    "no_text": "No text found in this picture.",
    "text_file": "The whole text ({count} characters), as a file.",
    "translation_file": "The whole translation ({count} characters), as a file.",
    "read_usage": "Reply to a photo with /read and I'll read out the text in it.",
    "reading_off": "Reading the text in pictures isn't available here.",
    "autoread_usage": "Use /autoread on or /autoread off. Now: {state}.",
    "autoread_on": "Autoread is on: when a picture is mostly text (a sign, a menu, a screenshot), I read it out too.",
    "autoread_off": "Autoread is off: reply to a picture with /read, or press Read text, to have its text read.",
    # -- questions --------------------------------------------------------------------
    "ask_how": "To ask about a photo, reply to the photo or to my description of it with your question.",
    "question_too_long": "Please ask a shorter question (at most {limit} characters).",
    "question_language_off": "I can't take questions in this language ({language}) here; please ask in English.",
    # -- waiting, and what went wrong -------------------------------------------------
    "queued": "Queued: your picture is number {position} in line. This message will become its description.",
    "busy": "I'm very busy right now; please send the picture again in a minute.",
    "busy_again": "I'm very busy right now; please press the button again in a minute.",
    "busy_question": "I'm very busy right now; please ask again in a minute.",
    "busy_read": "I'm very busy right now; please ask for the text again in a minute.",
    "too_many_queued": (
        "You already have several pictures waiting; please wait for their descriptions before sending more."
    ),
    "timeout": "Describing this picture took too long; please send it again later.",
    "timeout_question": "Answering took too long; please ask again later.",
    "timeout_read": "Reading the text took too long; please ask again later.",
    "failed": "Sorry, something went wrong while describing this picture. Please try again.",
    "failed_question": "Sorry, something went wrong while answering. Please try again.",
    "failed_read": "Sorry, something went wrong while reading this picture. Please try again.",
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
    "invalid.not_a_picture": f"This file isn't a picture I can read. Send a photo, or a {FORMATS} file.",
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
    "command.detail": "Short or detailed descriptions",
    "detail_usage": "Use /detail short or /detail long. Now: {state}.",
    "detail.short": "short",
    "detail.long": "long",
    "detail_short": "Descriptions here will be short: one sentence for each picture.",
    "detail_long": "Descriptions here will be detailed: more about each picture.",
    "command.where": "Where things are in a photo",
    "where": "Where things are (automatic)",
    "no_where": "I couldn't find anything to place in this picture.",
    "where_usage": "Reply to a photo with /where and I'll say where things are in it.",
    "where_off": "Saying where things are needs the reading model (OCR_MODEL), which isn't loaded here.",
    "command.forget": "Delete what I keep about this chat",
    "forgotten": (
        "Done: I deleted this chat's settings, what I kept about its pictures ({pictures}: "
        "their ids, descriptions and any text I read), and who asked for my replies "
        "({replies}). The messages stay in the chat: delete them in Telegram if you want them gone."
    ),
    "forgotten_nothing": "I keep nothing about this chat.",
}
