"""Sign and verify step digests at libsecp256k1 speed.

Calls libsecp256k1 through coincurve's cffi bindings directly, skipping per-call object
construction. Verification is by public-key recovery, like eth-account's: a plain ECDSA
verify against a cached key would be cheaper but ignores v, and so would accept a
signature that eth-account (and ecrecover) attribute to someone else.
Results equal eth-account's (tests/test_step_signatures.py compares them
over thousands of random and malformed signatures); the one deliberate policy on top is
`is_low_s`, which the ingest applies to refuse malleable signatures, as OpenZeppelin's
ECDSA does on-chain.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from coincurve import PrivateKey
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from ledger.core.abi import address_from_bytes
from ledger.core.hashing import keccak, keccak_256

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2
_CTX = GLOBAL_CONTEXT.ctx
_UNCOMPRESSED = lib.SECP256K1_EC_UNCOMPRESSED
_local = threading.local()


def _sign_buffers() -> tuple[Any, Any, Any]:
    """Per-thread cffi buffers for signing, allocated once."""
    b = getattr(_local, "s", None)
    if b is None:
        b = (
            ffi.new("secp256k1_ecdsa_recoverable_signature *"),
            ffi.new("unsigned char[64]"),
            ffi.new("int *"),
        )
        _local.s = b
    return b


def _buffers() -> tuple[Any, Any, Any, Any]:
    """Per-thread cffi output buffers, allocated once."""
    b = getattr(_local, "b", None)
    if b is None:
        b = (
            ffi.new("secp256k1_ecdsa_recoverable_signature *"),
            ffi.new("secp256k1_pubkey *"),
            ffi.new("unsigned char[65]"),
            ffi.new("size_t *", 65),
        )
        _local.b = b
    return b


class Signer:
    """A private key that signs 32-byte digests as 65-byte r‖s‖v signatures (v = 27/28).

    libsecp256k1 runs without the GIL (cffi releases it), so threads sign in parallel:
    `sign_many` spreads a batch over two."""

    def __init__(self, private_key: bytes) -> None:
        key = PrivateKey(private_key)  # validates the scalar
        self._secret = key.secret
        self.address = address_of(key.public_key.format(False))

    def sign(self, digest: bytes) -> bytes:
        """RFC 6979 deterministic signature, low s (libsecp256k1 always produces low s)."""
        if len(digest) != 32:
            raise ValueError("a digest is 32 bytes")
        sig, out, recid = _sign_buffers()
        if not lib.secp256k1_ecdsa_sign_recoverable(
            _CTX, sig, digest, self._secret, ffi.NULL, ffi.NULL
        ):
            raise ValueError("signing failed")
        lib.secp256k1_ecdsa_recoverable_signature_serialize_compact(_CTX, out, recid, sig)
        compact: bytes = ffi.buffer(out, 64)[:]  # cffi buffers are untyped
        return compact + bytes((recid[0] + 27,))

    def sign_many(self, digests: Sequence[bytes]) -> list[bytes]:
        """`[sign(d) for d in digests]`, a large batch signed on two cores at once."""
        if len(digests) < PARALLEL_FROM or threading.current_thread().name.startswith(_NAME):
            return [self.sign(d) for d in digests]
        half = len(digests) // 2
        other = _pool().submit(lambda: [self.sign(d) for d in digests[half:]])
        mine = [self.sign(d) for d in digests[:half]]
        return mine + other.result()

    def sign_later(self, digests: Sequence[bytes]) -> Future[list[bytes]]:
        """`[sign(d) for d in digests]` on the signing thread, while the caller goes on;
        batches handed over are signed in turn."""
        return _pool().submit(lambda: [self.sign(d) for d in digests])


PARALLEL_FROM = 64
"""Batches this large are split between two threads (below it, the hand-off costs more
than it saves)."""
_POOL: list[ThreadPoolExecutor] = []
_NAME = "cofab-sign"


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        with _POOL_LOCK:
            if not _POOL:
                _POOL.append(ThreadPoolExecutor(1, thread_name_prefix=_NAME))
    return _POOL[0]


_POOL_LOCK = threading.Lock()


def address_of(uncompressed_pubkey: bytes) -> str:
    return address_from_bytes(keccak(uncompressed_pubkey[1:])[12:])


def is_low_s(signature: bytes) -> bool:
    return int.from_bytes(signature[32:64], "big") <= HALF_N


def is_canonical(signature: bytes) -> bool:
    """Low s and v in 0/1/27/28: the one form of a signature cofab accepts (no malleability)."""
    return len(signature) == 65 and signature[64] in (0, 1, 27, 28) and is_low_s(signature)


def _recover_into(digest: bytes, signature: bytes) -> Any:
    """Recover into this thread's output buffer; the buffer, or None if invalid.

    libsecp256k1 itself refuses r or s out of range; v is read as eth-account reads it:
    0/1, 27/28, or an EIP-155 value (35 + 2·chainId + parity).
    """
    if len(signature) != 65 or len(digest) != 32:
        return None
    v = signature[64]
    if v >= 35:
        v = (v - 35) % 2
    elif v >= 27:
        v -= 27
    if v > 1:
        return None
    try:
        rsig, pub, out, outlen = _local.b
    except AttributeError:
        rsig, pub, out, outlen = _buffers()
    if not lib.secp256k1_ecdsa_recoverable_signature_parse_compact(_CTX, rsig, signature, v):
        return None
    if not lib.secp256k1_ecdsa_recover(_CTX, pub, rsig, digest):
        return None
    outlen[0] = 65
    lib.secp256k1_ec_pubkey_serialize(_CTX, out, outlen, pub, _UNCOMPRESSED)
    return ffi.buffer(out, 65)


def recover(digest: bytes, signature: bytes) -> str | None:
    """The checksummed address that signed `digest`, or None for an invalid signature."""
    address = recover_address(digest, signature)
    return address_from_bytes(address) if address is not None else None


def recover_address(digest: bytes, signature: bytes) -> bytes | None:
    """The 20-byte address that signed `digest` (no checksum formatting: the hot path)."""
    buf = _recover_into(digest, signature)
    return keccak(buf[1:])[12:] if buf is not None else None


def recover_addresses(digests: Sequence[bytes], signatures: Sequence[bytes]) -> list[bytes | None]:
    """`[recover_address(d, s) for d, s in zip(digests, signatures)]` in one loop: the
    buffers and library functions bound once, not looked up per signature (a checker
    recovers thousands per call; tests/test_step_signatures.py compares the two).

    A key recovered twice in a row is recognised by libsecp256k1's own 64-byte form of
    it (the same bytes load as the same point, in this process), so its address is not
    serialised and hashed again."""
    try:
        rsig, pub, out, outlen = _local.b
    except AttributeError:
        rsig, pub, out, outlen = _buffers()
    parse, recover_key = (
        lib.secp256k1_ecdsa_recoverable_signature_parse_compact,
        lib.secp256k1_ecdsa_recover,
    )
    serialize, buffer, k256, ctx, form = (
        lib.secp256k1_ec_pubkey_serialize,
        ffi.buffer,
        keccak_256,
        _CTX,
        _UNCOMPRESSED,
    )
    found: list[bytes | None] = []
    add = found.append
    last_key, last = b"", b""  # the libsecp256k1 form of the last key recovered, its address
    for digest, signature in zip(digests, signatures, strict=True):
        if len(signature) != 65 or len(digest) != 32:
            add(None)
            continue
        v = signature[64]
        if v >= 35:
            v = (v - 35) % 2
        elif v >= 27:
            v -= 27
        if v > 1 or not parse(ctx, rsig, signature, v) or not recover_key(ctx, pub, rsig, digest):
            add(None)
            continue
        key = buffer(pub, 64)[:]
        if key != last_key:  # a batch is mostly one signer's: its address is derived once
            outlen[0] = 65
            serialize(ctx, out, outlen, pub, form)
            last_key, last = key, k256(buffer(out, 65)[1:]).digest()[12:]
        add(last)
    return found


def verify(digest: bytes, signature: bytes, address: str) -> bool:
    """Whether `signature` over `digest` recovers to `address` (exactly eth-account's answer)."""
    recovered = recover_address(digest, signature)
    return recovered is not None and recovered == bytes.fromhex(address[2:])
