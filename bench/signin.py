"""Sign-in message reading time: cofab's EIP-4361 reader against the `siwe` package's
ABNF parser (the reference), on the same messages, in one run.

The ABNF parser's time grows faster than the square of the message length, which let one
anonymous 32 KiB sign-in take minutes; the reader must stay linear. Targets: a 4 KiB
message (the most accepted) read in under 20 ms, and 4 KiB costing at most 16x what
512 bytes costs (linear: 8x).

Usage: .venv/bin/python bench/signin.py
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

from siwe import SiweMessage

from api.eip4361 import MAX_MESSAGE_BYTES, parse

BASE = {
    "domain": "node.example:8443",
    "address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "uri": "https://node.example:8443/auth/login",
    "version": "1",
    "chain_id": 31337,
    "nonce": "abcdEFGH1234",
    "issued_at": "2026-01-02T03:04:05.678Z",
}
TARGET_4K_SECONDS = 0.020
TARGET_GROWTH = 16.0


def message(size: int) -> str:
    """A valid message of about `size` bytes (a long statement)."""
    text = SiweMessage(**BASE).prepare_message()
    statement = "a" * max(1, size - len(text) - 2)
    return SiweMessage(**{**BASE, "statement": statement}).prepare_message()


def best_of(fn: Callable[[str], object], text: str, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn(text)
        best = min(best, time.perf_counter() - start)
    return best


def abnf(text: str) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SiweMessage.from_message(message=text)


def main() -> int:
    print(f"{'bytes':>6} {'reader ms':>10} {'ABNF ms':>10} {'ABNF/reader':>12}")
    reader: dict[int, float] = {}
    for size in (512, 1024, 2048, 4000):
        text = message(size)
        assert len(text.encode()) <= MAX_MESSAGE_BYTES
        reader[size] = best_of(parse, text, 20)
        reference = best_of(abnf, text, 1 if size >= 2048 else 3)
        print(
            f"{len(text):>6} {reader[size] * 1e3:>10.2f} {reference * 1e3:>10.1f} "
            f"{reference / reader[size]:>11.0f}x"
        )
    growth = reader[4000] / reader[512]
    ok_time = reader[4000] <= TARGET_4K_SECONDS
    ok_growth = growth <= TARGET_GROWTH
    print(
        f"4 KiB read in {reader[4000] * 1e3:.2f} ms (target <= {TARGET_4K_SECONDS * 1e3:.0f} ms): "
        f"{'met' if ok_time else 'not met'}"
    )
    print(
        f"4 KiB / 512 B time: {growth:.1f}x (target <= {TARGET_GROWTH:.0f}x, linear 8x): "
        f"{'met' if ok_growth else 'not met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
