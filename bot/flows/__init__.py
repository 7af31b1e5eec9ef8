"""What the bot does with each kind of update, one small module per conversation.

    flows/
      tasks.py       a task on a picture, one way: cache, queue, wait, reply, remember
      photos.py      a photo or picture file arrives
      describing.py  /describe, and "More detail"
      reading.py     /read, "Read text", text read out by itself, "Translate"
      asking.py      a question in reply (or as a caption)
      albums.py      an album's one answer; gathering.py: its photos, gathered
      buttons.py     who may press, "Delete", the /lang buttons
      commands.py    /help, /auto, /autoread, /lang, a group that becomes a supergroup

Which update goes where is :mod:`bot.actions` and :mod:`bot.app`'s to say.
"""
