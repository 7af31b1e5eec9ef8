"""python-telegram-bot's requests, made with aiohttp.

PTB lets any :class:`~telegram.request.BaseRequest` carry its Bot API calls. Its default,
httpx, spends more CPU per request than the bot spends on the photo: httpcore's pool
rescans every waiting request against every connection whenever one changes state. Under a
burst of photos that bookkeeping, not the bot, set the pace (bench/bot_throughput.py);
aiohttp's connector keeps it cheap.

Proxies: ``proxy`` (TELEGRAM_PROXY) carries every request, Bot API calls and file downloads
alike: ``http://`` and ``https://`` proxies through aiohttp itself, ``socks5://`` through
aiohttp-socks' connector. Without it, the standard ``HTTPS_PROXY``/``HTTP_PROXY`` and
``NO_PROXY`` variables decide, as they do for curl and pip. A proxy's URL may hold a password,
so errors name the proxy by host and port only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiohttp_socks
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = ["AiohttpRequest", "proxy_shown"]

# python-telegram-bot marks "no timeout given for this call" with instances of this class.
_DefaultValue = type(BaseRequest.DEFAULT_NONE)

# Bot API calls take tens of milliseconds over the internet, so 32 connections carry several
# hundred requests a second: far past Telegram's own limit of about 30 messages/s.
CONNECTIONS = 32


class AiohttpRequest(BaseRequest):
    def __init__(
        self,
        connections: int = CONNECTIONS,
        *,
        proxy: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        # A request may wait for a free connection under load; a short pool timeout would
        # turn that wait into a failed reply.
        pool_timeout: float = 30.0,
        media_write_timeout: float = 20.0,
    ) -> None:
        self._connections = connections
        self._timeouts = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": write_timeout,
            "pool": pool_timeout,
            "media_write": media_write_timeout,
        }
        self._session: aiohttp.ClientSession | None = None
        self._proxy = proxy
        # aiohttp takes http(s) proxies per request; a SOCKS proxy is the connector itself.
        self._http_proxy = proxy if proxy and not proxy.startswith("socks") else None

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts["read"]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self._proxy and self._http_proxy is None:
                # rdns: the proxy looks names up, where Telegram's may be blocked or spoofed.
                connector = aiohttp_socks.ProxyConnector.from_url(
                    self._proxy, limit=self._connections, rdns=True
                )
            else:
                connector = aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                # No TELEGRAM_PROXY: HTTPS_PROXY, HTTP_PROXY and NO_PROXY, if set, decide.
                trust_env=self._proxy is None,
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("AiohttpRequest is not initialized")
        has_files = bool(request_data and request_data.contains_files)
        read = self._pick(read_timeout, "read")
        write = self._pick(write_timeout, "media_write" if has_files else "write")
        connect = self._pick(connect_timeout, "connect")
        pool = self._pick(pool_timeout, "pool")
        # aiohttp has no separate write timeout: the whole exchange gets read + write.
        total = None if read is None or write is None else read + write + (connect or 0) + (pool or 0)
        timeout = aiohttp.ClientTimeout(total=total, connect=pool, sock_connect=connect, sock_read=read)
        try:
            async with self._session.request(
                method, url, data=_body(request_data), timeout=timeout, proxy=self._http_proxy
            ) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp_socks.ProxyTimeoutError) as err:
            raise TimedOut from err
        # The proxy's own errors first: aiohttp's would name the request's URL (the token).
        except aiohttp.ClientProxyConnectionError as err:
            raise NetworkError(
                f"the proxy at {err.host}:{err.port} can't be reached ({_reason(err.os_error)})"
            ) from err
        except aiohttp.ClientHttpProxyError as err:
            raise NetworkError(f"the proxy {self._shown()}refused: {err.status} {err.message}") from err
        except aiohttp_socks.ProxyConnectionError as err:
            raise NetworkError(f"the proxy {self._shown()}can't be reached ({err})") from err
        except aiohttp_socks.ProxyError as err:
            raise NetworkError(f"the proxy {self._shown()}refused: {err}") from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}: {err}") from err

    def _shown(self) -> str:
        return f"{proxy_shown(self._proxy)} " if self._proxy else ""

    def _pick(self, value: Any, name: str) -> float | None:
        return self._timeouts[name] if isinstance(value, _DefaultValue) else value


def proxy_shown(url: str) -> str:
    """A proxy's URL as logs may show it: scheme, host and port, never its user or password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _reason(error: OSError) -> str:
    return error.strerror or str(error) or type(error).__name__


def _body(request_data: RequestData | None) -> Any:
    if request_data is None:
        return None
    if not request_data.contains_files:
        return request_data.json_parameters
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime)
    return form
