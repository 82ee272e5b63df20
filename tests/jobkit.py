"""Building blocks of the order tests: members, a licensed design, money, orders, snapshots."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

from conftest import admit
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec

DUSD = 10**6  # one demo dollar in token units
PRICE = 10_000 * DUSD
ROYALTY_PPM = 50_000  # 5 %
FEE_PPM = 20_000  # 2 %, the deployment default
DAY = 86_400


@dataclass
class Parties:
    buyer: Sender
    designer: Sender
    factories: list[Sender]
    design: bytes


def parties(node: Node, factories: int = 3, royalty_ppm: int = ROYALTY_PPM) -> Parties:
    """A buyer with demo dollars, a designer whose design is licensed to it, factories."""
    buyer = admit(node, int(Role.BUYER))
    designer = admit(node, int(Role.DESIGNER))
    plants = [admit(node, int(Role.FACTORY)) for _ in range(factories)]
    design = hashlib.sha256(os.urandom(16)).digest()
    node.designs.register(designer, design, b"\x00" * 32, b"\x00" * 32)
    node.designs.grant_licence(designer, design, buyer.address, royalty_ppm)
    node.settlement.token().mint(node.sender(), buyer.address, 100 * PRICE)
    return Parties(buyer, designer, plants, design)


def four_splits(p: Parties) -> list[SplitSpec]:
    """Machining, painting and a second machining lot, then assembly after the first lot:
    3 factories, 4 splits, one dependency; shares 30 + 23 + 20 + 20 % + 5 % + 2 % = 100 %."""
    f = p.factories
    return [
        SplitSpec(f[0].address, "machining", 100, 300_000),
        SplitSpec(f[1].address, "painting", 100, 230_000),
        SplitSpec(f[0].address, "machining lot 2", 50, 200_000),
        SplitSpec(f[2].address, "assembly", 100, 200_000, (0,)),
    ]


def create(node: Node, p: Parties, price: int = PRICE, deadline: int | None = None) -> int:
    deadline = deadline or int(time.time()) + 30 * DAY
    job_id, _ = node.jobs.create(p.buyer, p.design, 100, price, deadline)
    return job_id


def split_order(
    node: Node, p: Parties, specs: list[SplitSpec] | None = None, price: int = PRICE
) -> int:
    """A created, funded and split order."""
    job_id = create(node, p, price)
    node.jobs.fund(p.buyer, job_id)
    node.jobs.split(p.buyer, job_id, specs or four_splits(p))
    return job_id


def in_production(node: Node, p: Parties, specs: list[SplitSpec] | None = None) -> int:
    """An order whose every split its factory accepted."""
    specs = specs or four_splits(p)
    job_id = split_order(node, p, specs)
    for i, spec in enumerate(specs):
        node.jobs.accept(node.sender(spec.factory), job_id, i)
    return job_id


def state(node: Node, job_id: int | None = None) -> tuple[Any, ...]:
    """What a refused call must leave untouched: the order, the escrow totals, the block's
    storage-visible figures."""
    view = node.jobs.view(job_id).as_dict() if job_id else None
    return view, node.settlement.totals().as_dict(), node.jobs.count()


def time_travel(node: Node, seconds: int) -> None:
    """Move the embedded chain's clock forward (mines a block)."""
    node.chain.advance_time(seconds)
