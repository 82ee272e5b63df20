"""Set the stage for a story on a chain: members, a licensed design, an order in production.

Used by `cofab demo`, the benchmarks and the crash tests, so that all of them exercise
the same real contract calls a consortium would make.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.core.abi import PPM_SCALE
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec

ROYALTY_PPM = 50_000
DAY = 86_400


def new_account() -> LocalAccount:
    """A fresh key from the operating system's randomness."""
    account: LocalAccount = Account.create(os.urandom(32).hex())
    return account


def member(node: Node, roles: int, account: LocalAccount | None = None) -> Sender:
    """Admit `account` (a fresh key when None) with `roles`; the node's operator proposes,
    so this needs a council where the operator's proposal alone reaches the quorum."""
    account = account or new_account()
    node.consortium.propose_admit(node.sender(), account.address, int(roles))
    return node.add_signer(account)


def make_operator_factory(node: Node) -> Sender:
    """Give the node's operator the factory role too (a factory's own node)."""
    op = node.sender()
    roles = node.consortium.member(op.address).roles | int(Role.FACTORY)
    node.consortium.propose_set_roles(op, op.address, roles)
    return op


def licensed_design(
    node: Node,
    designer: Sender,
    buyer: str,
    content: bytes | None = None,
    royalty_ppm: int = ROYALTY_PPM,
) -> bytes:
    """Register `content` (random when None) as a design and license it to `buyer`."""
    design = hashlib.sha256(content or os.urandom(32)).digest()
    node.designs.register(designer, design, bytes(32), bytes(32))
    node.designs.grant_licence(designer, design, buyer, royalty_ppm)
    return design


def order_in_production(
    node: Node,
    buyer: Sender,
    design: bytes,
    specs: Sequence[SplitSpec],
    price: int,
    *,
    quantity: int = 100,
    deadline: int | None = None,
) -> int:
    """Create, fund and split an order; every factory the node holds a key of accepts."""
    token = node.settlement.token()
    if token.balance_of(buyer.address) < price:
        token.mint(node.sender(), buyer.address, price)
    job_id, _ = node.jobs.create(
        buyer, design, quantity, price, deadline or int(time.time()) + 30 * DAY
    )
    node.jobs.fund(buyer, job_id)
    node.jobs.split(buyer, job_id, list(specs))
    for i, spec in enumerate(specs):
        try:
            sender = node.sender(spec.factory)
        except Exception:  # noqa: BLE001 - that factory accepts by itself later
            continue
        node.jobs.accept(sender, job_id, i)
    return job_id


def factory_shares(count: int, royalty_ppm: int = ROYALTY_PPM, fee_ppm: int = 20_000) -> list[int]:
    """Equal factory shares (1e6 scale) that, with royalty and fee, sum to exactly 1e6."""
    rest = PPM_SCALE - royalty_ppm - fee_ppm
    shares = [rest // count] * count
    shares[0] += rest - sum(shares)
    return shares
