"""Mempool admission and block building over the chain store (no networking)."""
