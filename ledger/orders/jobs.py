"""Typed access to the JobBoard: orders, their splits by process step, custody and payouts.

`JobsClient.view` assembles the readable picture of an order from the JobBoard and the
Settlement: its state, each split's factory, step, dependencies, state and who holds its
lots, and every payee's share and payout.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple

from eth_account.signers.local import LocalAccount
from pydantic import Field, computed_field
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import TxReceipt

from ledger.core.abi import MAX_SPLITS, SolidityEnum, bytes32, checksum, solidity_enum
from ledger.core.errors import ChainUnavailable, InvalidInput, NotFound, field_name
from ledger.core.types import Label, Record
from ledger.eth import eip712
from ledger.eth.chain import Chain
from ledger.eth.contract import call
from ledger.eth.tx import Sender
from ledger.orders import signing as job_signing
from ledger.orders.settlement import SCALE, EscrowStatus, SettlementClient, Token
from ledger.orders.signing import Acceptance, Handover

DEFAULT_REVIEW_PERIOD = 14 * 86_400  # JobBoard.DEFAULT_REVIEW_PERIOD
MAX_REVIEW_PERIOD = 365 * 86_400  # JobBoard.MAX_REVIEW_PERIOD


@solidity_enum
class JobStatus(SolidityEnum):
    NONE = 0
    CREATED = 1
    FUNDED = 2
    SPLIT = 3
    IN_PRODUCTION = 4
    DELIVERED = 5
    ACCEPTED = 6
    SETTLED = 7
    CANCELLED = 8
    EXPIRED = 9


@solidity_enum
class SplitStatus(SolidityEnum):
    NONE = 0
    ASSIGNED = 1
    ACCEPTED = 2
    DELIVERED = 3
    PAID = 4
    RULED = 5
    REFUNDED = 6


class JobRecord(NamedTuple):
    """`JobBoard.job(id)` as stored."""

    buyer: str
    deadline: int
    status: int
    split_count: int
    accepted_count: int
    delivered_count: int
    closed_count: int
    token: str
    quantity: int
    royalty_ppm: int
    designer: str
    review_period: int
    price: int
    split_block: int
    design_id: bytes


class SplitRecord(NamedTuple):
    """`JobBoard.splitOf(id, split)`; masks have bit i for split i. The step label is not
    in contract storage: `JobsClient.step_labels` reads it from the `SplitAssigned` events."""

    factory: str
    status: int
    depends_on: int
    quantity: int
    received: int
    share_ppm: int
    delivered_at: int
    handed_to: int
    handed_quantity: int


def label32(text: str | bytes, what: str = "label") -> bytes:
    """A short text label (≤ 32 UTF-8 bytes, zero-padded) or 0x + 64 hex digits as bytes32."""
    if isinstance(text, bytes):
        raw = text
    elif re.fullmatch(r"0x[0-9a-fA-F]{64}", text):
        return bytes.fromhex(text[2:])
    else:
        raw = text.encode()
    if not raw or len(raw) > 32:
        raise InvalidInput(
            f"{what} {text!r} must be 1 to 32 bytes of text, or 0x + 64 hex digits",
            field=field_name(what),
        )
    return raw.ljust(32, b"\x00")


def show32(raw: bytes) -> str:
    """The text of a label32, or its hex when it is not text."""
    text = raw.rstrip(b"\x00")
    try:
        decoded = text.decode()
    except UnicodeDecodeError:
        return "0x" + raw.hex()
    if decoded and decoded.isprintable() and b"\x00" not in text:
        return decoded
    return "0x" + raw.hex()


def mask(indices: Iterable[int]) -> int:
    bits = 0
    for i in indices:
        bits |= 1 << i
    return bits


def indices(bits: int) -> list[int]:
    return [i for i in range(MAX_SPLITS) if bits >> i & 1]


@dataclass(frozen=True)
class SplitSpec:
    """What the buyer asks of one split; `depends_on` lists earlier split ids."""

    factory: str
    step: str
    quantity: int
    share_ppm: int
    depends_on: tuple[int, ...] = ()

    def as_tuple(self, index: int) -> tuple[str, bytes, int, int, int]:
        if any(not 0 <= d < index for d in self.depends_on):
            raise InvalidInput(
                f"split {index} may depend only on earlier splits (0..{index - 1}), "
                f"not on {list(self.depends_on)}",
                field=f"splits.{index}.depends_on",
            )
        if not 0 < self.quantity < 2**64:
            raise InvalidInput(
                f"split {index}: quantity must be a positive 64-bit integer",
                field=f"splits.{index}.quantity",
            )
        if not 0 < self.share_ppm < SCALE:
            raise InvalidInput(
                f"split {index}: share must be 1..999999 ppm", field=f"splits.{index}.share_ppm"
            )
        return (
            checksum(self.factory, "factory"),
            label32(self.step, "step"),
            self.quantity,
            self.share_ppm,
            mask(self.depends_on),
        )

    @classmethod
    def parse(cls, text: str) -> SplitSpec:
        """`factory=0x…,step=machining,quantity=100,share=25%,after=0+1` (share in ppm or %)."""
        fields: dict[str, str] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise InvalidInput(f"split {text!r}: expected key=value pairs, got {part!r}")
            fields[key.strip().lower()] = value.strip()
        unknown = set(fields) - {"factory", "step", "quantity", "share", "after"}
        missing = {"factory", "step", "quantity", "share"} - set(fields)
        if unknown or missing:
            raise InvalidInput(
                f"split {text!r}: needs factory, step, quantity, share (and optionally after)"
                + (f"; unknown {sorted(unknown)}" if unknown else "")
            )
        after = tuple(int(x) for x in fields.get("after", "").split("+") if x.strip().isdigit())
        if fields.get("after") and len(after) != len(fields["after"].split("+")):
            raise InvalidInput(f"split {text!r}: after= lists split ids joined by +, e.g. 0+1")
        if not fields["quantity"].isdigit():
            raise InvalidInput(f"split {text!r}: quantity must be a whole number")
        return cls(
            factory=fields["factory"],
            step=fields["step"],
            quantity=int(fields["quantity"]),
            share_ppm=parse_share(fields["share"]),
            depends_on=after,
        )


def parse_share(text: str | int) -> int:
    """'250000' (ppm) or '25%' → 250000."""
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            value = float(raw[:-1]) * SCALE / 100
            if value != int(value):
                raise ValueError
            return int(value)
        return int(raw)
    except ValueError:
        raise InvalidInput(f"share {text!r} must be parts per million or a percentage") from None


class SplitView(Record):
    """One split of an order: its factory, step, state, who holds its lots, its payout."""

    id: int
    factory: str
    step: str
    quantity: int
    share_ppm: int
    amount: int
    token: Token = Field(exclude=True)
    depends_on: list[int]
    status: Annotated[
        Label[SplitStatus],
        Field(description="assigned | accepted | delivered | paid | ruled | refunded"),
    ]
    received_from: list[int]
    handed_to: list[int]
    custody: list[str] = Field(description="who holds this split's output lots")
    payout: int | None
    handed_quantity: int = Field(default=0, description="units of its output handed over so far")
    delivered_at: int | None = Field(
        default=None, description="when it was delivered (unix seconds)"
    )
    review_ends: int | None = Field(
        default=None,
        description="a delivered split: after this anyone may finalise it as accepted",
    )

    @computed_field
    @property
    def amount_text(self) -> str:
        return self.token.format(self.amount)


class Payout(Record):
    """One payee of an order: who, why, what share, how much, and where the money is."""

    account: str
    role: str
    share_ppm: int
    amount: int
    token: Token = Field(exclude=True)
    state: str = Field(description="held | credited | refunded")

    @computed_field
    @property
    def amount_text(self) -> str:
        return self.token.format(self.amount)


class EscrowFigures(Record):
    """What an order's escrow took in and where it went, in token units."""

    deposited: int
    held: int
    released: int
    refunded: int


class JobView(Record):
    """The readable picture of an order: state, splits, custody, shares and payouts."""

    id: int
    status: Annotated[
        Label[JobStatus],
        Field(
            description="created | funded | split | in_production | delivered | accepted | "
            "settled | cancelled | expired"
        ),
    ]
    buyer: str
    design_id: str
    designer: str
    royalty_ppm: int
    platform: str
    fee_ppm: int = Field(serialization_alias="platform_fee_ppm")
    token: Token
    quantity: int
    price: int
    deadline: int
    review_period: int = Field(description="seconds the buyer has to review each delivery")
    splits: list[SplitView]
    payouts: list[Payout]
    deposited: int = Field(exclude=True)
    held: int = Field(exclude=True)
    refunded: int = Field(exclude=True)
    released: int = Field(default=0, exclude=True)

    @property
    def shares_total(self) -> int:
        return sum(s.share_ppm for s in self.splits) + self.royalty_ppm + self.fee_ppm

    @computed_field
    @property
    def price_text(self) -> str:
        return self.token.format(self.price)

    @computed_field
    @property
    def shares_total_ppm(self) -> int | None:
        """The splits' shares, the royalty and the fee: 1,000,000 once split; None before."""
        return self.shares_total if self.splits else None

    @computed_field
    @property
    def escrow(self) -> EscrowFigures:
        return EscrowFigures(
            deposited=self.deposited, held=self.held, released=self.released, refunded=self.refunded
        )


class JobSummary(Record):
    """One line of the order list."""

    id: int
    buyer: str
    status: Label[JobStatus]
    price: int
    token: str
    split_count: int
    deadline: int


class JobsClient:
    def __init__(self, contract: Contract, settlement: SettlementClient, chain: Chain) -> None:
        self.contract = contract
        self.settlement = settlement
        self.chain = chain

    @property
    def address(self) -> str:
        return str(self.contract.address)

    # --- reads -----------------------------------------------------------------------
    def count(self) -> int:
        return int(call(self.contract.functions.jobCount()))

    def raw_job(self, job_id: int) -> JobRecord:
        if job_id <= 0 or job_id > self.count():
            raise NotFound(f"there is no job {job_id}")
        return JobRecord(*call(self.contract.functions.job(job_id)))

    def raw_splits(self, job_id: int) -> list[SplitRecord]:
        return [SplitRecord(*s) for s in call(self.contract.functions.splits(job_id))]

    def step_labels(self, job_id: int, job: JobRecord | None = None) -> list[bytes]:
        """The step label of each split of order `job_id`, from its `SplitAssigned` events:
        one `eth_getLogs` of the block the order was split in. Not kept between calls: a
        chain rewound or reorganised may split the order again, differently, at that
        block."""
        j = job or self.raw_job(job_id)
        if not j.split_block:
            return []
        logs = self.contract.events.SplitAssigned().get_logs(
            from_block=j.split_block,
            to_block=j.split_block,
            argument_filters={"jobId": job_id},
        )
        by_split = {int(e["args"]["splitId"]): bytes(e["args"]["step"]) for e in logs}
        if sorted(by_split) != list(range(j.split_count)):
            raise ChainUnavailable(
                f"the chain node returned {len(by_split)} SplitAssigned events of order "
                f"{job_id} at block {j.split_block}, not its {j.split_count} splits"
            )
        return [by_split[i] for i in range(j.split_count)]

    def status(self, job_id: int) -> JobStatus:
        return JobStatus(self.raw_job(job_id).status)

    def split_record(self, job_id: int, split_id: int) -> SplitRecord:
        splits = self.raw_splits(job_id) if self.raw_job(job_id) else []
        if not 0 <= split_id < len(splits):
            raise NotFound(f"job {job_id} has no split {split_id}")
        return splits[split_id]

    def nonce_used(self, factory: str, nonce: int) -> bool:
        """Whether acceptance nonce `nonce` of `factory` was used or revoked (unordered nonces)."""
        fn = self.contract.functions.isNonceUsed(checksum(factory, "factory"), nonce)
        return bool(call(fn))

    def review_ends(self, job_id: int, split_id: int) -> int | None:
        """When the buyer's review of a delivered split ends (None if not delivered)."""
        return int(call(self.contract.functions.reviewEnds(job_id, split_id))) or None

    def list_jobs(self, party: str | None = None) -> list[JobSummary]:
        """Every job, or those where `party` is the buyer or a split's factory."""
        out = []
        who = checksum(party) if party else None
        for job_id in range(1, self.count() + 1):
            j = self.raw_job(job_id)
            if who and j.buyer != who and who not in {s.factory for s in self.raw_splits(job_id)}:
                continue
            status = JobStatus(j.status)
            out.append(
                JobSummary(
                    id=job_id,
                    buyer=j.buyer,
                    status=status,
                    price=j.price,
                    token=j.token,
                    split_count=j.split_count,
                    deadline=j.deadline,
                )
            )
        return out

    def view(self, job_id: int) -> JobView:
        j = self.raw_job(job_id)
        buyer, designer, royalty, price = j.buyer, j.designer, j.royalty_ppm, j.price
        status = JobStatus(j.status)
        token = self.settlement.token(j.token).info
        escrow = self.settlement.escrow(job_id)
        fee_ppm = escrow.fee_ppm if escrow.deposited else self.settlement.platform_fee_ppm()
        platform = self.settlement.platform()
        raw_splits = self.raw_splits(job_id)
        steps = self.step_labels(job_id, j)
        rulings = (
            self.settlement.rulings(job_id)
            if any(s.status == SplitStatus.RULED for s in raw_splits)
            else {}
        )
        splits = [
            self._split_view(
                i, s, steps[i], raw_splits, buyer, price, rulings, j.review_period, token
            )
            for i, s in enumerate(raw_splits)
        ]
        payouts = self._payouts(
            status, splits, escrow, buyer, designer, royalty, platform, price, token
        )
        released = sum(p.amount for p in payouts if p.state == "credited" and p.role != "refund")
        refunded = escrow.deposited - escrow.held - released if escrow.deposited else 0
        return JobView(
            id=job_id,
            buyer=buyer,
            design_id="0x" + bytes(j.design_id).hex(),
            designer=designer,
            royalty_ppm=royalty,
            fee_ppm=fee_ppm,
            platform=platform,
            token=token,
            quantity=j.quantity,
            price=price,
            deadline=j.deadline,
            review_period=j.review_period,
            status=status,
            splits=splits,
            payouts=payouts,
            deposited=escrow.deposited,
            held=escrow.held,
            refunded=refunded,
            released=released,
        )

    @staticmethod
    def _split_view(
        i: int,
        raw: SplitRecord,
        step: bytes,
        all_splits: Sequence[SplitRecord],
        buyer: str,
        price: int,
        rulings: dict[int, int],
        review_period: int,
        token: Token,
    ) -> SplitView:
        factory, depends, quantity, received = (
            raw.factory,
            raw.depends_on,
            raw.quantity,
            raw.received,
        )
        handed, share = raw.handed_to, raw.share_ppm
        status = SplitStatus(raw.status)
        delivered_at = raw.delivered_at or None
        review_ends = (
            delivered_at + review_period
            if delivered_at is not None and status is SplitStatus.DELIVERED
            else None
        )
        dependents = [j for j, s in enumerate(all_splits) if s.depends_on >> i & 1]
        handed_to = indices(handed)
        custody: list[str] = []
        if status in (SplitStatus.ASSIGNED, SplitStatus.ACCEPTED, SplitStatus.DELIVERED) or (
            status is SplitStatus.PAID and dependents
        ):
            custody = [all_splits[j].factory for j in handed_to]
            if not dependents or set(handed_to) != set(dependents):
                custody.insert(0, factory)
        if status is SplitStatus.PAID and not dependents:
            custody = [buyer]
        amount = price * share // SCALE
        payout = {SplitStatus.PAID: amount, SplitStatus.REFUNDED: 0}.get(status, rulings.get(i))
        return SplitView(
            id=i,
            factory=factory,
            step=show32(step),
            quantity=quantity,
            share_ppm=share,
            amount=amount,
            token=token,
            depends_on=indices(depends),
            status=status,
            received_from=indices(received),
            handed_to=handed_to,
            custody=list(dict.fromkeys(custody)),
            payout=payout,
            handed_quantity=raw.handed_quantity,
            delivered_at=delivered_at,
            review_ends=review_ends,
        )

    @staticmethod
    def _payouts(
        status: JobStatus,
        splits: list[SplitView],
        escrow: Any,
        buyer: str,
        designer: str,
        royalty_ppm: int,
        platform: str,
        price: int,
        token: Token,
    ) -> list[Payout]:
        def payout(account: str, role: str, share_ppm: int, amount: int, state: str) -> Payout:
            return Payout(
                account=account,
                role=role,
                share_ppm=share_ppm,
                amount=amount,
                token=token,
                state=state,
            )

        if not splits:
            if escrow.deposited and status in (JobStatus.CANCELLED, JobStatus.EXPIRED):
                return [payout(buyer, "refund", 0, escrow.deposited, "credited")]
            return []
        out: list[Payout] = []
        refund = 0
        for s in splits:
            if s.status is SplitStatus.PAID:
                state = "credited"
            elif s.status is SplitStatus.REFUNDED:
                state, refund = "refunded", refund + s.amount
            elif s.status is SplitStatus.RULED:
                state, refund = "credited", refund + s.amount - (s.payout or 0)
            else:
                state = "held"
            amount = (
                s.payout if s.status is SplitStatus.RULED and s.payout is not None else s.amount
            )
            role = f"factory of split {s.id} ({s.step})"
            out.append(payout(s.factory, role, s.share_ppm, amount, state))
        royalty = price * royalty_ppm // SCALE
        fee = price - sum(s.amount for s in splits) - royalty
        fees_refunded = status in (JobStatus.CANCELLED, JobStatus.EXPIRED)
        fees_state = (
            "refunded"
            if fees_refunded
            else "credited"
            if escrow.status == EscrowStatus.CLOSED
            else "held"
        )
        if fees_refunded:
            refund += royalty + fee
        if royalty_ppm:
            out.append(payout(designer, "designer royalty", royalty_ppm, royalty, fees_state))
        out.append(payout(platform, "platform fee", escrow.fee_ppm, fee, fees_state))
        if refund:
            out.append(payout(buyer, "refund", 0, refund, "credited"))
        return out

    # --- writes ----------------------------------------------------------------------
    def create(
        self,
        sender: Sender,
        design_id: str | bytes,
        quantity: int,
        price: int,
        deadline: int,
        token: str | None = None,
        spec_hash: str | bytes | None = None,
        review_period: int | None = None,
    ) -> tuple[int, TxReceipt]:
        """Place an order; `token` None pays in the Settlement's default token, and
        `review_period` None gives the buyer the default 14 days to review each delivery."""
        if not 0 < quantity < 2**64:
            raise InvalidInput("quantity must be a positive 64-bit integer", field="quantity")
        if not 0 < price < 2**128:
            raise InvalidInput("price must be positive", field="price")
        if not 0 < deadline < 2**48:
            raise InvalidInput("deadline must be a unix time", field="deadline")
        if review_period is not None and not 0 < review_period <= MAX_REVIEW_PERIOD:
            raise InvalidInput(
                f"the review period must be 1 s to 365 days (got {review_period} s)",
                field="review_period",
            )
        erc20 = self.settlement.token(token)
        fn = self.contract.functions.createJob(
            bytes32(design_id, "design id"),
            erc20.address,
            quantity,
            price,
            deadline,
            bytes32(spec_hash, "spec hash"),
            review_period or 0,
        )
        receipt = sender.transact(fn)
        events = self.contract.events.JobCreated().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["jobId"]), receipt

    def fund(self, sender: Sender, job_id: int) -> TxReceipt:
        """Approve the Settlement for the price if needed, then pay it into escrow."""
        j = self.raw_job(job_id)
        erc20, price = self.settlement.token(j.token), j.price
        if j.buyer == sender.address and JobStatus(j.status) is JobStatus.CREATED:
            have = erc20.balance_of(sender.address)
            if have < price:
                raise InvalidInput(
                    f"{sender.address} holds {erc20.info.format(have)}, the price is "
                    f"{erc20.info.format(price)}",
                    field="price",
                )
            if erc20.allowance(sender.address, self.settlement.address) < price:
                erc20.approve(sender, self.settlement.address, price)
        return sender.transact(self.contract.functions.fund(job_id))

    def split(self, sender: Sender, job_id: int, specs: Sequence[SplitSpec]) -> TxReceipt:
        if not 0 < len(specs) <= MAX_SPLITS:
            raise InvalidInput(
                f"an order needs 1 to {MAX_SPLITS} splits, got {len(specs)}", field="splits"
            )
        args = [spec.as_tuple(i) for i, spec in enumerate(specs)]
        return sender.transact(self.contract.functions.split(job_id, args))

    def accept(self, sender: Sender, job_id: int, split_id: int) -> TxReceipt:
        return sender.transact(self.contract.functions.acceptSplit(job_id, split_id))

    def acceptance(self, job_id: int, split_id: int, deadline: int | None = None) -> Acceptance:
        """The acceptance its factory signs for split `split_id`. Nonces are unordered: the
        split's own nonce (`job_id * 256 + split_id`), or a random one if that was revoked, so
        acceptances for different orders never depend on one another."""
        split = self.split_record(job_id, split_id)
        deadline = deadline or job_signing.default_deadline()
        nonce = (job_id << 8) | split_id
        if self.nonce_used(split.factory, nonce):
            nonce = secrets.randbits(255) | 1 << 255  # clear of every split's own nonce
        return Acceptance(job_id, split_id, split.factory, split.share_ppm, nonce, deadline)

    def typed_data(self, record: Acceptance | Handover) -> dict[str, Any]:
        return record.typed_data(self.chain.chain_id, self.address)

    def sign(self, account: LocalAccount, record: Acceptance | Handover) -> bytes:
        return eip712.sign(account, self.typed_data(record))

    def accept_with_signature(
        self, relayer: Sender, acceptance: Acceptance, signature: bytes
    ) -> TxReceipt:
        """Relay a factory's signed acceptance (any member may pay the gas)."""
        fn = self.contract.functions.acceptSplitWithSig(
            acceptance.job_id,
            acceptance.split_id,
            acceptance.nonce,
            acceptance.deadline,
            eip712.signature_bytes(signature),
        )
        return relayer.transact(fn)

    def revoke_nonce(self, sender: Sender, nonce: int) -> TxReceipt:
        """Revoke one of the sender's acceptance nonces: a signature using it is void."""
        if not 0 <= nonce < 2**256:
            raise InvalidInput("a nonce is a 256-bit unsigned integer", field="nonce")
        fn = self.contract.functions.invalidateNonces(nonce >> 8, 1 << (nonce & 0xFF))
        return sender.transact(fn)

    def handover_factories(self, record: Handover) -> tuple[str, str]:
        """The factories of the hand-over's sending (`from`) and receiving (`to`) splits."""
        return (
            self.split_record(record.job_id, record.from_split).factory,
            self.split_record(record.job_id, record.to_split).factory,
        )

    def handover_side(self, record: Handover, signer: str, role: str | None = None) -> str:
        """`from` or `to`: the side of the hand-over `signer` consents for. A factory signs
        for its own split; a device key says which side it signs for (`role`)."""
        sending, receiving = self.handover_factories(record)
        side = {sending: "from", receiving: "to"}.get(signer, role)
        if side not in ("from", "to"):
            raise InvalidInput(
                f"{signer} is neither factory of the hand-over: a device key says which side "
                "it signs for (from or to)",
                field="role",
            )
        return side

    def sort_handover_signatures(
        self, record: Handover, signed: Iterable[tuple[str | bytes, str | None]]
    ) -> tuple[str | bytes, str | bytes]:
        """(from, to) signatures from signatures in any order, each with the side its
        record claims (`role`, only needed for a device key): a signature recovering to a
        factory goes to that factory's side whatever the record says; a later signature
        for a side replaces an earlier one; a missing side stays empty."""
        sending, receiving = self.handover_factories(record)
        typed = self.typed_data(record)
        sides: dict[str, str | bytes] = {"from": b"", "to": b""}
        for signature, role in signed:
            signer = eip712.recover(typed, signature)
            side = {sending: "from", receiving: "to"}.get(signer or "")
            sides[side or ("from" if role == "from" else "to")] = signature
        return sides["from"], sides["to"]

    def handover(
        self,
        sender: Sender,
        record: Handover,
        from_signature: str | bytes = b"",
        to_signature: str | bytes = b"",
    ) -> TxReceipt:
        """Hand lots over. The chain needs both factories' signatures; a side left empty is
        signed here only when `sender` is that side's factory (its own consent, with its own
        key); any other empty side stays empty and the chain refuses the hand-over."""
        from_sig = eip712.signature_bytes(from_signature, "sender's signature")
        to_sig = eip712.signature_bytes(to_signature, "receiver's signature")
        if not from_sig or not to_sig:
            factories = {i: s.factory for i, s in enumerate(self.raw_splits(record.job_id))}
            if not from_sig and factories.get(record.from_split) == sender.address:
                from_sig = self.sign(sender.account, record)
            if not to_sig and factories.get(record.to_split) == sender.address:
                to_sig = self.sign(sender.account, record)
        fn = self.contract.functions.handover(record.as_tuple(), from_sig, to_sig)
        return sender.transact(fn)

    def deliver(
        self, sender: Sender, job_id: int, split_id: int, evidence_hash: str | bytes | None = None
    ) -> TxReceipt:
        fn = self.contract.functions.deliver(
            job_id, split_id, bytes32(evidence_hash, "evidence hash")
        )
        return sender.transact(fn)

    def accept_delivery(self, sender: Sender, job_id: int, split_id: int) -> TxReceipt:
        return sender.transact(self.contract.functions.acceptDelivery(job_id, split_id))

    def finalize(self, sender: Sender, job_id: int, split_id: int) -> TxReceipt:
        """Finalise a delivery as accepted after the buyer's review period (anyone may)."""
        return sender.transact(self.contract.functions.finalizeDelivery(job_id, split_id))

    def cancel(self, sender: Sender, job_id: int) -> TxReceipt:
        return sender.transact(self.contract.functions.cancel(job_id))

    def expire(self, sender: Sender, job_id: int) -> TxReceipt:
        return sender.transact(self.contract.functions.expire(job_id))
