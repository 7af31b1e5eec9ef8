"""Proxies on 127.0.0.1 for the bot to go through, each counting what it carried.

:class:`HttpProxy` forwards plain requests (``GET http://host/path``, as a client sends them
to a proxy) and tunnels ``CONNECT host:port`` for https, optionally over TLS itself, or
refuses everything with a status. :class:`Socks5Proxy` speaks SOCKS5 (no auth, or a user and
password). :class:`Front` sits in front of the Bot API stand-in, optionally terminating TLS,
and notes who connected: with the proxies' own outgoing ports, that shows whether anything
reached the stand-in without going through the proxy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import socket
import ssl
import struct
from dataclasses import dataclass, field
from pathlib import Path

import trustme

__all__ = ["Front", "HttpProxy", "Socks5Proxy", "closed_port", "tls_contexts"]


def closed_port() -> int:
    """A port nothing listens on (bound and released: connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tls_contexts(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server's TLS for localhost and 127.0.0.1, and the CA file a client trusts it with
    (SSL_CERT_FILE=<that file>, for a bot in another process)."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    ca_file = folder / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return context, ca_file


@dataclass
class _Server:
    """What every stand-in here shares: a listening socket, and the connections it serves."""

    tls: ssl.SSLContext | None = None
    port: int = 0
    # 0.0.0.0 for a client in a container, which reaches the host at its bridge's address.
    host: str = "127.0.0.1"
    _server: asyncio.Server | None = field(default=None, repr=False)
    _open: set[asyncio.StreamWriter] = field(default_factory=set, repr=False)

    async def start(self):
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):
                writer.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            await self.handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # a client that hangs up (a bot being stopped) is not the proxy's news
        finally:
            self._open.discard(writer)
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


@dataclass
class HttpProxy(_Server):
    """An HTTP proxy: ``requests`` lists each request line it carried ("GET http://...",
    "CONNECT host:port"), ``auth`` each Proxy-Authorization it was given (None without),
    ``outgoing`` the local port of each connection it opened onward. With ``refuse``, every
    request gets that status and goes nowhere."""

    refuse: int | None = None
    requests: list[str] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    outgoing: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def credentials(self) -> set[tuple[str, str] | None]:
        """The (user, password) pairs the requests came with."""
        pairs: set[tuple[str, str] | None] = set()
        for header in self.auth:
            if header is None or not header.startswith("Basic "):
                pairs.add(None)
                continue
            user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
            pairs.add((user, password))
        return pairs

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # a client keeps its connection to the proxy for the next request
            head = await reader.readuntil(b"\r\n\r\n")
            line, *lines = head.decode("latin-1").split("\r\n")
            headers = dict(h.split(": ", 1) for h in lines if ": " in h)
            self.requests.append(" ".join(line.split(" ")[:2]))
            self.auth.append(headers.get("Proxy-Authorization"))
            if self.refuse is not None:
                reason = {403: "Forbidden", 407: "Proxy Authentication Required"}.get(self.refuse, "No")
                writer.write(f"HTTP/1.1 {self.refuse} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
                continue
            method, target, _ = line.split(" ")
            if method == "CONNECT":
                await self._tunnel(target, reader, writer)
                return
            await self._forward(method, target, headers, reader, writer)
            return  # one request per connection: the answer says so

    async def _tunnel(self, target: str, reader, writer) -> None:
        host, _, port = target.rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        self.outgoing.add(up_writer.get_extra_info("sockname")[1])
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _relay(reader, writer, up_reader, up_writer)

    async def _forward(self, method: str, target: str, headers: dict[str, str], reader, writer) -> None:
        # Absolute form, "http://host:port/path": the onward request names the path only.
        rest = target.removeprefix("http://")
        authority, slash, path = rest.partition("/")
        host, _, port = authority.rpartition(":")
        body = await reader.readexactly(int(headers.get("Content-Length", 0)))
        if headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = await _read_chunked(reader)
            headers.pop("Transfer-Encoding")
            headers["Content-Length"] = str(len(body))
        up_reader, up_writer = await asyncio.open_connection(host or authority, int(port or 80))
        self.outgoing.add(up_writer.get_extra_info("sockname")[1])
        kept = {
            k: v
            for k, v in headers.items()
            if k.lower() not in ("proxy-authorization", "proxy-connection", "connection", "keep-alive")
        }
        kept["Connection"] = "close"
        onward = f"{method} {slash}{path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept.items())
        up_writer.write(onward.encode("latin-1") + b"\r\n" + body)
        await up_writer.drain()
        answer = await up_reader.read()  # until the server closes: its answer, whole
        up_writer.close()
        # The client must not keep this connection for another request: say it will close.
        head, _, rest = answer.partition(b"\r\n\r\n")
        lines = [h for h in head.split(b"\r\n") if not h.lower().startswith(b"connection:")]
        writer.write(b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + rest)
        await writer.drain()


@dataclass
class Socks5Proxy(_Server):
    """A SOCKS5 proxy (RFC 1928, with RFC 1929's user and password when ``user`` is set):
    ``targets`` lists each "host:port" it connected to, as the client named it (a name, not
    an address, when the client let the proxy look names up)."""

    user: str | None = None
    password: str | None = None
    targets: list[str] = field(default_factory=list)
    outgoing: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        login = f"{self.user}:{self.password}@" if self.user else ""
        return f"socks5://{login}127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        wanted = 2 if self.user else 0
        if wanted not in methods:
            writer.write(b"\x05\xff")
            return
        writer.write(bytes([5, wanted]))
        if self.user:
            _, size = await reader.readexactly(2)
            user = (await reader.readexactly(size)).decode()
            (size,) = await reader.readexactly(1)
            password = (await reader.readexactly(size)).decode()
            ok = (user, password) == (self.user, self.password)
            writer.write(b"\x01\x00" if ok else b"\x01\x01")
            if not ok:
                return
        _, _command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 3:
            (size,) = await reader.readexactly(1)
            host = (await reader.readexactly(size)).decode()
        else:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        self.targets.append(f"{host}:{port}")
        up_reader, up_writer = await asyncio.open_connection(host, port)
        self.outgoing.add(up_writer.get_extra_info("sockname")[1])
        writer.write(b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00")
        await writer.drain()
        await _relay(reader, writer, up_reader, up_writer)


@dataclass
class Front(_Server):
    """Relays every connection to ``to_port`` (the Bot API stand-in), after TLS if ``tls``;
    ``peers`` lists the port each connection came from."""

    to_port: int = 0
    peers: list[int] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{'https' if self.tls else 'http'}://localhost:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[1])
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.to_port)
        await _relay(reader, writer, up_reader, up_writer)


async def _relay(reader, writer, up_reader, up_writer) -> None:
    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(Exception):
                sink.close()

    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return body
