"""Keyed pseudonyms: HMAC-SHA256 tokens and field-level Bloom filters (extracts.md §2)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache
from pathlib import Path

import numpy as np

from outcomes.pseudonymise.normalise import soundex

BLOOM_BITS = 512
BLOOM_BYTES = BLOOM_BITS // 8
BLOOM_HASHES = 15
MIN_KEY_BYTES = 32


class KeyFileError(ValueError):
    """The key file is missing, empty or too short."""


def load_key(path: str | Path) -> bytes:
    """The key is the file's bytes without surrounding white space; at least 32 bytes."""
    p = Path(path)
    try:
        key = p.read_bytes().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {p}: {exc.strerror}") from None
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"key file {p} holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key


class Pseudonymiser:
    """Tokens and Bloom filters under one key; memoised because names repeat a great deal."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise KeyFileError(f"key holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
        self._key = key
        self.token = lru_cache(maxsize=1_000_000)(self._token)
        self.bloom = lru_cache(maxsize=1_000_000)(self._bloom)
        self._bigram_bits = lru_cache(maxsize=100_000)(self._bigram_positions)

    def __repr__(self) -> str:  # never show the key
        return "Pseudonymiser(key=<hidden>)"

    def _hmac(self, message: str) -> bytes:
        return hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).digest()

    def _token(self, prefix: str, value: str) -> str:
        """`HMAC-SHA256(key, prefix + ":" + value)` as 64 lower-case hex digits."""
        return self._hmac(f"{prefix}:{value}").hex()

    def soundex_token(self, normalised_surname: str) -> str:
        return self.token("soundex", soundex(normalised_surname))

    def _bigram_positions(self, bigram: str) -> np.ndarray:
        h = self._hmac("bloom:" + bigram)
        h1 = int.from_bytes(h[:8], "big")
        h2 = int.from_bytes(h[8:16], "big")
        return np.array([(h1 + i * h2) % BLOOM_BITS for i in range(BLOOM_HASHES)], dtype=np.int64)

    def _bloom(self, normalised: str) -> str:
        """512-bit filter of the padded name's bigrams, bit p = bit 7 - p%8 of byte p//8, base64."""
        padded = f" {normalised} "
        bits = np.zeros(BLOOM_BITS, dtype=np.uint8)
        for i in range(len(padded) - 1):
            bits[self._bigram_bits(padded[i : i + 2])] = 1
        # np.packbits is big-endian within a byte: position p lands on bit 7 - p % 8.
        return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


def bloom_bits(encoded: str) -> np.ndarray:
    """A base64 Bloom filter as an array of 512 zeros and ones."""
    raw = base64.b64decode(encoded)
    if len(raw) != BLOOM_BYTES:
        raise ValueError(f"a Bloom filter has {BLOOM_BYTES} bytes, not {len(raw)}")
    return np.unpackbits(np.frombuffer(raw, dtype=np.uint8))


def dice(a: str, b: str) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two base64 Bloom filters."""
    x, y = bloom_bits(a), bloom_bits(b)
    total = int(x.sum()) + int(y.sum())
    return 2 * int((x & y).sum()) / total if total else 0.0
