"""Typed async JSON-RPC clients (HTTP and WebSocket) built on node.rpc's codec."""
