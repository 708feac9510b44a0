from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from js2mail import apikeys


def test_generated_key_has_the_documented_format() -> None:
    key, parsed = apikeys.generate()
    assert re.fullmatch(r"js2_live_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}", key)
    assert apikeys.parse(key) == parsed
    assert apikeys.hash_secret(parsed.secret) == apikeys.hash_secret(key.rsplit("_", 1)[1])
    assert apikeys.hash_secret(parsed.secret[:-1] + "x") != apikeys.hash_secret(parsed.secret)


def test_keys_are_unique() -> None:
    assert len({apikeys.generate()[0] for _ in range(2000)}) == 2000


@given(st.text(max_size=80))
def test_nothing_outside_the_format_parses(text: str) -> None:
    if not re.fullmatch(r"js2_live_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}", text):
        assert apikeys.parse(text) is None


def test_near_misses_do_not_parse() -> None:
    key, _ = apikeys.generate()
    for bad in (key + "x", key[:-1], key.replace("live", "test"), key + "\n", " " + key, key.replace("_", "-")):
        assert apikeys.parse(bad) is None


def test_header_sources() -> None:
    assert apikeys.from_headers("k1", "Bearer k2") == "k1"
    assert apikeys.from_headers(None, "Bearer k2") == "k2"
    assert apikeys.from_headers(None, "bearer   k2 ") == "k2"
    assert apikeys.from_headers(None, "Basic abc") is None
    assert apikeys.from_headers(None, None) is None
