"""Encrypted design files: AES-256-GCM per share, the key wrapped to each recipient's X25519;
and the salts of design commitments, derived from the designer's key.

- A member's X25519 key pair is derived from its Ethereum (secp256k1) private key with
  HKDF-SHA256, so it needs no extra file and moves with the V3 keystore; the public half is
  published as the member's `encryptionKey` in the Consortium.
- The ciphertext blob is `nonce (12 bytes) || AES-256-GCM(file, aad = design id)` under a
  fresh random key.
- Each recipient gets an envelope (canonical JSON): an ephemeral X25519 public key, and
  the file key encrypted with AES-256-GCM under HKDF-SHA256(ECDH(ephemeral, recipient),
  salt = ephemeral_pub || recipient_pub, info = "cofab design key wrap v1" || design id),
  with the ciphertext's SHA-256 as associated data.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import rfc8785
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger.core.errors import InvalidInput, LedgerError

ENVELOPE_FORMAT = "cofab-key-envelope/1"
KEY_DERIVATION_SALT = b"cofab encryption key"
KEY_DERIVATION_INFO = b"x25519 v1"
COMMITMENT_SALT_SALT = b"cofab design commitment"
WRAP_INFO = b"cofab design key wrap v1"
NONCE_BYTES = 12


class DecryptionFailed(LedgerError):
    """A ciphertext or envelope was tampered with, or is not for this key."""

    status: ClassVar[int] = 409
    title: ClassVar[str] = "Decryption refused"


def encryption_key(secp256k1_private_key: bytes) -> X25519PrivateKey:
    """The member's X25519 private key, derived from its Ethereum private key."""
    seed = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=KEY_DERIVATION_SALT, info=KEY_DERIVATION_INFO
    ).derive(secp256k1_private_key)
    return X25519PrivateKey.from_private_bytes(seed)


def commitment_salt(secp256k1_private_key: bytes, *fields: bytes) -> bytes:
    """The salt of a design commitment, derived from the designer's key and the committed
    fields: unguessable to others, and re-derivable after a crash, so a mined commitment
    can always be opened by its designer."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=COMMITMENT_SALT_SALT, info=b"".join(fields)
    ).derive(secp256k1_private_key)


def public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes_raw()


def _kek(shared: bytes, ephemeral: bytes, recipient: bytes, design_id: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral + recipient,
        info=WRAP_INFO + design_id,
    ).derive(shared)


def encrypt_file(plaintext: bytes, design_id: bytes) -> tuple[bytes, bytes]:
    """(file key, ciphertext blob) under a fresh AES-256 key."""
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    return key, nonce + AESGCM(key).encrypt(nonce, plaintext, design_id)


def decrypt_file(key: bytes, blob: bytes, design_id: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise DecryptionFailed("the ciphertext is truncated")
    try:
        plaintext = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], design_id)
    except InvalidTag:
        raise DecryptionFailed("the ciphertext was tampered with: authentication failed") from None
    if hashlib.sha256(plaintext).digest() != design_id:
        raise DecryptionFailed("the decrypted file does not hash to the design id")
    return plaintext


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _unhex(value: Any, name: str, size: int | None = 32) -> bytes:
    try:
        raw = bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError:
        raise InvalidInput(f"envelope field {name} is not hex") from None
    if size is not None and len(raw) != size:
        raise InvalidInput(f"envelope field {name} must be {size} bytes")
    return raw


@dataclass(frozen=True)
class Envelope:
    """The file key of one share, wrapped to one recipient."""

    design_id: bytes
    recipient: str
    recipient_key: bytes
    ephemeral_key: bytes
    ciphertext_hash: bytes
    nonce: bytes
    wrapped_key: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ENVELOPE_FORMAT,
            "design_id": _hex(self.design_id),
            "recipient": self.recipient,
            "recipient_key": _hex(self.recipient_key),
            "ephemeral_key": _hex(self.ephemeral_key),
            "ciphertext_hash": _hex(self.ciphertext_hash),
            "nonce": _hex(self.nonce),
            "wrapped_key": _hex(self.wrapped_key),
        }

    def canonical(self) -> bytes:
        return bytes(rfc8785.dumps(self.to_json()))

    @classmethod
    def loads(cls, raw: bytes) -> Envelope:
        try:
            data = json.loads(raw)
            if data.get("format") != ENVELOPE_FORMAT:
                raise InvalidInput("not a cofab key envelope")
            return cls(
                design_id=_unhex(data["design_id"], "design_id"),
                recipient=str(data["recipient"]),
                recipient_key=_unhex(data["recipient_key"], "recipient_key"),
                ephemeral_key=_unhex(data["ephemeral_key"], "ephemeral_key"),
                ciphertext_hash=_unhex(data["ciphertext_hash"], "ciphertext_hash"),
                nonce=_unhex(data["nonce"], "nonce", NONCE_BYTES),
                wrapped_key=_unhex(data["wrapped_key"], "wrapped_key", None),
            )
        except (ValueError, KeyError, AttributeError, TypeError):
            raise InvalidInput("the key envelope is not valid JSON of the expected form") from None


def wrap_key(
    file_key: bytes, design_id: bytes, ciphertext_hash: bytes, recipient: str, recipient_key: bytes
) -> Envelope:
    """Wrap `file_key` to the X25519 public key `recipient_key` with a fresh ephemeral key."""
    if len(recipient_key) != 32 or recipient_key == b"\x00" * 32:
        raise InvalidInput(f"member {recipient} has no X25519 encryption key")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_pub = public_bytes(ephemeral)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_key))
    kek = _kek(shared, ephemeral_pub, recipient_key, design_id)
    nonce = os.urandom(NONCE_BYTES)
    wrapped = AESGCM(kek).encrypt(nonce, file_key, ciphertext_hash)
    return Envelope(
        design_id, recipient, recipient_key, ephemeral_pub, ciphertext_hash, nonce, wrapped
    )


def unwrap_key(envelope: Envelope, private_key: X25519PrivateKey) -> bytes:
    mine = public_bytes(private_key)
    if mine != envelope.recipient_key:
        raise DecryptionFailed("this share was wrapped to another encryption key than yours")
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(envelope.ephemeral_key))
    kek = _kek(shared, envelope.ephemeral_key, mine, envelope.design_id)
    try:
        return AESGCM(kek).decrypt(envelope.nonce, envelope.wrapped_key, envelope.ciphertext_hash)
    except InvalidTag:
        raise DecryptionFailed(
            "the key envelope was tampered with: authentication failed"
        ) from None
