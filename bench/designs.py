"""Design registration gas and file hashing throughput, with their baselines, in one run.

- gas of one registration, i.e. the commitment that binds the designer (membership check,
  priority block) against the target (55,000) and EAS `timestamp` (45,869 gas, records no
  author); and of its later reveal (paid once, when the design is first used);
- gas per design of batch registration by Merkle root (leaves name the designer) for 1,
  16, 256 and 1,024 files (target <= 100 at 1,024), and of claiming one batch member;
- SHA-256 throughput of the Python path (ledger.designs.files) against `sha256sum` on the
  same files.

Runs on the embedded chain (py-evm; same cancun gas schedule as anvil and Besu).
Usage: .venv/bin/python bench/designs.py
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_account import Account

from ledger.core.merkle import StandardMerkleTree
from ledger.designs.certificates import LEAF_ENCODING, commitment_of, leaf_value
from ledger.designs.client import ZERO32
from ledger.designs.files import sha256_files
from ledger.eth.chain import Backend
from ledger.membership.roles import Role
from ledger.node import Node, NodeOptions

EAS_TIMESTAMP_GAS = 45_869
SINGLE_TARGET = 55_000
BATCH_TARGET = 100
BATCH_SIZES = (1, 16, 256, 1024)
SMALL_FILES, SMALL_SIZE = 1024, 128 * 1024
LARGE_FILES, LARGE_SIZE = 2, 128 * 1024 * 1024


def gas(node: Node) -> None:
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
    print("single registration: the commitment (no parent)")
    print(
        f"  gas                {single:>10,}   target {SINGLE_TARGET:,}: "
        f"{'met' if single <= SINGLE_TARGET else 'MISSED'}"
    )
    print(
        f"  vs EAS timestamp   {EAS_TIMESTAMP_GAS:>10,}   ratio {single / EAS_TIMESTAMP_GAS:.2f}x "
        "(and it records the author, priority and membership)"
    )
    print(f"  reveal, later      {max(reveals):>10,}   once, when the design is first used")
    print(f"  reveal with parent {int(with_parent['gasUsed']):>10,}")

    print("\nbatch registration by Merkle root")
    print(f"  {'files':>6} {'gas':>10} {'gas/design':>11} {'vs single':>10}")
    last_tree = None
    for n in BATCH_SIZES:
        values = [
            leaf_value(hashlib.sha256(os.urandom(32)).digest(), ZERO32, ZERO32, designer.address)
            for _ in range(n)
        ]
        tree = StandardMerkleTree.of(values, LEAF_ENCODING)
        used = int(client.register_batch(designer, tree.root, n, ZERO32)["gasUsed"])
        print(f"  {n:>6} {used:>10,} {used / n:>11.1f} {single / (used / n):>9.0f}x")
        last_tree = tree
    per = used / BATCH_SIZES[-1]
    print(
        f"  target <= {BATCH_TARGET} gas/design at {BATCH_SIZES[-1]}: "
        f"{'met' if per <= BATCH_TARGET else 'MISSED'} ({per:.1f})"
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


def _best(fn: object, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def hashing() -> None:
    sha256sum = shutil.which("sha256sum")
    with tempfile.TemporaryDirectory(prefix="cofab-bench-") as tmp:
        paths = _make_files(Path(tmp))
        total = sum(p.stat().st_size for p in paths)
        mib = total / (1 << 20)

        def baseline() -> list[bytes]:
            assert sha256sum is not None
            result = subprocess.run(
                [sha256sum, *map(str, paths)], capture_output=True, text=True, check=True
            )
            return [bytes.fromhex(line.split()[0]) for line in result.stdout.splitlines()]

        ours = sha256_files(paths)  # also warms the page cache
        print(
            f"\nSHA-256 of {len(paths):,} files, {mib:,.0f} MiB "
            f"({SMALL_FILES} x {SMALL_SIZE >> 10} KiB + {LARGE_FILES} x {LARGE_SIZE >> 20} MiB), "
            f"page cache warm, best of 3, {os.cpu_count()} CPU(s)"
        )
        if sha256sum is None:
            print("  sha256sum not found: no baseline")
        else:
            assert baseline() == ours, "the Python path disagrees with sha256sum"
            base = _best(baseline)
            print(f"  sha256sum (1 process)          {mib / base:8.0f} MiB/s   1.00x")
        one = _best(lambda: sha256_files(paths, workers=1))
        many = _best(lambda: sha256_files(paths))
        for label, seconds in (("python, 1 thread", one), ("python, thread pool", many)):
            ratio = f"{base / seconds:.2f}x" if sha256sum else ""
            print(f"  {label:30} {mib / seconds:8.0f} MiB/s   {ratio}")


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="cofab-bench-node-"))
    os.environ.setdefault("COFAB_PASSPHRASE", "bench")
    node = Node.start(NodeOptions(backend=Backend.EMBEDDED, data_dir=data, kdf_iterations=1024))
    try:
        gas(node)
    finally:
        node.close()
        shutil.rmtree(data, ignore_errors=True)
    hashing()


if __name__ == "__main__":
    main()
