"""``/metrics`` (Prometheus text) and ``/healthz`` on a local port, when METRICS_PORT is set.

A small WSGI app in a daemon thread. ``/healthz`` reports each part of the bot that can die,
one line each: the way updates come in (polling, or the webhook server), the models (the
executor's thread, or the Ray backend), and the database. It answers 200 when every part is
well, and 503 naming the parts that aren't (the models still loading, a locked database),
so a supervisor or a load balancer never sees a bot that looks healthy and answers nobody.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

__all__ = ["HealthServer"]

# part -> None when it is well, else a few words on what is wrong
Parts = Callable[[], dict[str, str | None]]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: not news
        pass


class _Joined(CollectorRegistry):
    """The metrics of every registry in ``sources``, which may be added to later (the
    executor's, once it exists)."""

    def __init__(self, sources: list[CollectorRegistry]) -> None:
        super().__init__(auto_describe=False)
        self._sources = sources

    def collect(self):
        for registry in self._sources:
            yield from registry.collect()


class HealthServer:
    def __init__(self, host: str, port: int, parts: Parts) -> None:
        self.registries: list[CollectorRegistry] = []
        self._metrics = make_wsgi_app(_Joined(self.registries))
        self._parts = parts
        self._server: WSGIServer = make_server(host, port, self._app, handler_class=_Quiet)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            parts = self._parts()
            ok = all(problem is None for problem in parts.values())
            body = "".join(f"{name}: {problem or 'ok'}\n" for name, problem in parts.items())
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [body.encode()]
        if path == "/metrics":
            return self._metrics(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
