"""Dubhe Channel Lab: real nginx, mock L1 chains and a Toxiproxy-compatible fault proxy around the
node; Locust WebSocket swarms; result files for reports.

``lab`` may import ``node.core`` and ``node.rpc`` only (import-linter enforces it).
"""
