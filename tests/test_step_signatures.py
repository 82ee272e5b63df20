"""The fast signing path equals eth-account, over thousands of random and malformed inputs."""

from __future__ import annotations

import random
import threading

import pytest
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from ledger.steps import signatures as fast
from ledger.steps.record import BIZ_STEPS, Domain, Step, typed_data

N = fast.SECP256K1_N
CASES = 2000


def reference_recover(step: Step, domain: Domain, signature: bytes) -> str | None:
    try:
        return Account.recover_message(
            encode_typed_data(full_message=typed_data(step, domain)), signature=signature
        )
    except Exception:  # noqa: BLE001 - eth-account raises several types for bad signatures
        return None


def random_step(rng: random.Random, member: str) -> Step:
    return Step(
        job_id=rng.randrange(2**256),
        split_id=rng.randrange(2**16),
        seq=rng.randrange(2**64),
        prev_hash=rng.randbytes(32),
        biz_step=rng.choice(sorted(BIZ_STEPS)),
        payload_hash=rng.randbytes(32),
        evidence_hash=rng.choice([bytes(32), rng.randbytes(32)]),
        time=rng.randrange(2**64),
        member=member,
    )


@pytest.fixture(scope="module")
def rng() -> random.Random:
    return random.Random(20261122)


@pytest.fixture(scope="module")
def keys(rng: random.Random) -> list:
    return [Account.from_key(rng.randbytes(32)) for _ in range(8)]


def test_digest_and_signature_equal_eth_account(rng: random.Random, keys: list) -> None:
    for i in range(CASES):
        acct = keys[i % len(keys)]
        domain = Domain(
            rng.choice([1, 31337, 2018, rng.randrange(2**64)]), "0x" + rng.randbytes(20).hex()
        )
        step = random_step(rng, rng.choice(keys).address)
        signable = encode_typed_data(full_message=typed_data(step, domain))
        assert step.digest(domain) == _hash_eip191_message(signable)
        ours = fast.Signer(acct.key).sign(step.digest(domain))
        theirs = Account.sign_message(signable, acct.key).signature
        assert ours == bytes(theirs)
        assert fast.recover(step.digest(domain), ours) == acct.address
        assert fast.verify(step.digest(domain), ours, acct.address)


def test_batches_signed_on_two_threads_equal_eth_account(rng: random.Random, keys: list) -> None:
    """`sign_many` (a batch split between threads, each with its own buffers) gives, in
    order, the signatures eth-account gives, also with another key signing meanwhile."""
    acct, other = keys[0], keys[1]
    digests = [rng.randbytes(32) for _ in range(fast.PARALLEL_FROM * 4 + 1)]
    others = [rng.randbytes(32) for _ in range(fast.PARALLEL_FROM * 2)]
    theirs = [bytes(Account.unsafe_sign_hash(d, acct.key).signature) for d in digests]
    assert fast.Signer(acct.key).sign_many(digests) == theirs
    assert fast.Signer(acct.key).sign_many(digests[:3]) == theirs[:3]
    signer, second = fast.Signer(acct.key), fast.Signer(other.key)
    meanwhile: list[bytes] = []
    thread = threading.Thread(target=lambda: meanwhile.extend(second.sign_many(others)))
    thread.start()
    assert signer.sign_many(digests) == theirs
    thread.join()
    assert meanwhile == [bytes(Account.unsafe_sign_hash(d, other.key).signature) for d in others]


def _mutations(rng: random.Random, sig: bytes) -> list[bytes]:
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    high_s = r + (N - s).to_bytes(32, "big") + bytes([55 - v])  # the other valid form
    return [
        high_s,
        sig[:64] + bytes([v ^ 1]),  # wrong recovery id
        sig[:64] + bytes([v - 27]),  # v as 0/1
        sig[:64] + bytes([29]),
        bytes(32) + sig[32:],  # r = 0
        sig[:32] + bytes(32) + sig[64:],  # s = 0
        sig[:32] + N.to_bytes(32, "big") + sig[64:],  # s = n
        N.to_bytes(32, "big") + sig[32:],  # r = n
        sig[:64],  # truncated
        sig + b"\x00",  # too long
        rng.randbytes(65),
        bytes(rng.randbytes(64)) + bytes([27]),
        sig[:10] + bytes([sig[10] ^ 1]) + sig[11:],  # one bit flipped in r
    ]


def test_malformed_and_high_s_signatures_match_eth_account(rng: random.Random, keys: list) -> None:
    domain = Domain(31337, "0x" + "22" * 20)
    compared = 0
    for i in range(CASES // 4):
        acct = keys[i % len(keys)]
        step = random_step(rng, acct.address)
        digest = step.digest(domain)
        sig = fast.Signer(acct.key).sign(digest)
        for bad in _mutations(rng, sig):
            assert fast.recover(digest, bad) == reference_recover(step, domain, bad), bad.hex()
            compared += 1
    assert compared >= 3000


def test_high_s_recovers_but_is_not_canonical(keys: list) -> None:
    domain = Domain(31337, "0x" + "22" * 20)
    step = random_step(random.Random(1), keys[0].address)
    sig = fast.Signer(keys[0].key).sign(step.digest(domain))
    assert fast.is_low_s(sig)
    high = (
        sig[:32]
        + (N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
        + bytes([55 - sig[64]])
    )
    assert fast.recover(step.digest(domain), high) == keys[0].address  # as eth-account says
    assert not fast.is_low_s(high)  # and the ingest refuses it, as OpenZeppelin's ECDSA does


@pytest.mark.parametrize("change", ["chain", "contract", "name", "version"])
def test_wrong_domain_recovers_someone_else(keys: list, change: str) -> None:
    good = Domain(31337, "0x" + "22" * 20)
    other = {
        "chain": Domain(31338, good.verifying_contract),
        "contract": Domain(31337, "0x" + "23" * 20),
        "name": Domain(31337, good.verifying_contract, name="cofab2"),
        "version": Domain(31337, good.verifying_contract, version="2"),
    }[change]
    step = random_step(random.Random(2), keys[1].address)
    sig = fast.Signer(keys[1].key).sign(step.digest(good))
    assert fast.recover(step.digest(other), sig) == reference_recover(step, other, sig)
    assert not fast.verify(step.digest(other), sig, keys[1].address)


def test_recover_addresses_equals_recover_address_one_by_one(
    rng: random.Random, keys: list
) -> None:
    """The batch form gives, in order, what `recover_address` gives for each pair, valid,
    malformed, EIP-155 v or of the wrong length alike."""
    digests, signatures = [], []
    for i in range(200):
        digest = rng.randbytes(32)
        sig = fast.Signer(keys[i % len(keys)].key).sign(digest)
        for bad in [sig, sig[:64] + bytes([37 + sig[64] % 2]), *_mutations(rng, sig)]:
            digests.append(digest)
            signatures.append(bad)
    digests += [b"\x01" * 31, b"\x02" * 33]
    signatures += signatures[:2]
    expected = [fast.recover_address(d, s) for d, s in zip(digests, signatures, strict=True)]
    assert fast.recover_addresses(digests, signatures) == expected
    assert sum(e is None for e in expected) > 200 and sum(e is not None for e in expected) > 600
