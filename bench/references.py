"""Reference implementations the benches measure cofab against, in the same run.

- The Ethereum Attestation Service (EAS), deployed from the build artifacts of its npm
  package (`@ethereum-attestation-service/eas-contracts`, bytecode as published) on the
  bench's own chain, so its gas is counted under the same schedule as cofab's.
- 0xSplits v1 (`SplitMain`): no npm package ships its bytecode, so its figures are
  constants, each labelled with its source wherever it is printed: `createSplit` as
  0xSplits publishes it, `distributeERC20` (its table covers only `distributeETH`) as
  measured once on this chain from SplitMain compiled from its source.
- The C limit of signature recovery: libsecp256k1's recover plus keccak of the public key,
  called through coincurve with nothing else around them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from web3.contract import Contract

from ledger.core.settings import PROJECT_ROOT
from ledger.eth.tx import Sender

EAS_PACKAGE = PROJECT_ROOT / "build" / "eas" / "package"  # unpacked by `make bench`
EAS_SCHEMA = "bytes32 digest"  # the smallest record: one 32-byte digest, like an anchor root
MULTI_TIMESTAMP = 1024
MULTI_ATTEST = 100
NO_EXPIRY = 0


def verdict(ok: bool) -> str:
    """The one wording every bench prints beside a target."""
    return "met" if ok else "not met"


def load() -> str:
    """The machine's load, printed beside absolute rates (ratios measured in the same run
    hold under load; absolute rates do not)."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} CPUs"


# --- EAS ---------------------------------------------------------------------------------


def _eas_artifact(name: str) -> tuple[list[dict[str, Any]], bytes]:
    path = EAS_PACKAGE / "artifacts" / "contracts" / f"{name}.sol" / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"{path} not found: run `make bench` (it unpacks the EAS package)")
    art = json.loads(path.read_text())
    return art["abi"], bytes.fromhex(art["bytecode"].removeprefix("0x"))


def _contract(sender: Sender, name: str, *args: object) -> Contract:
    abi, bytecode = _eas_artifact(name)
    receipt = sender.deploy(abi, bytecode, *args)
    return cast(Contract, sender.chain.w3.eth.contract(address=receipt["contractAddress"], abi=abi))


@dataclass(frozen=True)
class EASGas:
    """Gas used (receipt `gasUsed`, base transaction cost included) of EAS calls."""

    timestamp: int  # `timestamp` of one bytes32, e.g. one Merkle root
    multi_timestamp: int  # `multiTimestamp` of MULTI_TIMESTAMP fresh bytes32 values
    attest: int  # `attest` of one record (schema EAS_SCHEMA, no recipient, no expiry)
    multi_attest: int  # `multiAttest` of MULTI_ATTEST such records under one schema

    @property
    def per_timestamp_in_multi(self) -> float:
        return self.multi_timestamp / MULTI_TIMESTAMP

    @property
    def per_attest_in_multi(self) -> float:
        return self.multi_attest / MULTI_ATTEST

    def lines(self) -> list[str]:
        return [
            f"EAS (npm @ethereum-attestation-service/eas-contracts {eas_version()}, "
            "deployed on this chain, measured in this run)",
            f"  timestamp(1 root)            {self.timestamp:>11,} gas",
            f"  multiTimestamp({MULTI_TIMESTAMP})         {self.multi_timestamp:>11,} gas"
            f" = {self.per_timestamp_in_multi:,.0f} per value",
            f"  attest(1 record, '{EAS_SCHEMA}') {self.attest:>8,} gas",
            f"  multiAttest({MULTI_ATTEST})             {self.multi_attest:>11,} gas"
            f" = {self.per_attest_in_multi:,.0f} per record",
        ]


def eas_version() -> str:
    return str(json.loads((EAS_PACKAGE / "package.json").read_text())["version"])


def _send(sender: Sender, fn: Any) -> int:
    """Gas used by `fn`, sent with its exact estimate plus a little headroom: the sender's
    usual 25 % margin would push multiTimestamp(1024) over a 30M block gas limit."""
    estimate = fn.estimate_gas({"from": sender.address})
    return int(sender.transact(fn, gas=estimate + 30_000)["gasUsed"])


def _request(data: bytes) -> tuple[str, int, bool, bytes, bytes, int]:
    return ("0x" + "00" * 20, NO_EXPIRY, False, bytes(32), data, 0)


def measure_eas(sender: Sender) -> EASGas:
    """Deploy SchemaRegistry and EAS with `sender`, register EAS_SCHEMA, measure the four
    calls the benches compare with (fresh random values each, as real roots would be)."""
    registry = _contract(sender, "SchemaRegistry")
    eas = _contract(sender, "EAS", registry.address)
    register = registry.functions.register(EAS_SCHEMA, "0x" + "00" * 20, False)
    schema = register.call({"from": sender.address})
    sender.transact(register)

    def fresh() -> bytes:
        return os.urandom(32)

    timestamp = _send(sender, eas.functions.timestamp(fresh()))
    multi_timestamp = _send(
        sender, eas.functions.multiTimestamp([fresh() for _ in range(MULTI_TIMESTAMP)])
    )
    attest = _send(sender, eas.functions.attest((schema, _request(fresh()))))
    multi_attest = _send(
        sender,
        eas.functions.multiAttest([(schema, [_request(fresh()) for _ in range(MULTI_ATTEST)])]),
    )
    return EASGas(timestamp, multi_timestamp, attest, multi_attest)


# --- 0xSplits v1 (not measured in the run) ---------------------------------------------

SPLITS_CREATE_SOURCE = (
    "createSplit: 0xSplits v1 documentation, Appendices > Gas Estimates (immutable split); "
    "published, not measured"
)
# createSplit of an immutable split, total gas, by number of recipients (published table)
SPLITS_CREATE = {2: 100_741, 5: 104_484, 10: 110_802, 25: 129_344, 50: 160_547, 100: 223_155}

SPLITS_DISTRIBUTE_SOURCE = (
    "distributeERC20: SplitMain v1 compiled from 0xSplits' source (splits-contracts "
    "1d97dfb, solc 0.8.4, optimizer 200 runs, as deployed) and measured once on this "
    "embedded chain with cofab's demo ERC-20; not measured in this run (its createSplit "
    "matched the published table within 0.05 %)"
)
# distributeERC20, total gas, distributor fee 0, by number of recipients: the first
# distribution (no recipient credited before) and later ones (all credited before)
SPLITS_DISTRIBUTE_FIRST = {
    2: 119_741,
    4: 150_196,
    5: 174_003,
    6: 197_787,
    10: 292_925,
    16: 435_435,
    18: 482_973,
    25: 649_392,
}
SPLITS_DISTRIBUTE_NTH = {
    2: 68_441,
    4: 81_796,
    5: 88_503,
    6: 95_187,
    10: 121_925,
    16: 161_835,
    18: 175_173,
    25: 221_892,
}


def at_size(table: dict[int, int], n: int) -> float:
    """The table's figure for `n` recipients, linear between the two sizes listed around
    it (each table is linear in n beyond a few recipients)."""
    if n in table:
        return float(table[n])
    sizes = sorted(table)
    lo = max((s for s in sizes if s < n), default=sizes[0])
    hi = min((s for s in sizes if s > n), default=sizes[-1])
    return table[lo] + (table[hi] - table[lo]) * (n - lo) / (hi - lo)


def splits_marginal(table: dict[int, int]) -> float:
    """Gas of one more recipient: the table's slope between its two largest sizes."""
    sizes = sorted(table)
    a, b = sizes[-2], sizes[-1]
    return (table[b] - table[a]) / (b - a)


# --- signature recovery: the C limit -----------------------------------------------------


def c_limit_recover(pairs: Sequence[tuple[bytes, bytes]]) -> Callable[[slice], int]:
    """A closure that recovers the (digest, signature) pairs of a slice with libsecp256k1
    and hashes each public key with keccak, and nothing else: the ceiling any Python path
    can approach."""
    from coincurve._libsecp256k1 import ffi, lib
    from coincurve.context import GLOBAL_CONTEXT

    from ledger.core.hashing import keccak

    ctx = GLOBAL_CONTEXT.ctx
    rsig = ffi.new("secp256k1_ecdsa_recoverable_signature *")
    pub = ffi.new("secp256k1_pubkey *")
    out = ffi.new("unsigned char[65]")
    outlen = ffi.new("size_t *", 65)
    flag = lib.SECP256K1_EC_UNCOMPRESSED
    parsed = [(d, s[:64], s[64] - 27) for d, s in pairs]

    def run(part: slice) -> int:
        ok = 0
        for digest, rs, v in parsed[part]:
            lib.secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, rsig, rs, v)
            lib.secp256k1_ecdsa_recover(ctx, pub, rsig, digest)
            outlen[0] = 65
            lib.secp256k1_ec_pubkey_serialize(ctx, out, outlen, pub, flag)
            ok += len(keccak(ffi.buffer(out, 65)[1:]))
        return ok

    return run


def c_limit_on_cores(cores: int, per_core: int = 20_000) -> float:
    """Signatures recovered per second of wall time by `cores` processes running the C
    limit at once (each its own `per_core` pairs, started together at a barrier): what
    all the cores of this machine can do for a checker, with nothing else around the
    recovery. Cores sharing caches (or a host) make this less than `cores` times the
    one-core figure."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(cores)
    with context.Pool(cores, initializer=_hold_barrier, initargs=(barrier,)) as workers:
        spans = workers.map(_c_limit_span, [per_core] * cores)
    return cores * per_core / (max(end for _, end in spans) - min(start for start, _ in spans))


_BARRIER: list[Any] = []


def _hold_barrier(barrier: Any) -> None:
    _BARRIER[:] = [barrier]


def _c_limit_span(n: int) -> tuple[float, float]:
    """Recover `n` signatures at the C limit once every process is ready; when it began
    and ended (`time.perf_counter` is the system's monotonic clock, shared by processes)."""
    from ledger.steps.signatures import Signer

    signer = Signer(os.urandom(32))
    digests = [os.urandom(32) for _ in range(n)]
    run = c_limit_recover([(d, signer.sign(d)) for d in digests])
    _BARRIER[0].wait()
    start = time.perf_counter()
    run(slice(0, n))
    return start, time.perf_counter()


def interleaved(
    runs: dict[str, Callable[[slice], object]], items: int, chunk: int, passes: int = 2
) -> dict[str, float]:
    """Items per CPU-second of each run over the same `items`, taken in turns of `chunk`
    items (the order of the runs rotating from turn to turn), this process's CPU time
    summed over all turns: time spent waiting for a core on a busy machine is not counted,
    and every run sees the same load on caches, so the ratios between them hold."""
    total = dict.fromkeys(runs, 0.0)
    names = list(runs)
    turn = 0
    for _ in range(passes):
        for start in range(0, items, chunk):
            part = slice(start, min(start + chunk, items))
            k = turn % len(names)
            for name in names[k:] + names[:k]:
                began = time.process_time()
                runs[name](part)
                total[name] += time.process_time() - began
            turn += 1
    return {name: items * passes / seconds for name, seconds in total.items()}
