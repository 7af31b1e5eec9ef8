"""``python -m captioning``: the command line, from a few photos to a whole library.

options.py     the flags; combinations that make no sense refused in one line
files.py       the files of a run, read when their batch comes; --skip-done's file
describing.py  the models a run needs, and one batch through them
alt_text.py    descriptions into the pictures: IPTC Alt Text in XMP (exiftool.py writes it)
progress.py    the progress bar, and Ctrl-C that waits for the batch in flight
output.py      text, --json, --jsonl, and the summary at the end
run.py         one run, from the flags to the exit status
"""

from .options import parse
from .run import STOPPED, run

__all__ = ["STOPPED", "parse", "run"]
