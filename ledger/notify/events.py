"""The notifications a node tells its members, defined once.

Each `EventType` says what happened or what waits for someone; a `Notification` names
its recipients (member addresses), the job / split / dispute it is about, and a subject
(the API path of that thing) and a portal link. Its `key` identifies the fact it reports
(e.g. `split.assigned:3:1`), so deriving it again (after a restart or a re-read of the
chain) never makes a second notification.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from eth_utils import to_checksum_address


class EventType(StrEnum):
    """What a member can be told; the value is the wire name (webhooks, SSE `event:`)."""

    SPLIT_ASSIGNED = "split.assigned"
    ACCEPTANCE_PENDING = "acceptance.pending"
    HANDOVER_PENDING = "handover.pending"
    DELIVERY_AWAITING = "delivery.awaiting"
    REVIEW_CLOSING = "review.closing"
    DEADLINE_CLOSING = "deadline.closing"
    DISPUTE_OPENED = "dispute.opened"
    VOTE_DUE = "vote.due"
    DISPUTE_RULED = "dispute.ruled"
    FUNDS_WITHDRAWABLE = "funds.withdrawable"
    ANCHOR_STALLED = "anchor.stalled"
    STEP_ANCHORED = "step.anchored"

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]


DESCRIPTIONS: dict[EventType, str] = {
    EventType.SPLIT_ASSIGNED: "a split of an order was assigned to the factory (to the factory)",
    EventType.ACCEPTANCE_PENDING: "the factory's signed acceptance of a split is awaited "
    "(to the factory)",
    EventType.HANDOVER_PENDING: "a split was delivered and its lots wait to be handed over to "
    "a dependent split: both factories sign the hand-over (to both factories)",
    EventType.DELIVERY_AWAITING: "a split was delivered and awaits the buyer's acceptance "
    "(to the buyer)",
    EventType.REVIEW_CLOSING: "the buyer's review window of a delivery closes within the lead "
    "time (to the buyer and the factory)",
    EventType.DEADLINE_CLOSING: "an order's delivery deadline is within the lead time and it is "
    "not delivered (to the buyer and the factories still producing)",
    EventType.DISPUTE_OPENED: "a dispute was opened on a split (to the claimant and respondent)",
    EventType.VOTE_DUE: "a dispute needs auditors' votes (to every auditor not a party)",
    EventType.DISPUTE_RULED: "a dispute was ruled, or lapsed without a ruling (to both parties)",
    EventType.FUNDS_WITHDRAWABLE: "an amount was credited to the member's balance in the "
    "Settlement and can be withdrawn (to the member credited)",
    EventType.ANCHOR_STALLED: "this node cannot anchor a split's journaled steps (to the "
    "split's factory and the node's operator)",
    EventType.STEP_ANCHORED: "a range of a split's steps was anchored on chain (to the factory "
    "and the buyer)",
}


def parse_types(names: list[str]) -> list[EventType]:
    """Event type names (or `*` for all) as types; unknown names raise ValueError."""
    if "*" in names:
        return list(EventType)
    return [EventType(n) for n in dict.fromkeys(names)]


@dataclass(frozen=True)
class Notification:
    """One thing to tell: derived once per `key`, stored in the outbox with its id."""

    type: EventType
    key: str
    recipients: tuple[str, ...]
    job_id: int | None = None
    split_id: int | None = None
    dispute_id: int | None = None
    block: int | None = None
    time: int | None = None  # chain time of the fact (unix seconds)
    data: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def make(
        type_: EventType,
        key_parts: tuple[object, ...],
        recipients: list[str] | tuple[str, ...],
        **kw: Any,
    ) -> Notification:
        key = ":".join([type_.value, *(str(p) for p in key_parts)])
        people = tuple(dict.fromkeys(to_checksum_address(r) for r in recipients if int(r, 16)))
        return Notification(type_, key, people, **kw)

    @property
    def subject(self) -> str:
        """The API path of what the notification is about."""
        if self.dispute_id is not None:
            return f"/disputes/{self.dispute_id}"
        if self.job_id is not None and self.split_id is not None:
            return f"/jobs/{self.job_id}/splits/{self.split_id}"
        if self.job_id is not None:
            return f"/jobs/{self.job_id}"
        return "/status"

    @property
    def link(self) -> str:
        """Where the portal shows it."""
        if self.dispute_id is not None:
            return "#/disputes"
        if self.job_id is not None:
            return f"#/orders/{self.job_id}"
        return "#/work"

    def body(self, outbox_id: int, created_at: float, recipient: str) -> dict[str, Any]:
        """What a recipient receives: the other recipients are not named."""
        return {
            "id": outbox_id,
            "type": self.type.value,
            "key": self.key,
            "created_at": int(created_at),
            "recipient": recipient,
            "subject": self.subject,
            "link": self.link,
            "job_id": self.job_id,
            "split_id": self.split_id,
            "dispute_id": self.dispute_id,
            "block": self.block,
            "time": self.time,
            "data": self.data,
        }
