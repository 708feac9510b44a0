"""Secrets at rest: the master key, the data keys it wraps, and AES-256-GCM envelopes.

Envelope: ``version(1) | key_id(4, big-endian) | nonce(12) | ciphertext+tag(16)``. The associated
data is the envelope header plus ``table|column|row_id``, so a ciphertext copied to another row or
column, or relabelled with another key id, fails to open. Nothing ever falls back to plaintext.

The master key never touches the database. It only wraps *data keys* (rows of ``data_keys``);
rows are sealed with the newest data key. `crypto rotate` adds a data key and re-seals rows
without a schema change; a master-key change re-wraps only the data keys.

Master key sources, first found wins: ``$CREDENTIALS_DIRECTORY/js2mail-master-key`` (systemd
``LoadCredential``), the key file ``<home>/master.key`` (must be mode 0600), ``JS2MAIL_MASTER_KEY``
(base64 of 32 bytes), then the OS keyring when a real backend is usable.
"""

from __future__ import annotations

import base64
import os
import stat
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from js2mail.errors import CryptoError

VERSION = 1
HEADER = struct.Struct(">BI")
NONCE_BYTES = 12
KEY_BYTES = 32
CREDENTIAL_NAME = "js2mail-master-key"
KEYRING_SERVICE = "js2mail"


@dataclass(frozen=True)
class MasterKey:
    key: bytes
    source: str  # "credentials", "file", "env", "keyring"


def generate_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise CryptoError(f"{where}: master key is not valid base64", code="master_key_invalid") from exc
    if len(key) != KEY_BYTES:
        raise CryptoError(f"{where}: master key must be 32 bytes (base64)", code="master_key_invalid")
    return key


def _keyring_username(home: Path) -> str:
    return f"master-key:{home.resolve()}"


def keyring_usable() -> bool:
    """True when a real OS keyring answers; a headless box has only keyring's `fail` backend."""
    try:
        import keyring
        from keyring.backends import fail

        return not isinstance(keyring.get_keyring(), fail.Keyring)
    except Exception:  # noqa: BLE001 - any keyring trouble means "not usable"
        return False


def load_master_key(home: Path, environ: Mapping[str, str] | None = None, *, use_keyring: bool = True) -> MasterKey:
    env = os.environ if environ is None else environ
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / CREDENTIAL_NAME
        if cred.exists():
            return MasterKey(decode_key(cred.read_text(), str(cred)), "credentials")
    key_file = home / "master.key"
    if key_file.exists():
        mode = stat.S_IMODE(key_file.stat().st_mode)
        if mode & 0o077:
            raise CryptoError(
                f"{key_file} has mode {mode:o}; it must be readable by its owner only",
                code="master_key_insecure",
                hint=f"chmod 600 {key_file}",
            )
        return MasterKey(decode_key(key_file.read_text(), str(key_file)), "file")
    if env.get("JS2MAIL_MASTER_KEY"):
        return MasterKey(decode_key(env["JS2MAIL_MASTER_KEY"], "JS2MAIL_MASTER_KEY"), "env")
    if use_keyring and keyring_usable():
        import keyring

        stored = keyring.get_password(KEYRING_SERVICE, _keyring_username(home))
        if stored:
            return MasterKey(decode_key(stored, "OS keyring"), "keyring")
    raise CryptoError(
        "no master key found",
        code="master_key_missing",
        hint="run `js2mail init`, or set JS2MAIL_MASTER_KEY / $CREDENTIALS_DIRECTORY",
    )


def create_master_key(home: Path, *, to_keyring: bool = False) -> MasterKey:
    """Create a new master key in the key file (0600, created exclusively) or the OS keyring."""
    key = generate_key()
    if to_keyring:
        if not keyring_usable():
            raise CryptoError("no usable OS keyring on this machine", code="keyring_unavailable")
        import keyring

        keyring.set_password(KEYRING_SERVICE, _keyring_username(home), encode_key(key))
        return MasterKey(key, "keyring")
    path = home / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(encode_key(key) + "\n")
    return MasterKey(key, "file")


def _aad(header: bytes, table: str, column: str, row_id: str) -> bytes:
    return header + f"|{table}|{column}|{row_id}".encode()


def wrap_data_key(master: bytes, key_id: int, data_key: bytes) -> bytes:
    return _seal(AESGCM(master), 0, data_key, _aad(HEADER.pack(VERSION, 0), "data_keys", "wrapped", str(key_id)))


def unwrap_data_key(master: bytes, key_id: int, wrapped: bytes) -> bytes:
    try:
        return _open_with(master, wrapped, "data_keys", "wrapped", str(key_id))
    except CryptoError as exc:
        raise CryptoError(
            "the master key cannot open the data keys in this database (wrong master key?)",
            code="master_key_mismatch",
        ) from exc


def _seal(cipher: AESGCM, key_id: int, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return HEADER.pack(VERSION, key_id) + nonce + cipher.encrypt(nonce, plaintext, aad)


def parse_header(envelope: bytes) -> tuple[int, int]:
    if len(envelope) < HEADER.size + NONCE_BYTES + 16:
        raise CryptoError("encrypted value is truncated", code="envelope_invalid")
    version, key_id = HEADER.unpack_from(envelope)
    if version != VERSION:
        raise CryptoError(f"unknown envelope version {version}", code="envelope_invalid")
    return version, key_id


def _open_with(key: bytes, envelope: bytes, table: str, column: str, row_id: str) -> bytes:
    parse_header(envelope)
    header = envelope[: HEADER.size]
    nonce = envelope[HEADER.size : HEADER.size + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, envelope[HEADER.size + NONCE_BYTES :], _aad(header, table, column, row_id))
    except InvalidTag as exc:
        raise CryptoError(f"cannot decrypt {table}.{column} for {row_id}: tampered or wrong key", code="envelope_invalid") from exc


class Sealer:
    """Seals and opens values with the data keys; the newest key seals, any known key opens."""

    def __init__(self, data_keys: Mapping[int, bytes], reload: Callable[[], Mapping[int, bytes]] | None = None) -> None:
        if not data_keys:
            raise CryptoError("no data keys loaded", code="data_key_missing")
        self._reload = reload  # another process (`crypto rotate`) may add keys while we run
        self._use(data_keys)

    def _use(self, data_keys: Mapping[int, bytes]) -> None:
        self._keys = dict(data_keys)
        self.active_key_id = max(self._keys)
        self._cipher = AESGCM(self._keys[self.active_key_id])  # the key schedule, computed once

    def refresh(self) -> None:
        if self._reload is not None:
            self._use(self._reload())

    def seal(self, plaintext: bytes, *, table: str, column: str, row_id: str) -> bytes:
        header = HEADER.pack(VERSION, self.active_key_id)
        return _seal(self._cipher, self.active_key_id, plaintext, _aad(header, table, column, row_id))

    def open(self, envelope: bytes, *, table: str, column: str, row_id: str) -> bytes:
        _, key_id = parse_header(envelope)
        key = self._keys.get(key_id)
        if key is None and key_id > self.active_key_id:
            self.refresh()
            key = self._keys.get(key_id)
        if key is None:
            raise CryptoError(f"{table}.{column} for {row_id} uses unknown data key {key_id}", code="data_key_missing")
        return _open_with(key, envelope, table, column, row_id)

    def key_id_of(self, envelope: bytes) -> int:
        return parse_header(envelope)[1]

