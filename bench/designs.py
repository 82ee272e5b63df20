"""Design registration gas and file hashing throughput, with their references, in one run.

- gas of one registration, i.e. the commitment that binds the designer (membership check,
  priority block) against the target (55,000) and, per record, EAS `timestamp` (records
  no author) and EAS `attest`; and of its later reveal (paid once, when the design is
  first used);
- gas per design of batch registration by Merkle root (leaves name the designer) for 1,
  16, 256 and 1,024 files (target <= 100 at 1,024) against EAS `timestamp` of one root
  shared by as many designs, and of claiming one batch member;
- SHA-256 throughput of the Python path (ledger.designs.files) against `openssl dgst
  -sha256` (SHA-NI where the CPU has it) on the same files (target >= 0.8 of it).

EAS is deployed from its npm package on the same embedded chain (py-evm, the gas schedule
of anvil and Besu) and measured in the same run (bench/references.py).
Usage: .venv/bin/python bench/designs.py
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from eth_account import Account
from references import EASGas, load, measure_eas, verdict

from ledger.core.merkle import StandardMerkleTree
from ledger.designs.certificates import LEAF_ENCODING, commitment_of, leaf_value
from ledger.designs.client import ZERO32
from ledger.designs.files import sha256_files
from ledger.eth.chain import Backend
from ledger.membership.roles import Role
from ledger.node import Node, NodeOptions

SINGLE_TARGET = 55_000
BATCH_TARGET = 100
BATCH_SIZES = (1, 16, 256, 1024)
HASH_TARGET = 0.8  # Python's 1-thread SHA-256 throughput as a fraction of openssl's
SMALL_FILES, SMALL_SIZE = 1024, 128 * 1024
LARGE_FILES, LARGE_SIZE = 2, 128 * 1024 * 1024


def gas(node: Node, eas: EASGas) -> None:
    designer = node.add_signer(Account.create(os.urandom(32).hex()))
    node.consortium.propose_admit(node.sender(), designer.address, int(Role.DESIGNER))
    client = node.designs

    commits, reveals = [], []
    parent = ZERO32
    for i in range(5):
        did = hashlib.sha256(os.urandom(64)).digest()
        meta, salt = hashlib.sha256(b"m%d" % i).digest(), os.urandom(32)
        commitment = commitment_of(did, meta, ZERO32, designer.address, salt)
        commits.append(int(client.commit(designer, commitment)["gasUsed"]))
        receipt = client.reveal(designer, did, meta, ZERO32, designer.address, salt)
        reveals.append(int(receipt["gasUsed"]))
        parent = did
    child, salt = hashlib.sha256(os.urandom(64)).digest(), os.urandom(32)
    client.commit(designer, commitment_of(child, ZERO32, parent, designer.address, salt))
    with_parent = client.reveal(designer, child, ZERO32, parent, designer.address, salt)
    single = max(commits)
    print("\nsingle registration: the commitment (no parent)")
    print(
        f"  gas                {single:>10,}   target <= {SINGLE_TARGET:,}: "
        f"{verdict(single <= SINGLE_TARGET)}"
    )
    print(
        f"  EAS timestamp      {eas.timestamp:>10,}   cofab/EAS {single / eas.timestamp:.2f}x "
        "(EAS records no author; cofab also records priority and checks membership)"
    )
    print(
        f"  EAS attest         {eas.attest:>10,}   cofab/EAS {single / eas.attest:.2f}x "
        "(an attestation names its attester)"
    )
    print(f"  reveal, later      {max(reveals):>10,}   once, when the design is first used")
    print(f"  reveal with parent {int(with_parent['gasUsed']):>10,}")

    print("\nbatch registration by Merkle root")
    print(
        f"  {'files':>6} {'gas':>10} {'gas/design':>11} {'vs single':>10} "
        f"{'EAS timestamp(root)/n':>22} {'cofab/EAS':>10}"
    )
    last_tree = None
    for n in BATCH_SIZES:
        values = [
            leaf_value(hashlib.sha256(os.urandom(32)).digest(), ZERO32, ZERO32, designer.address)
            for _ in range(n)
        ]
        tree = StandardMerkleTree.of(values, LEAF_ENCODING)
        used = int(client.register_batch(designer, tree.root, n, ZERO32)["gasUsed"])
        ref = eas.timestamp / n
        print(
            f"  {n:>6} {used:>10,} {used / n:>11.1f} {single / (used / n):>9.0f}x "
            f"{ref:>22.1f} {used / eas.timestamp:>9.2f}x"
        )
        last_tree = tree
    per = used / BATCH_SIZES[-1]
    print(
        f"  target <= {BATCH_TARGET} gas/design at {BATCH_SIZES[-1]}: "
        f"{verdict(per <= BATCH_TARGET)}"
        f" ({per:.1f}; EAS timestamp of one root {eas.timestamp / BATCH_SIZES[-1]:.1f}, "
        f"EAS multiAttest {eas.per_attest_in_multi:,.0f} per record)"
    )
    assert last_tree is not None
    did, meta, parent_id, author = last_tree.values[0]
    proof = last_tree.proof(0)
    claim = client.claim(designer, last_tree.root, author, did, meta, parent_id, proof)
    print(
        f"  claim of one member of {BATCH_SIZES[-1]} (proof of {len(last_tree.proof(0))} nodes): "
        f"{int(claim['gasUsed']):,} gas, paid only when a member must be enforced on chain"
    )


def _make_files(root: Path) -> list[Path]:
    paths = []
    for i in range(SMALL_FILES):
        path = root / f"small-{i:04}.bin"
        path.write_bytes(os.urandom(SMALL_SIZE))
        paths.append(path)
    block = os.urandom(1 << 20)
    for i in range(LARGE_FILES):
        path = root / f"large-{i}.bin"
        with open(path, "wb") as handle:
            for _ in range(LARGE_SIZE >> 20):
                handle.write(block)
        paths.append(path)
    return paths


def hashing() -> None:
    openssl = shutil.which("openssl")
    with tempfile.TemporaryDirectory(prefix="cofab-bench-") as tmp:
        paths = _make_files(Path(tmp))
        total = sum(p.stat().st_size for p in paths)
        mib = total / (1 << 20)

        def reference() -> list[bytes]:
            assert openssl is not None
            result = subprocess.run(
                [openssl, "dgst", "-sha256", "-r", *map(str, paths)],
                capture_output=True,
                text=True,
                check=True,
            )
            return [bytes.fromhex(line.split()[0]) for line in result.stdout.splitlines()]

        ours = sha256_files(paths)  # also warms the page cache
        print(
            f"\nSHA-256 of {len(paths):,} files, {mib:,.0f} MiB "
            f"({SMALL_FILES} x {SMALL_SIZE >> 10} KiB + {LARGE_FILES} x {LARGE_SIZE >> 20} MiB), "
            f"page cache warm, best of 3 taking turns, SHA-NI {'yes' if _sha_ni() else 'no'}, "
            f"{load()}"
        )
        if openssl is None:
            print("  openssl not found: no reference, no verdict")
            return
        assert reference() == ours, "the Python path disagrees with openssl"
        times: dict[str, list[float]] = {"ref": [], "one": [], "many": []}
        runs = {
            "ref": reference,
            "one": lambda: sha256_files(paths, workers=1),
            "many": lambda: sha256_files(paths),
        }
        for _ in range(3):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        base, one, many = (min(times[k]) for k in ("ref", "one", "many"))
        print(f"  openssl dgst -sha256 (1 process) {mib / base:8.0f} MiB/s   1.00")
        for label, seconds in (("python, 1 thread", one), ("python, thread pool", many)):
            print(f"  {label:32} {mib / seconds:8.0f} MiB/s   {base / seconds:.2f}")
        print(
            f"  target: 1 thread >= {HASH_TARGET} of openssl: {verdict(base / one >= HASH_TARGET)} "
            f"({base / one:.2f})"
        )


def _sha_ni() -> bool:
    try:
        return " sha_ni" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def main() -> None:
    os.environ.setdefault("COFAB_PASSPHRASE", "bench")
    with tempfile.TemporaryDirectory(prefix="cofab-bench-node-") as tmp:
        node = Node.start(
            NodeOptions(backend=Backend.EMBEDDED, data_dir=Path(tmp), kdf_iterations=1024)
        )
        try:
            eas = measure_eas(node.sender())
            print("\n".join(eas.lines()))
            gas(node, eas)
        finally:
            node.close()
    hashing()


if __name__ == "__main__":
    main()
