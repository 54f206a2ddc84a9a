"""Endpoint API keys: made at random, stored only as a SHA-256 hash, compared in constant time.

A key is shown once when it is made; nothing here can turn a stored hash back into a key.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

PREFIX = "lathe-"


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    # The keys are 256 random bits: a plain hash is enough (no password stretching needed).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def matches(key: str, hashes: Iterable[str]) -> bool:
    given = key_hash(key)
    found = False
    for h in hashes:
        found |= hmac.compare_digest(given, h)  # every hash compared: the time says nothing about which
    return found
