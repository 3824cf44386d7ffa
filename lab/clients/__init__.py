"""Clients of the node: the reconnecting reference client and the plain JSON-RPC ones.

* :class:`ReconnectingClient` (``reconnecting.py``): WebSocket JSON-RPC with backoff, keepalive,
  resubscription and head backfill (every block once, in order), recording a history;
* :class:`RecordingHttp` (``http.py``): JSON-RPC over HTTP(S) with safe retries, recording;
* :class:`History` (``history.py``): what a client did and saw, as JSON-lines data;
* ``backoff.py``: full-jitter backoff; ``transport.py``: the connection seam and error kinds;
* ``rpc.py``: :class:`HttpRpc` and :class:`WsRpc`, plain clients without any of the above.
"""

from lab.clients.backoff import Backoff, BackoffPolicy
from lab.clients.history import History
from lab.clients.http import HttpFailed, RecordingHttp
from lab.clients.reconnecting import ClientFatal, ClientOptions, NotConnected, ReconnectingClient
from lab.clients.rpc import HttpRpc, RpcError, WsRpc
from lab.clients.transport import Closed, HandshakeFailed, websockets_connector

__all__ = [
    "Backoff", "BackoffPolicy", "ClientFatal", "ClientOptions", "Closed", "HandshakeFailed",
    "History", "HttpFailed", "HttpRpc", "NotConnected", "ReconnectingClient", "RecordingHttp",
    "RpcError", "WsRpc", "websockets_connector",
]
