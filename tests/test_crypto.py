from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from js2mail import crypto
from js2mail.errors import CryptoError

SEALER = crypto.Sealer({1: crypto.generate_key()})
PLACE = {"table": "mailboxes", "column": "secret", "row_id": "mbx_1"}


def test_envelope_layout_and_round_trip() -> None:
    env = SEALER.seal(b"hunter2", **PLACE)
    assert env[0] == crypto.VERSION
    assert int.from_bytes(env[1:5], "big") == 1
    assert len(env) == 1 + 4 + 12 + len(b"hunter2") + 16
    assert b"hunter2" not in env
    assert SEALER.open(env, **PLACE) == b"hunter2"


@settings(max_examples=200, deadline=None)
@given(plaintext=st.binary(max_size=64), data=st.data())
def test_flipping_any_bit_fails(plaintext: bytes, data: st.DataObject) -> None:
    env = bytearray(SEALER.seal(plaintext, **PLACE))
    index = data.draw(st.integers(0, len(env) - 1))
    bit = data.draw(st.integers(0, 7))
    env[index] ^= 1 << bit
    with pytest.raises(CryptoError):
        SEALER.open(bytes(env), **PLACE)


@pytest.mark.parametrize("other", [
    {"table": "webhook_endpoints", "column": "secret", "row_id": "mbx_1"},
    {"table": "mailboxes", "column": "payload", "row_id": "mbx_1"},
    {"table": "mailboxes", "column": "secret", "row_id": "mbx_2"},
])
def test_value_moved_to_another_place_fails(other: dict[str, str]) -> None:
    env = SEALER.seal(b"token", **PLACE)
    with pytest.raises(CryptoError):
        SEALER.open(env, **other)


def test_nonces_never_repeat() -> None:
    nonces = {SEALER.seal(b"same", **PLACE)[5:17] for _ in range(5000)}
    assert len(nonces) == 5000


def test_truncated_and_unknown_key_fail() -> None:
    env = SEALER.seal(b"x", **PLACE)
    with pytest.raises(CryptoError):
        SEALER.open(env[:10], **PLACE)
    relabelled = env[:1] + (7).to_bytes(4, "big") + env[5:]
    with pytest.raises(CryptoError, match="unknown data key"):
        SEALER.open(relabelled, **PLACE)


def test_rotation_keeps_old_values_readable() -> None:
    k1, k2 = crypto.generate_key(), crypto.generate_key()
    old = crypto.Sealer({1: k1}).seal(b"v", **PLACE)
    both = crypto.Sealer({1: k1, 2: k2})
    assert both.active_key_id == 2
    assert both.open(old, **PLACE) == b"v"
    assert both.key_id_of(both.seal(b"v", **PLACE)) == 2


def test_data_keys_need_the_right_master_key() -> None:
    master, other = crypto.generate_key(), crypto.generate_key()
    wrapped = crypto.wrap_data_key(master, 1, b"k" * 32)
    assert crypto.unwrap_data_key(master, 1, wrapped) == b"k" * 32
    with pytest.raises(CryptoError, match="wrong master key"):
        crypto.unwrap_data_key(other, 1, wrapped)


def test_key_file_is_0600_and_looser_is_refused(tmp_path: Path) -> None:
    key = crypto.create_master_key(tmp_path)
    path = tmp_path / "master.key"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert crypto.load_master_key(tmp_path, {}).key == key.key
    os.chmod(path, 0o644)
    with pytest.raises(CryptoError, match="mode 644"):
        crypto.load_master_key(tmp_path, {})


def test_master_key_source_order(tmp_path: Path) -> None:
    env_key, cred_key, file_key = (crypto.generate_key() for _ in range(3))
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / crypto.CREDENTIAL_NAME).write_text(base64.b64encode(cred_key).decode())
    (tmp_path / "master.key").write_text(base64.b64encode(file_key).decode())
    os.chmod(tmp_path / "master.key", 0o600)
    env = {"JS2MAIL_MASTER_KEY": base64.b64encode(env_key).decode(), "CREDENTIALS_DIRECTORY": str(creds)}
    assert crypto.load_master_key(tmp_path, env, use_keyring=False).source == "credentials"
    del env["CREDENTIALS_DIRECTORY"]
    assert crypto.load_master_key(tmp_path, env, use_keyring=False).source == "file"
    (tmp_path / "master.key").unlink()
    loaded = crypto.load_master_key(tmp_path, env, use_keyring=False)
    assert (loaded.source, loaded.key) == ("env", env_key)
    with pytest.raises(CryptoError, match="no master key"):
        crypto.load_master_key(tmp_path, {}, use_keyring=False)
    with pytest.raises(CryptoError, match="32 bytes"):
        crypto.load_master_key(tmp_path, {"JS2MAIL_MASTER_KEY": base64.b64encode(b"short").decode()}, use_keyring=False)
