"""Seeds: every random draw in the proxy comes from a generator derived from the server seed.

A link's generator depends only on (server seed, proxy name, connection ordinal, direction, toxic
name), never on timing, so the same seed and the same sequence of connections replay the same
toxicity draws, jitter and slice sizes.
"""

from __future__ import annotations

import hashlib
import random
import secrets


def new_seed() -> int:
    """A fresh random seed (printed by the server so a run can be replayed)."""
    return secrets.randbits(63)


def derive(*parts: object) -> int:
    """A 64-bit seed from ``parts`` (stable across runs and Python versions)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def generator(*parts: object) -> random.Random:
    """A ``random.Random`` seeded with :func:`derive` of ``parts``."""
    return random.Random(derive(*parts))
