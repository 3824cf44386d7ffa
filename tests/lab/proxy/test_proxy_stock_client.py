"""The stock ``toxiproxy-python`` 0.1.1 client works against the server, for what it supports.

That client keeps host and port as class attributes of ``APIConsumer`` (one server per process)
and uses blocking ``requests`` without timeouts, so these tests are synchronous, point the class
attributes at ``base_url`` with monkeypatch, and bound each socket operation themselves.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists


@pytest.fixture
def stock(base_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Toxiproxy]:
    url = urlsplit(base_url)
    monkeypatch.setattr(APIConsumer, "host", url.hostname)
    monkeypatch.setattr(APIConsumer, "port", url.port)
    server = Toxiproxy()
    yield server
    for name in list(server.proxies()):
        if name.startswith("stock_"):
            server.get_proxy(name).destroy()


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A blocking one-connection-at-a-time echo server in a thread."""
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                try:
                    while data := conn.recv(65536):
                        conn.sendall(data)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(srv.getsockname()[1])
    stop.set()
    thread.join(2)
    srv.close()


def _connect(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=5)


def test_running_and_version(stock: Toxiproxy) -> None:
    assert stock.running() is True
    assert b'"version"' in stock.version()


def test_create_get_destroy(stock: Toxiproxy, echo_port: int) -> None:
    proxy = stock.create(upstream=f"127.0.0.1:{echo_port}", name="stock_basic")
    assert proxy.name == "stock_basic" and proxy.enabled is True
    assert not proxy.listen.endswith(":0")  # the resolved address
    assert "stock_basic" in stock.proxies()
    with pytest.raises(ProxyExists):
        stock.create(upstream=f"127.0.0.1:{echo_port}", name="stock_basic")
    with _connect(proxy.listen) as s:
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
    assert stock.destroy(proxy) is True
    assert stock.get_proxy("stock_basic") is None


def test_toxics_roundtrip(stock: Toxiproxy, echo_port: int) -> None:
    proxy = stock.create(upstream=f"127.0.0.1:{echo_port}", name="stock_toxics")
    proxy.add_toxic(type="latency", attributes={"latency": 50})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="bw", toxicity=0.5,
                    attributes={"rate": 1000})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "bw"}
    assert toxics["bw"].stream == "upstream" and toxics["bw"].toxicity == 0.5
    assert toxics["latency_downstream"].attributes == {"latency": 50, "jitter": 0}
    assert proxy.get_toxic("bw").attributes["rate"] == 1000
    with pytest.raises(ProxyExists):  # toxiproxy-python maps every 409 to ProxyExists
        proxy.add_toxic(type="latency")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    assert proxy.destroy_toxic("bw") is True
    with pytest.raises(NotFound):
        proxy.destroy_toxic("bw")
    assert set(proxy.toxics()) == {"latency_downstream"}


def test_down_context_refuses_then_recovers(stock: Toxiproxy, echo_port: int) -> None:
    proxy = stock.create(upstream=f"127.0.0.1:{echo_port}", name="stock_down")
    with proxy.down():
        assert stock.get_proxy("stock_down").enabled is False
        with pytest.raises(ConnectionRefusedError):
            _connect(proxy.listen)
    assert stock.get_proxy("stock_down").enabled is True
    with _connect(proxy.listen) as s:
        s.sendall(b"x")
        assert s.recv(1) == b"x"


def test_reset_and_populate(stock: Toxiproxy, echo_port: int) -> None:
    created = stock.populate([
        {"name": "stock_pop", "upstream": f"127.0.0.1:{echo_port}", "listen": "127.0.0.1:0"},
    ])
    assert [p.name for p in created] == ["stock_pop"]
    proxy = stock.get_proxy("stock_pop")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    proxy.disable()
    assert stock.reset() is True
    again = stock.get_proxy("stock_pop")
    assert again.enabled is True and again.toxics() == {}
