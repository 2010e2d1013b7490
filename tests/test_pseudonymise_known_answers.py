"""Known answers for normalisation, Soundex, tokens and Bloom filters (extracts.md §2).

Tokens and filters are checked against a second, deliberately plain implementation written
here from the spec's words, not against the package's own code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from outcomes.pseudonymise import Pseudonymiser, dice, normalise_name, postcode_district, soundex
from outcomes.pseudonymise.keyed import KeyFileError, load_key

KEY = b"a test key that is long enough for HMAC use"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("John", "JOHN"),
        ("  zoë  ", "ZOE"),
        ("O'Brien-Smythe", "O BRIEN SMYTHE"),
        ("Ångström", "ANGSTROM"),
        ("Mary  Ann", "MARY ANN"),
        ("Łukasz", "UKASZ"),  # Ł has no decomposition: not A–Z, becomes a space, trimmed
        ("123", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_name(raw, expected):
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("ROBERT", "R163"),
        ("RUPERT", "R163"),
        ("PFISTER", "P236"),
        ("TYMCZAK", "T522"),
        ("ASHCRAFT", "A261"),
        ("ASHCROFT", "A261"),
        ("TUTTLE", "T340"),
        ("HONEYMAN", "H555"),
        ("LEE", "L000"),
        ("O BRIEN", "O165"),  # spaces removed first
        ("JACKSON", "J250"),
        ("WASHINGTON", "W252"),
    ],
)
def test_soundex(name, code):
    assert soundex(name) == code


def _plain_token(message: str) -> str:
    return hmac.new(KEY, message.encode(), hashlib.sha256).hexdigest()


def _plain_bloom(name: str) -> str:
    padded = " " + name + " "
    bits = [0] * 512
    for i in range(len(padded) - 1):
        h = hmac.new(KEY, ("bloom:" + padded[i : i + 2]).encode(), hashlib.sha256).digest()
        h1, h2 = int.from_bytes(h[0:8], "big"), int.from_bytes(h[8:16], "big")
        for k in range(15):
            bits[(h1 + k * h2) % 512] = 1
    out = bytearray(64)
    for p, b in enumerate(bits):
        if b:
            out[p // 8] |= 1 << (7 - p % 8)
    return base64.b64encode(bytes(out)).decode()


def test_tokens_are_hmac_sha256_hex():
    p = Pseudonymiser(KEY)
    assert p.token("forename", "JOHN") == _plain_token("forename:JOHN")
    assert p.token("surname", "SMITH") == _plain_token("surname:SMITH")
    assert p.soundex_token("PFISTER") == _plain_token("soundex:P236")
    assert len(p.token("forename", "JOHN")) == 64
    assert p.token("forename", "JOHN") != p.token("surname", "JOHN")


@pytest.mark.parametrize("name", ["JO", "JOHN", "MARY ANN", "CHRISTOPHER", "A"])
def test_bloom_matches_plain_implementation(name):
    encoded = Pseudonymiser(KEY).bloom(name)
    assert encoded == _plain_bloom(name)
    assert len(base64.b64decode(encoded)) == 64


def test_bloom_bit_order_is_msb_first():
    """Bit p is bit 7 - p % 8 of byte p // 8: check one bigram's first position directly."""
    h = hmac.new(KEY, b"bloom: J", hashlib.sha256).digest()
    p0 = int.from_bytes(h[:8], "big") % 512
    raw = base64.b64decode(Pseudonymiser(KEY).bloom("J"))
    assert raw[p0 // 8] & (1 << (7 - p0 % 8))


def test_dice_of_typo_well_above_different_names():
    p = Pseudonymiser(KEY)
    typo_pairs = [("CATHERINE", "CATHERNE"), ("JONATHAN", "JONATHON"), ("WILLIAMS", "WILLAIMS"), ("SMITH", "SMYTH")]
    different = [("CATHERINE", "MICHAEL"), ("JONATHAN", "SARAH"), ("WILLIAMS", "PATEL"), ("SMITH", "JONES")]
    typo_scores = [dice(p.bloom(a), p.bloom(b)) for a, b in typo_pairs]
    other_scores = [dice(p.bloom(a), p.bloom(b)) for a, b in different]
    assert min(typo_scores) > 0.6
    assert max(other_scores) < 0.45
    assert min(typo_scores) - max(other_scores) > 0.25
    assert dice(p.bloom("SMITH"), p.bloom("SMITH")) == 1.0


@pytest.mark.parametrize(
    ("raw", "district"),
    [
        ("me14 1xx", "ME14"),
        ("SW1A 1AA", "SW1A"),
        ("SW1A1AA", "SW1A"),
        ("E1 6AN", "E1"),
        ("ME14", "ME14"),
        ("not a postcode", None),
        ("", None),
        (None, None),
    ],
)
def test_postcode_district(raw, district):
    assert postcode_district(raw) == district


def test_key_file_rules(tmp_path):
    short = tmp_path / "short.key"
    short.write_bytes(b"too short\n")
    with pytest.raises(KeyFileError, match="at least 32 are needed"):
        load_key(short)
    with pytest.raises(KeyFileError, match="cannot read"):
        load_key(tmp_path / "absent.key")
    good = tmp_path / "good.key"
    good.write_bytes(KEY + b"\n")
    assert load_key(good) == KEY
    assert "hidden" in repr(Pseudonymiser(KEY)) and KEY.decode() not in repr(Pseudonymiser(KEY))
