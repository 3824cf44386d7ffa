"""Whole proxies on the in-memory network, for tests on the virtual clock.

::

    @virtual_time
    async def test_something() -> None:
        async with VirtualLab() as lab:
            proxy = await lab.proxy("p", await lab.echo())
            await lab.add(proxy, {"type": "latency", "attributes": {"latency": 100}})
            reader, writer = await lab.connect(proxy)
            ...

The proxies are real (``ProxyCollection``, ``Proxy``, ``Connection``, links and toxics); only the
sockets are ``memnet`` transports and the API is called in-process instead of over HTTP.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from memnet import MemoryNetwork
from proxy_helpers import echo_handler
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from lab.proxy.proxy import Proxy
from lab.proxy.proxy_collection import ProxyCollection
from lab.proxy.toxic_collection import ToxicWrapper


class VirtualLab:
    """A ``ProxyCollection`` on a ``MemoryNetwork``; ``now()`` is the loop clock."""

    def __init__(self, seed: int = 1234, uvloop_accept: bool = False) -> None:
        self.net = MemoryNetwork(uvloop_accept=uvloop_accept)
        self.collection = ProxyCollection(seed, network=self.net)
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> VirtualLab:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.collection.close()
        for writer in self._writers:
            writer.transport.abort()
        await asyncio.sleep(0)

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    async def echo(self) -> str:
        """An echo upstream; returns its ``host:port``."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            await echo_handler(reader, writer)

        return await self.net.start_server(handler)

    async def sink(self, total: int) -> tuple[str, list[tuple[float, int]], asyncio.Future[bytes]]:
        """An upstream that records (loop time, bytes so far) at each read until ``total``;
        returns its ``host:port``, those arrivals, and a future of all the bytes it read."""
        arrivals: list[tuple[float, int]] = []
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            got = bytearray()
            while len(got) < total:
                data = await reader.read(1 << 20)
                if not data:
                    break
                got += data
                arrivals.append((self.now(), len(got)))
            done.set_result(bytes(got))
            writer.close()

        return await self.net.start_server(handler), arrivals, done

    async def proxy(self, name: str, upstream: str, **fields: Any) -> Proxy:
        body = {"name": name, "upstream": upstream, "listen": "127.0.0.1:0", **fields}
        return await self.collection.create(body)

    async def add(self, proxy: Proxy, body: dict[str, Any]) -> ToxicWrapper:
        """POST /proxies/{p}/toxics, in-process."""
        return await proxy.toxics.add(body)

    async def connect(self, proxy: Proxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A client connection through ``proxy``."""
        reader, writer = await self.net.open_connection(proxy.listen)
        self._writers.append(writer)
        return reader, writer

    def activations(self, **labels: str) -> float:
        """``dubhe_proxy_toxic_activations_total`` summed over the series matching ``labels``."""
        total = 0.0
        for metric in self.collection.metrics.registry.collect():
            for sample in metric.samples:
                if sample.name == "dubhe_proxy_toxic_activations_total" and all(
                        sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def events(self, kind: str | None = None, proxy: str | None = None) -> list[dict[str, Any]]:
        """The event log, optionally only events of one kind and/or one proxy."""
        return [e for e in self.collection.events.since(0)
                if (kind is None or e["event"] == kind)
                and (proxy is None or e.get("proxy") == proxy)]


class WsEnd:
    """One end of a WebSocket over memnet streams, driven by websockets' sans-I/O protocol."""

    def __init__(self, proto: ClientProtocol | ServerProtocol, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proto = proto
        self.reader = reader
        self.writer = writer
        self._pending: list[Any] = []

    def flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                self.writer.write(data)
            elif self.writer.can_write_eof():
                self.writer.write_eof()  # b"" is the protocol's half-close

    async def event(self, limit_s: float = 30) -> Any:
        """The next event (``Request``, ``Response`` or ``Frame``), or ``None`` once closed."""
        while not self._pending:
            self._pending.extend(self.proto.events_received())
            if self._pending:
                break
            data = await asyncio.wait_for(self.reader.read(65536), limit_s)
            if data:
                self.proto.receive_data(data)
            else:
                self.proto.receive_eof()
                self._pending.extend(self.proto.events_received())
                self.flush()
                if not self._pending:
                    return None
            self.flush()
        return self._pending.pop(0)

    async def text(self, limit_s: float = 30) -> str:
        """The next text message (control frames are skipped)."""
        while True:
            event = await self.event(limit_s)
            assert isinstance(event, Frame), event
            if event.opcode is Opcode.TEXT:
                return event.data.decode()

    def send(self, text: str) -> None:
        self.proto.send_text(text.encode())
        self.flush()


async def ws_connect(lab: VirtualLab, proxy: Proxy) -> WsEnd:
    """A WebSocket client through ``proxy``, handshake done."""
    reader, writer = await lab.connect(proxy)
    end = WsEnd(ClientProtocol(parse_uri(f"ws://{proxy.listen}/")), reader, writer)
    assert isinstance(end.proto, ClientProtocol)
    end.proto.send_request(end.proto.connect())
    end.flush()
    response = await end.event()
    assert isinstance(response, Response) and response.status_code == 101
    return end


async def ws_echo(lab: VirtualLab, closes: list[int | None] | None = None) -> str:
    """A WebSocket echo upstream ("burst" answers 1..6); close codes it saw go to ``closes``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        end = WsEnd(ServerProtocol(), reader, writer)
        assert isinstance(end.proto, ServerProtocol)
        request = await end.event()
        assert isinstance(request, Request)
        end.proto.send_response(end.proto.accept(request))
        end.flush()
        while (event := await end.event(3600)) is not None:
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                if event.data == b"burst":
                    for i in range(1, 7):
                        end.send(str(i))
                else:
                    end.send(event.data.decode())
        if closes is not None:
            closes.append(end.proto.close_code)
        writer.close()

    return await lab.net.start_server(handler)
