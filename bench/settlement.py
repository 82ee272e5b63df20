"""Gas of an order's lifecycle and of paying its contributors, beside 0xSplits v1.

One run on the embedded chain (py-evm, the cancun gas schedule of anvil and Besu): orders of
2, 4, 8 and 16 splits go from creation to settlement, then every payee withdraws. Printed:

- gas per lifecycle step (create, approve, fund, split, accept, signed accept, hand-over,
  deliver, accept delivery, withdraw);
- `split` of n splits against 0xSplits `createSplit` of n recipients;
- gas per recipient paid (the acceptances that credit factories, designer and platform,
  divided by the number of recipients) against 0xSplits' distribution to as many
  recipients, divided alike: accounts credited for the first time (cold storage) against
  its first distribution, accounts credited before (warm) against a later one;
- the marginal gas of one more recipient against 0xSplits' marginal.

No npm package carries 0xSplits' bytecode, so its figures are constants, printed with
their source (bench/references.py): `createSplit` as 0xSplits publishes it ("published,
not measured"), `distributeERC20`, which its published table lacks, as measured once on
this chain from SplitMain compiled from its source; sizes a table does not list are
interpolated linearly between the two listed around them.

0xSplits stores only a hash of its recipients and pays on distribution; an order here also
records each split's factory, quantity, share, dependencies, custody and state (its step
label only in an event), so the references frame the figures; the targets are the ones the
contracts' gas notes state.

Usage: .venv/bin/python bench/settlement.py
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from eth_account import Account
from references import (
    SPLITS_CREATE,
    SPLITS_CREATE_SOURCE,
    SPLITS_DISTRIBUTE_FIRST,
    SPLITS_DISTRIBUTE_NTH,
    SPLITS_DISTRIBUTE_SOURCE,
    at_size,
    splits_marginal,
    verdict,
)

from ledger.eth.chain import Backend
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node, NodeOptions
from ledger.orders.jobs import SplitSpec
from ledger.orders.signing import Handover

SIZES = (2, 4, 8, 16)
ROYALTY_PPM, FEE_PPM = 50_000, 20_000
PRICE = 100_000 * 10**6
SPLIT_TARGET = 50_000  # gas per split of `split`, at 16 splits


@dataclass
class Run:
    splits: int
    gas: dict[str, list[int]] = field(default_factory=dict)

    def add(self, step: str, receipt: object) -> None:
        self.gas.setdefault(step, []).append(int(receipt["gasUsed"]))  # type: ignore[index]

    def mean(self, step: str) -> float:
        values = self.gas.get(step, [])
        return sum(values) / len(values) if values else 0.0

    def total(self, step: str) -> int:
        return sum(self.gas.get(step, []))


def member(node: Node, roles: Role) -> Sender:
    account = Account.create(os.urandom(32).hex())
    node.consortium.propose_admit(node.sender(), account.address, int(roles))
    return node.add_signer(account)


def order(
    node: Node, buyer: Sender, design: bytes, factories: list[Sender], relayer: Sender
) -> Run:
    """One order of len(factories) splits (the last depends on the first), from creation to
    settlement; the first factory accepts by signature, the others by transaction."""
    n = len(factories)
    jobs, run = node.jobs, Run(n)
    rest = 1_000_000 - ROYALTY_PPM - FEE_PPM
    shares = [rest // n] * n
    shares[0] += rest - sum(shares)
    specs = [
        SplitSpec(f.address, f"step {i}", 10, shares[i], (0,) if i == n - 1 else ())
        for i, f in enumerate(factories)
    ]
    job_id, receipt = jobs.create(buyer, design, 100, PRICE, int(time.time()) + 86_400)
    run.add("create", receipt)
    token = node.settlement.token()
    run.add("approve (ERC-20)", token.approve(buyer, node.settlement.address, PRICE))
    run.add("fund", buyer.transact(jobs.contract.functions.fund(job_id)))
    run.add("split", jobs.split(buyer, job_id, specs))
    record = jobs.acceptance(job_id, 0)
    signature = jobs.sign(factories[0].account, record)
    run.add("accept, signed and relayed", jobs.accept_with_signature(relayer, record, signature))
    for i in range(1, n):
        run.add("accept", jobs.accept(factories[i], job_id, i))
    for i in range(n - 1):
        run.add("deliver", jobs.deliver(factories[i], job_id, i))
    lots = Handover(job_id, 0, n - 1, b"lot".ljust(32, b"\x00"), 10, int(time.time()) + 3600)
    sig = jobs.sign(factories[0].account, lots)
    run.add("hand-over (2 signatures)", jobs.handover(factories[-1], lots, sig))
    run.add("deliver", jobs.deliver(factories[-1], job_id, n - 1))
    for i in range(n - 1):
        run.add("accept delivery (pays 1)", jobs.accept_delivery(buyer, job_id, i))
    run.add("accept delivery, last (pays 3)", jobs.accept_delivery(buyer, job_id, n - 1))
    return run


def withdraw_all(node: Node, payees: list[Sender], run: Run) -> None:
    for payee in payees:
        _amount, receipt = node.settlement.withdraw(payee)
        run.add("withdraw", receipt)


def main() -> None:
    os.environ.setdefault("COFAB_PASSPHRASE", "bench-settlement")
    with tempfile.TemporaryDirectory(prefix="cofab-bench-settlement-") as tmp:
        node = Node.start(
            NodeOptions(backend=Backend.EMBEDDED, data_dir=Path(tmp), kdf_iterations=2**10)
        )
        try:
            cold, warm = run_orders(node)
        finally:
            node.close()
    print_report(cold, warm)


def run_orders(node: Node) -> tuple[dict[int, Run], dict[int, Run]]:
    buyer = member(node, Role.BUYER)
    designer = member(node, Role.DESIGNER)
    relayer = member(node, Role.AUDITOR)
    design = hashlib.sha256(b"bench design").digest()
    node.designs.register(designer, design, bytes(32), bytes(32))
    node.designs.grant_licence(designer, design, buyer.address, ROYALTY_PPM)
    node.settlement.token().mint(node.sender(), buyer.address, 10 * len(SIZES) * PRICE)
    pool = [member(node, Role.FACTORY) for _ in range(max(SIZES))]
    platform = node.sender()

    cold: dict[int, Run] = {}
    warm: dict[int, Run] = {}
    for n in SIZES:
        fresh = [member(node, Role.FACTORY) for _ in range(n)]  # never credited before
        cold[n] = order(node, buyer, design, fresh, relayer)
        warm[n] = order(node, buyer, design, pool[:n], relayer)
        withdraw_all(node, pool[:n], warm[n])
    withdraw_all(node, [designer, platform], warm[SIZES[-1]])
    return cold, warm


def print_report(cold: dict[int, Run], warm: dict[int, Run]) -> None:
    print("gas per lifecycle step (mean per call; warm accounts; last split depends on the first)")
    steps = list(warm[SIZES[0]].gas)
    print(f"  {'step':36}" + "".join(f"{f'{n} splits':>12}" for n in SIZES))
    for step in steps:
        row = "".join(f"{warm[n].mean(step):>12,.0f}" for n in SIZES)
        print(f"  {step:36}{row}")

    print(
        "\nan order from creation to its last accepted delivery (warm accounts; withdrawals apart)"
    )
    print(f"  {'splits':>6} {'transactions':>13} {'gas':>11} {'withdraw, per payee':>20}")
    for n in SIZES:
        run = warm[n]
        steps = [s for s in run.gas if s != "withdraw"]
        txs = sum(len(run.gas[s]) for s in steps)
        print(
            f"  {n:>6} {txs:>13} {sum(run.total(s) for s in steps):>11,} "
            f"{run.mean('withdraw'):>20,.0f}"
        )

    print(f"\n0xSplits v1 figures, not measured in this run:\n  {SPLITS_CREATE_SOURCE}")
    print(f"  {SPLITS_DISTRIBUTE_SOURCE}")
    print("\nsplitting an order into n splits vs 0xSplits createSplit of n recipients")
    print(
        f"  {'splits':>6} {'split gas':>11} {'per split':>10} "
        f"{'createSplit(n)':>15} {'per recipient':>14} {'cofab/0xSplits':>15}"
    )
    for n in SIZES:
        used = warm[n].total("split")
        ref = at_size(SPLITS_CREATE, n)
        print(
            f"  {n:>6} {used:>11,} {used / n:>10,.0f} {ref:>15,.0f} {ref / n:>14,.0f} "
            f"{used / ref:>14.2f}x"
        )
    n = SIZES[-1]
    per_split = warm[n].total("split") / n
    print(
        f"  target <= {SPLIT_TARGET:,} gas per split at {n}: {verdict(per_split <= SPLIT_TARGET)} "
        f"({per_split:,.0f}; 0xSplits createSplit({n}) {at_size(SPLITS_CREATE, n) / n:,.0f} "
        "per recipient)"
    )

    print("\npaying contributors vs 0xSplits distribution to as many recipients, per recipient")
    print(
        "  recipients = the splits' factories + designer + platform; gas = every acceptance "
        "(each its own transaction)"
    )
    print(
        f"  {'splits':>6} {'recip.':>6} {'cold':>8} {'0xS 1st':>8} {'ratio':>6} "
        f"{'warm':>8} {'0xS Nth':>8} {'ratio':>6} {'withdraw':>9}"
    )
    pay = ("accept delivery (pays 1)", "accept delivery, last (pays 3)")
    for n in SIZES:
        r = n + 2
        cold_per = sum(cold[n].total(s) for s in pay) / r
        warm_per = sum(warm[n].total(s) for s in pay) / r
        first = at_size(SPLITS_DISTRIBUTE_FIRST, r) / r
        nth = at_size(SPLITS_DISTRIBUTE_NTH, r) / r
        print(
            f"  {n:>6} {r:>6} {cold_per:>8,.0f} {first:>8,.0f} {cold_per / first:>5.2f}x "
            f"{warm_per:>8,.0f} {nth:>8,.0f} {warm_per / nth:>5.2f}x "
            f"{warm[n].mean('withdraw'):>9,.0f}"
        )
    n = SIZES[-1]
    marginal = (warm[n].mean(pay[1]) - warm[n].mean(pay[0])) / 2
    ref = splits_marginal(SPLITS_DISTRIBUTE_NTH)
    print(
        f"\n  marginal gas of one more recipient in a payout, accounts credited before: "
        f"{marginal:,.0f} against 0xSplits' {ref:,.0f} ({marginal / ref:.2f}x)\n"
        "  (cofab: the last acceptance credits designer and platform besides the factory; "
        "its extra gas\n  over an ordinary acceptance, halved. 0xSplits: the slope of its "
        "later distributeERC20\n  between 18 and 25 recipients; its first distribution's "
        f"slope, {splits_marginal(SPLITS_DISTRIBUTE_FIRST):,.0f},\n  pays for a fresh storage "
        "slot per recipient, as cofab's first credit to an account does.)"
    )


if __name__ == "__main__":
    main()
