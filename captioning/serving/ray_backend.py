"""The executor's backend when the models run in the Ray Serve application.

The bot keeps its own queue, fairness and back-pressure (the executor); each batch it takes
goes out as one Serve request per picture, ``run(kind, picture, task)``, which Serve batches
again on the replicas. Picture bytes travel as they are and are decoded on the replica. The
backend knows no task: a new task needs nothing here.

* **One deadline per batch** (``REQUEST_TIMEOUT_S``): retries after a lost replica happen
  within it, so nobody waits five timeouts.
* A replica that dies mid-request: the request is sent again, and Serve routes it to a live
  replica (or the one it restarts), up to ``retries`` times.
* A cluster or application that can't be reached: the pictures get :class:`Busy` ("try again
  shortly") at once, and a later batch tries to reconnect, so the bot recovers by itself.
  ``connected`` says which it is, for ``/healthz``. An application that goes away once
  connected (deleted, or failed) is the same: Serve's handle says so at once, not after the
  deadline. Serve's own queue being full (``max_queued_requests``) is Busy too.
* A cluster that wants a token (``RAY_AUTH_MODE=token``, Ray 2.52 and later): ``auth_token``
  is the one the bot joins with (its ``RAY_AUTH_TOKEN`` setting).

Importing this module imports ray, not torch.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import ray
from ray import serve
from ray.exceptions import RayError, RayTaskError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

from ..capabilities import Capabilities
from ..errors import Busy, InferenceError, InvalidImage, RequestTimeout, first_line

__all__ = ["APP_NAME", "FAILED", "RayBackend"]

log = logging.getLogger(__name__)

# What `serve run --name captioning captioning.serving.ray_serve:app` calls the application.
APP_NAME = "captioning"
# The reason a replica gives for a picture the models failed on, alone (after its batch was
# split and retried there): the client raises InferenceError for it, as the executor would.
FAILED = "inference"
# What the bot assumes until the application says otherwise: BLIP-2's kinds and size,
# English only, no reading. Pictures sent meanwhile are answered "busy".
UNKNOWN = Capabilities(sizes={"describe": 224, "describe_detailed": 224, "answer": 224, "translate": 0})


class RayBackend:
    def __init__(
        self,
        address: str | None,
        *,
        app_name: str = APP_NAME,
        auth_token: str | None = None,
        retries: int = 4,
        batch_timeout_s: float = 120.0,
        reconnect_every_s: float = 5.0,
        connect_timeout_s: float = 30.0,
    ) -> None:
        self.address, self.app_name, self.auth_token = address, app_name, auth_token
        self.retries, self.batch_timeout_s = retries, batch_timeout_s
        self.reconnect_every_s, self.connect_timeout_s = reconnect_every_s, connect_timeout_s
        self.capabilities = UNKNOWN
        self._handle: Any = None
        self._last_attempt = 0.0
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._handle is not None

    def problem(self) -> str | None:
        """What /healthz says of the models: None while the application can be reached."""
        return None if self.connected else "the Ray Serve application can't be reached"

    def warm_up(self) -> float:
        return 0.0  # the replicas warm themselves up

    # -- connection ----------------------------------------------------------------------

    def connect(self) -> bool:
        """Join the cluster and find the application; False (and logged) if it can't."""
        with self._lock:
            self._last_attempt = time.monotonic()
            try:
                if not ray.is_initialized():
                    if self.auth_token:
                        _use_token(self.auth_token)
                    ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
                handle = serve.get_app_handle(self.app_name)
                info = handle.info.remote().result(timeout_s=self.connect_timeout_s)
            except Exception as exc:
                log.warning("Ray Serve application %r unreachable: %s", self.app_name, first_line(exc, 300))
                self._handle = None
                return False
            self.capabilities = Capabilities.from_dict(info)
            self._handle = handle
            log.info("Connected to Ray Serve application %r", self.app_name)
            return True

    # -- the Backend protocol ------------------------------------------------------------

    def prepare(self, picture: bytes | bytearray | None, task: Any = None) -> bytes | bytearray | None:
        return picture  # decoded on the replica

    def run(self, kind: str, pictures: list[bytes], tasks: list[Any]) -> list[Any]:
        """One request per picture to the deployment's batched ``run``, within one deadline."""
        if self._handle is None and (
            time.monotonic() - self._last_attempt < self.reconnect_every_s or not self.connect()
        ):
            return [_busy() for _ in pictures]
        deadline = time.monotonic() + self.batch_timeout_s
        results: list[Any] = [_busy() for _ in pictures]
        waiting = list(range(len(pictures)))
        for attempt in range(self.retries + 1):
            try:
                pending = {i: self._handle.run.remote((kind, pictures[i], tasks[i])) for i in waiting}
            except Exception as exc:
                log.warning("Ray Serve unreachable: %s", first_line(exc, 300))
                self._handle = None
                return results
            waiting = self._collect(pending, deadline, results)
            if not waiting or self._handle is None:
                break
            pause = min(0.5 * 2**attempt, 5.0, max(0.0, deadline - time.monotonic()))
            if attempt < self.retries and pause > 0:
                time.sleep(pause)
        if waiting and self._handle is not None:  # lost after every retry: reconnect next batch
            log.warning(
                "Ray Serve lost %d picture(s) after %d tries; reconnecting", len(waiting), self.retries + 1
            )
            self._handle = None
        return results

    def _collect(self, pending: dict[int, Any], deadline: float, results: list[Any]) -> list[int]:
        """Each response's outcome into ``results``; the pictures to send again (a lost replica)."""
        again = []
        for i, response in pending.items():
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                results[i] = _outcome(response.result(timeout_s=remaining))
            except RayTaskError as exc:  # the replica's code raised: the models failed
                log.error("A replica failed on a picture: %s", first_line(exc, 300))
                results[i] = InferenceError("Something went wrong while describing this picture.")
            except TimeoutError:
                results[i] = RequestTimeout("Describing this picture took too long; please try again later.")
            except DeploymentUnavailableError as exc:  # deleted or failed: reconnect later
                if self._handle is not None:
                    log.warning("Ray Serve application unavailable: %s", first_line(exc, 300))
                self._handle = None
                results[i] = _busy()
            except BackPressureError:
                results[i] = _busy()
            except (RayError, ConnectionError) as exc:
                # RayActorError and kin: the replica died mid-request. Send it again: Serve
                # routes it to a live replica, or to the one it restarts.
                log.warning("Replica lost mid-request (%s); sending the picture again", type(exc).__name__)
                again.append(i)
        return again


def _use_token(token: str) -> None:
    """Token authentication for this process, as ``RAY_AUTH_MODE=token RAY_AUTH_TOKEN=...`` in
    its environment would give it. Ray reads its configuration when it is imported (this module
    imports it), so the configuration is read again, as ``ray.init`` itself does when it turns
    token authentication on for a cluster it starts."""
    # Compiled; its stubs leave these two out.
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _outcome(result: Any) -> Any:
    if isinstance(result, dict) and "error" in result:
        if result.get("reason") == FAILED:
            return InferenceError(result["error"])
        return InvalidImage(result["error"], result.get("reason", "not_a_picture"))
    return result


def _busy() -> Busy:
    return Busy("The picture service is unreachable right now; please send the picture again in a minute.")
