"""The executor's backend when the models run in the Ray Serve application.

The bot keeps its own queue, fairness and back-pressure (the executor); each batch it takes
goes out as one Serve request per picture, which Serve batches again on the replicas.
Picture bytes travel as they are and are decoded on the replica.

* A replica that dies mid-request: the request is sent again, and Serve routes it to a live
  replica (or the one it restarts), up to ``retries`` times.
* A cluster that can't be reached: the pictures get :class:`Busy` ("try again shortly"),
  and the next batch tries to reconnect, so the bot recovers when the cluster returns.

Importing this module imports ray, not torch.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import ray
from ray import serve
from ray.exceptions import RayError, RayTaskError

from .description import Description
from .errors import Busy, InferenceError, InvalidImage
from .questions import Question

__all__ = ["APP_NAME", "RayBackend"]

log = logging.getLogger(__name__)

# What `serve run --name captioning captioning.ray_serve:app` calls the application.
APP_NAME = "captioning"


class RayBackend:
    def __init__(
        self,
        address: str | None,
        *,
        app_name: str = APP_NAME,
        retries: int = 4,
        request_timeout_s: float = 120.0,
        reconnect_every_s: float = 5.0,
    ) -> None:
        self.address, self.app_name = address, app_name
        self.retries, self.request_timeout_s, self.reconnect_every_s = (
            retries,
            request_timeout_s,
            reconnect_every_s,
        )
        self.input_size = 224  # BLIP-2's, until the deployment says otherwise
        self._handle: Any = None
        self._last_attempt = 0.0
        self._lock = threading.Lock()

    # -- connection ----------------------------------------------------------------------

    def connect(self) -> bool:
        """Join the cluster and find the application; False (and logged) if it can't."""
        with self._lock:
            self._last_attempt = time.monotonic()
            try:
                if not ray.is_initialized():
                    ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
                handle = serve.get_app_handle(self.app_name)
                self.input_size = handle.input_size.remote().result(timeout_s=60)
            except Exception as exc:
                log.warning("Ray Serve application %r unreachable: %s", self.app_name, exc)
                self._handle = None
                return False
            self._handle = handle
            log.info("Connected to Ray Serve application %r", self.app_name)
            return True

    # -- the Backend protocol ------------------------------------------------------------

    def prepare(self, picture: bytes) -> bytes:
        return picture  # decoded on the replica

    def describe(self, pictures: list[bytes], *, detailed: bool = False) -> list[Description | Exception]:
        return self._call(pictures, "describe_detailed" if detailed else "describe")

    def answer(self, pictures: list[bytes], questions: list[Question]) -> list[Description | Exception]:
        asked = [(p, q.text, q.language) for p, q in zip(pictures, questions, strict=True)]
        return self._call(asked, "answer")

    def _call(self, pictures: list[Any], method: str) -> list[Description | Exception]:
        """One request per picture to the deployment's batched ``method``, with retries."""
        if self._handle is None and (
            time.monotonic() - self._last_attempt < self.reconnect_every_s or not self.connect()
        ):
            return [_busy() for _ in pictures]
        results: list[Description | Exception] = [_busy() for _ in pictures]
        waiting = dict(enumerate(pictures))
        for attempt in range(self.retries + 1):
            try:
                pending = {i: getattr(self._handle, method).remote(p) for i, p in waiting.items()}
            except Exception as exc:
                log.warning("Ray Serve unreachable: %s", exc)
                self._handle = None
                break
            waiting = {}
            for i, response in pending.items():
                try:
                    results[i] = _outcome(response.result(timeout_s=self.request_timeout_s))
                except RayTaskError as exc:  # the replica's code raised: the models failed
                    log.error("A replica failed on a picture: %s", exc)
                    results[i] = InferenceError("Something went wrong while describing this picture.")
                except (RayError, TimeoutError, ConnectionError) as exc:
                    # RayActorError and kin: the replica died mid-request. Send it again:
                    # Serve routes it to a live replica, or to the one it restarts.
                    log.warning(
                        "Replica lost mid-request (%s); sending the picture again", type(exc).__name__
                    )
                    waiting[i] = pictures[i]
            if not waiting:
                break
            if attempt < self.retries:
                time.sleep(min(0.5 * 2**attempt, 5.0))
        return results


def _outcome(result: dict[str, str]) -> Description | Exception:
    if "error" in result:
        return InvalidImage(result["error"], result.get("reason", "not_a_picture"))
    return Description(result["english"], result["spanish"])


def _busy() -> Busy:
    return Busy("The picture service is unreachable right now; please send the picture again in a minute.")
