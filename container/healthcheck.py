"""The image's HEALTHCHECK: exit 0 when the bot's /healthz says 200, else 1 with its lines.

/healthz (bot/health.py) names each part that is not well: the models still loading, a locked
database, polling stopped. The lines land in `docker inspect`'s health log.
"""

import os
import sys
import urllib.error
import urllib.request

port = os.environ.get("METRICS_PORT")
if not port:
    sys.exit("METRICS_PORT is not set, so the bot serves no /healthz; set it (the image sets 9100).")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=8) as answer:
        print(answer.read().decode(), end="")
except urllib.error.HTTPError as exc:
    sys.exit(exc.read().decode())
except OSError as exc:
    sys.exit(f"/healthz on port {port} can't be reached: {exc}")
