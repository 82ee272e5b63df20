"""Random sequences of fund / split / accept (by transaction, or a signed acceptance with
any unused nonce) / hand over / deliver / accept-delivery / finalise after the review
period / cancel / expire / withdraw on the real JobBoard and Settlement, checked against a
model after every step: escrow conservation (deposited = released + refunded + held, the
token balance matches), nobody withdraws more than credited, every credit is what the model
expects, every order the step touched has shares summing to exactly 1e6 and amounts summing
to its price, no split hands over more than its quantity, a used nonce is never accepted
again and a delivery is never finalised before its review period ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from kit import DAY, FEE_PPM, ROYALTY_PPM, Parties, parties, time_travel
from ledger.core.errors import Conflict, ContractRevert
from ledger.eth.tx import Sender
from ledger.node import Node
from ledger.orders.jobs import DEFAULT_REVIEW_PERIOD, SplitSpec
from ledger.orders.settlement import SCALE
from ledger.orders.signing import Acceptance, Handover

AVAILABLE = SCALE - ROYALTY_PPM - FEE_PPM  # what the factories share
LOT = b"lot".ljust(32, b"\x00")
OPEN = ("assigned", "accepted")
DONE = ("settled", "cancelled", "expired")
AIM = st.integers(0, 9)  # mostly aim at a job where the action is valid (see `target`)
INDEX = st.integers(0, 999)
QUANTITY = 10  # units of every split
TIMES = st.integers(1, 3)  # per-split actions act on up to 3 splits in one step


@dataclass
class JobModel:
    id: int
    price: int
    status: str = "created"
    factories: list[str] = field(default_factory=list)
    shares: list[int] = field(default_factory=list)
    deps: list[int] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    handed: list[int] = field(default_factory=list)  # units each split handed over so far
    delivered_at: list[int] = field(default_factory=list)
    deadline: int = 0
    late: bool = False  # its deadline has passed
    deposited: int = 0
    refunded: int = 0
    released: int = 0

    def amount(self, i: int) -> int:
        return self.price * self.shares[i] // SCALE

    @property
    def royalty(self) -> int:
        return self.price * ROYALTY_PPM // SCALE

    @property
    def fee(self) -> int:
        return self.price - sum(self.amount(i) for i in range(len(self.shares))) - self.royalty

    @property
    def held(self) -> int:
        return self.deposited - self.refunded - self.released


class OrderMachine(RuleBasedStateMachine):
    node: Node
    p: Parties

    def __init__(self) -> None:
        super().__init__()
        node, p = self.node, self.p
        self.jobs: list[JobModel] = []
        self.touched: set[int] = set()
        self.accounts = {
            "buyer": p.buyer,
            "designer": p.designer,
            "platform": node.sender(),
            **{f"factory{i}": f for i, f in enumerate(p.factories)},
        }
        # withdrawable now, as the model expects it (the node is shared across examples)
        self.owed = {name: node.settlement.balance(s.address) for name, s in self.accounts.items()}
        self.by_address = {s.address: name for name, s in self.accounts.items()}
        self.dirty = set(self.accounts)  # accounts whose credit changed since the last check
        self.used_nonces: set[tuple[str, int]] = set()
        self.nonce_base = 0

    # --- helpers ------------------------------------------------------------------------
    def credit(self, address: str, amount: int) -> None:
        name = self.by_address[address]
        self.owed[name] += amount
        self.dirty.add(name)

    def target(
        self,
        aim: int,
        index: int,
        valid: Callable[[JobModel, int], bool],
        per_split: bool = False,
        keen: Callable[[int], bool] = lambda aim: aim < 8,
    ) -> tuple[JobModel, int] | None:
        """A job (and split) to act on: one where the action is valid when `keen(aim)`,
        else one where it is not (so refusals are exercised too); None if there is none."""
        pairs = [(j, i) for j in self.jobs for i in (range(len(j.splits)) if per_split else [0])]
        pool = [pair for pair in pairs if valid(*pair) == keen(aim)]
        if not pool:
            return None
        job, i = pool[index % len(pool)]
        self.touched.add(job.id)
        return job, i

    def snapshot(self, job_id: int) -> tuple[object, ...]:
        jobs = self.node.jobs
        totals = self.node.settlement.totals().model_dump(mode="json")
        return totals, jobs.raw_job(job_id), jobs.raw_splits(job_id), jobs.count()

    def refused(
        self, fn: Callable[..., object], sender: object, job_id: int, *args: object
    ) -> None:
        """A call the model says is invalid: refused by the contract, nothing changed."""
        before = self.snapshot(job_id)
        with pytest.raises(ContractRevert):
            fn(sender, job_id, *args)
        assert self.snapshot(job_id) == before

    def _relay(self, sender: Sender, _job_id: int, record: Acceptance, sig: bytes) -> None:
        self.node.jobs.accept_with_signature(sender, record, sig)

    def _hand_over(self, sender: Sender, _job_id: int, record: Handover, sig: bytes) -> None:
        self.node.jobs.handover(sender, record, sig)

    def chain_time(self) -> int:
        return int(self.node.chain.w3.eth.get_block("latest")["timestamp"])

    # --- rules ----------------------------------------------------------------------------
    @initialize()
    def two_orders(self) -> None:
        """Two orders; the first split three ways (split 1 after split 0, split 2 after both)
        with two splits accepted, so a few steps reach signed acceptances, hand-overs,
        deliveries and their review."""
        self.create(10_000 * 10**6)
        self.create(1_234_567_891)
        # this example's nonce pool: a word no earlier example used (the node is shared)
        self.nonce_base = self.jobs[0].id << 8
        self.fund(aim=0, index=0, price=1)
        self.split(0, 0, [1, 1, 1], [0, 1, 2, 0], [0, 1, 3, 0], 0, 1)
        self._accept_one(0, 0)
        self._accept_one(0, 0)

    def create(self, price: int) -> None:
        node, p = self.node, self.p
        token = node.settlement.token()
        if token.balance_of(p.buyer.address) < price:
            token.mint(node.sender(), p.buyer.address, 10**12)
        deadline = self.chain_time() + 30 * DAY
        job_id, _ = node.jobs.create(p.buyer, p.design, 1, price, deadline)
        self.jobs.append(JobModel(job_id, price, deadline=deadline))
        self.touched.add(job_id)

    @rule(aim=AIM, index=INDEX, price=st.integers(min_value=1, max_value=10**10))
    def fund(self, aim: int, index: int, price: int) -> None:
        """Fund an order; place a new one first when none waits (at most 3 at a time)."""
        waiting = [j for j in self.jobs if j.status == "created" and not j.late]
        active = [j for j in self.jobs if j.status not in DONE and not j.late]
        if aim < 8 and not waiting and len(active) < 3:
            self.create(price)
        picked = self.target(aim, index, lambda j, _i: j.status == "created" and not j.late)
        if picked is None:
            return
        job = picked[0]
        if job.status != "created" or job.late:
            self.refused(self.node.jobs.fund, self.p.buyer, job.id)
            return
        self.node.jobs.fund(self.p.buyer, job.id)
        job.status, job.deposited = "funded", job.price

    @rule(
        aim=AIM,
        index=INDEX,
        weights=st.lists(st.integers(1, 100), min_size=1, max_size=3),
        factories=st.lists(st.integers(0, 2), min_size=4, max_size=4),
        deps=st.lists(st.integers(0, 15), min_size=4, max_size=4),
        broken=st.integers(0, 9),
        error=st.sampled_from([1, -1, 1000]),
    )
    def split(
        self,
        aim: int,
        index: int,
        weights: list[int],
        factories: list[int],
        deps: list[int],
        broken: int,
        error: int,
    ) -> None:
        picked = self.target(aim, index, lambda j, _i: j.status == "funded" and not j.late)
        if picked is None:
            return
        job = picked[0]
        n = len(weights)
        shares = [AVAILABLE * w // sum(weights) for w in weights]
        shares[-1] += AVAILABLE - sum(shares)
        error = error if broken == 9 else 0  # now and then shares off the 1e6 sum
        shares[0] += error
        masks = [deps[i] & ((1 << i) - 1) for i in range(n)]
        plants = [self.p.factories[factories[i]].address for i in range(n)]
        after = [tuple(b for b in range(i) if masks[i] >> b & 1) for i in range(n)]
        specs = [SplitSpec(plants[i], f"step {i}", QUANTITY, shares[i], after[i]) for i in range(n)]
        if job.status != "funded" or job.late or error:
            self.refused(self.node.jobs.split, self.p.buyer, job.id, specs)
            return
        self.node.jobs.split(self.p.buyer, job.id, specs)
        job.status, job.factories, job.shares, job.deps = "split", plants, shares, masks
        job.splits, job.received = ["assigned"] * n, [0] * n
        job.handed, job.delivered_at = [0] * n, [0] * n

    @rule(aim=AIM, index=INDEX, times=TIMES, nonces=st.lists(st.integers(0, 2), min_size=3))
    def accept(self, aim: int, index: int, times: int, nonces: list[int]) -> None:
        """Accept by transaction, or relay a signed acceptance whose nonce is drawn from a
        small pool (so used ones come round again and must be refused)."""
        for k in range(times):
            self._accept_one(aim, index + k, self.nonce_base + nonces[k] if index % 2 else None)

    def _accept_one(self, aim: int, index: int, nonce: int | None = None) -> None:
        def valid(j: JobModel, i: int) -> bool:
            return j.status == "split" and j.splits[i] == "assigned" and not j.late

        picked = self.target(aim, index, valid, per_split=True)
        if picked is None:
            return
        job, split = picked
        jobs, factory = self.node.jobs, self.node.sender(job.factories[split])
        if nonce is not None:
            share = job.shares[split] if job.shares else 0
            record = Acceptance(
                job.id, split, factory.address, share, nonce, self.chain_time() + DAY
            )
            signature = jobs.sign(factory.account, record)
            if not valid(job, split) or (factory.address, nonce) in self.used_nonces:
                self.refused(self._relay, self.p.buyer, job.id, record, signature)
                return
            jobs.accept_with_signature(self.p.buyer, record, signature)
            self.used_nonces.add((factory.address, nonce))
        elif not valid(job, split):
            self.refused(jobs.accept, factory, job.id, split)
            return
        else:
            jobs.accept(factory, job.id, split)
        job.splits[split] = "accepted"
        if all(s == "accepted" for s in job.splits):
            job.status = "production"

    @rule(aim=AIM, index=INDEX, times=TIMES)
    def deliver(self, aim: int, index: int, times: int) -> None:
        for k in range(times):
            self._deliver_one(aim, index + k)

    def _deliver_one(self, aim: int, index: int) -> None:
        def ready(j: JobModel, i: int) -> bool:
            return j.status == "production" and j.splits[i] == "accepted" and not j.late

        def valid(j: JobModel, i: int) -> bool:
            deps = [d for d in range(i) if j.deps[i] >> d & 1]
            return ready(j, i) and all(j.splits[d] in ("delivered", "paid") for d in deps)

        picked = self.target(aim, index, valid, per_split=True)
        if picked is None:
            return
        job, split = picked
        jobs, factory = self.node.jobs, self.node.sender(job.factories[split])
        if not ready(job, split):
            self.refused(jobs.deliver, factory, job.id, split)
            return
        for d in range(split):  # hand over the lots of every delivered dependency
            needed = job.deps[split] >> d & 1 and not job.received[split] >> d & 1
            if needed and job.splits[d] in ("delivered", "paid"):
                sender = self.node.sender(job.factories[d])
                left = QUANTITY - job.handed[d]
                # more than the giving split has left: refused, nothing changed
                over = Handover(job.id, d, split, LOT, left + 1, self.chain_time() + DAY)
                over_sig = jobs.sign(sender.account, over)
                self.refused(self._hand_over, factory, job.id, over, over_sig)
                # a share of its output for each dependent (at most 3 in a 4-split order)
                units = min(left, QUANTITY // 3)
                record = Handover(job.id, d, split, LOT, units, self.chain_time() + DAY)
                jobs.handover(factory, record, jobs.sign(sender.account, record))
                job.received[split] |= 1 << d
                job.handed[d] += units
        if not valid(job, split):
            self.refused(jobs.deliver, factory, job.id, split)
            return
        jobs.deliver(factory, job.id, split)
        job.splits[split] = "delivered"
        job.delivered_at[split] = self.chain_time()
        if all(s == "delivered" for s in job.splits):
            job.status = "delivered"

    @rule(aim=AIM, index=INDEX, times=TIMES)
    def accept_delivery(self, aim: int, index: int, times: int) -> None:
        for k in range(times):
            self._accept_delivery_one(aim, index + k)

    def _accept_delivery_one(self, aim: int, index: int) -> None:
        picked = self.target(aim, index, lambda j, i: j.splits[i] == "delivered", per_split=True)
        if picked is None:
            return
        job, split = picked
        buyer = self.p.buyer
        if job.splits[split] != "delivered":
            self.refused(self.node.jobs.accept_delivery, buyer, job.id, split)
            return
        self.node.jobs.accept_delivery(buyer, job.id, split)
        self.paid(job, split)

    @rule(aim=AIM, index=INDEX, wait=st.booleans())
    def finalize(self, aim: int, index: int, wait: bool) -> None:
        """Anyone finalises a delivery the buyer left alone, once its review period ended
        (now and then wait 16 days first; deadlines may pass meanwhile). Waits of 16 and 31
        days never land a deadline (30 days) or a review's end (14 days) within seconds of
        the chain's clock, where the model and the next block could disagree."""
        if wait:
            time_travel(self.node, 16 * DAY)
            now = self.chain_time()
            for j in self.jobs:
                j.late = j.late or now > j.deadline
        now = self.chain_time()

        def valid(j: JobModel, i: int) -> bool:
            return j.splits[i] == "delivered" and now > j.delivered_at[i] + DEFAULT_REVIEW_PERIOD

        picked = self.target(aim, index, valid, per_split=True)
        if picked is None:
            return
        job, split = picked
        anyone = self.p.designer
        if not valid(job, split):
            self.refused(self.node.jobs.finalize, anyone, job.id, split)
            return
        self.node.jobs.finalize(anyone, job.id, split)
        self.paid(job, split)

    def paid(self, job: JobModel, split: int) -> None:
        """The model of a delivery accepted by the buyer or finalised after review."""
        job.splits[split] = "paid"
        job.released += job.amount(split)
        self.credit(job.factories[split], job.amount(split))
        if all(s in ("paid", "refunded") for s in job.splits) and job.status != "expired":
            job.status = "settled"
            job.released += job.royalty + job.fee
            self.credit(self.p.designer.address, job.royalty)
            self.credit(self.node.sender().address, job.fee)

    @rule(aim=AIM, index=INDEX)
    def cancel(self, aim: int, index: int) -> None:
        def valid(j: JobModel, _i: int) -> bool:
            return j.status in ("created", "funded", "split")

        # rarely cancel a live order (hypothesis draws the bounds 0 and 9 most often)
        picked = self.target(aim, index, valid, keen=lambda aim: aim == 4)
        if picked is None:
            return
        job = picked[0]
        if not valid(job, 0):
            self.refused(self.node.jobs.cancel, self.p.buyer, job.id)
            return
        self.node.jobs.cancel(self.p.buyer, job.id)
        if job.status != "created":
            job.refunded = job.price
            self.credit(self.p.buyer.address, job.price)
        job.status, job.splits = "cancelled", ["refunded"] * len(job.splits)

    @rule(aim=AIM, index=INDEX, tick=st.integers(0, 29))
    def expire(self, aim: int, index: int, tick: int) -> None:
        """Now and then let every deadline pass first, then expire an order (or try to)."""
        if tick == 17:  # (hypothesis favours the bounds 0 and 29)
            time_travel(self.node, 31 * DAY)
            for job in self.jobs:
                job.late = True

        def valid(j: JobModel, _i: int) -> bool:
            return j.status in ("created", "funded", "split", "production") and j.late

        picked = self.target(aim, index, valid, keen=lambda aim: aim < 5)
        if picked is None:
            return
        job = picked[0]
        if not valid(job, 0):
            self.refused(self.node.jobs.expire, self.p.buyer, job.id)
            return
        self.node.jobs.expire(self.p.buyer, job.id)
        refund = 0
        if job.status == "funded":
            refund = job.price
        elif job.status in ("split", "production"):
            for i, s in enumerate(job.splits):
                if s in OPEN:
                    job.splits[i] = "refunded"
                    refund += job.amount(i)
            refund += job.royalty + job.fee
        job.status, job.refunded = "expired", job.refunded + refund
        self.credit(self.p.buyer.address, refund)

    @rule(who=st.sampled_from(["buyer", "designer", "platform", "factory0", "factory1"]))
    def withdraw(self, who: str) -> None:
        sender, owed = self.accounts[who], self.owed[who]
        token = self.node.settlement.token()
        if owed == 0:
            with pytest.raises(Conflict):
                self.node.settlement.withdraw(sender)
            return
        wallet = token.balance_of(sender.address)
        self.node.settlement.withdraw(sender)
        assert token.balance_of(sender.address) - wallet == owed
        self.owed[who] = 0
        self.dirty.add(who)

    # --- invariants -------------------------------------------------------------------
    @invariant()
    def escrow_is_conserved(self) -> None:
        totals = self.node.settlement.totals()
        assert totals.deposited == totals.released + totals.refunded + totals.held
        assert totals.balance == totals.held + totals.released + totals.refunded - totals.withdrawn

    @invariant()
    def credits_are_what_the_model_expects(self) -> None:
        for name in self.dirty:
            credited, withdrawn = self.node.settlement.account(self.accounts[name].address)
            assert withdrawn <= credited
            assert credited - withdrawn == self.owed[name], name
        self.dirty.clear()

    @invariant()
    def no_split_hands_over_more_than_it_made(self) -> None:
        for job in (j for j in self.jobs if j.id in self.touched and j.handed):
            on_chain = [s.handed_quantity for s in self.node.jobs.raw_splits(job.id)]
            assert on_chain == job.handed and max(on_chain) <= QUANTITY

    @invariant()
    def touched_orders_share_exactly_one_million(self) -> None:
        jobs, settlement = self.node.jobs, self.node.settlement
        for job in (j for j in self.jobs if j.id in self.touched):
            escrow = settlement.escrow(job.id)
            assert escrow.held == job.held, (job, escrow)
            if not job.shares:
                continue
            shares = [s.share_ppm for s in jobs.raw_splits(job.id)]
            assert shares == job.shares
            assert sum(shares) + escrow.royalty_ppm + escrow.fee_ppm == SCALE
            amounts = [settlement.payee(job.id, i)[3] for i in range(len(shares))]
            assert sum(amounts) + job.royalty + job.fee == job.price
            assert 0 <= job.fee - job.price * FEE_PPM // SCALE <= len(shares) + 1  # rounding dust
        self.touched.clear()


def test_random_order_sequences_conserve_escrow_and_shares(node: Node) -> None:
    OrderMachine.node = node
    OrderMachine.p = parties(node)
    run_state_machine_as_test(
        OrderMachine,
        settings=settings(
            max_examples=4,  # hypothesis keeps its first ~10 examples to a step or two
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
