"""EIP-712 records of orders: a factory's acceptance of its split and a custody hand-over.

The typed data built here is the `eth_signTypedData_v4` JSON (types, primaryType, domain,
message), so a wallet signs it unchanged; eth-account's `encode_typed_data` signs and
recovers it in Python. The domain is name "cofab", version "1", the chain id and the
JobBoard's address, so a signature is good for one contract on one chain only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from ledger.core.errors import InvalidInput
from ledger.eth.eip712 import DOMAIN_TYPE, domain

ACCEPT_SPLIT_TYPE = [
    {"name": "jobId", "type": "uint256"},
    {"name": "splitId", "type": "uint256"},
    {"name": "factory", "type": "address"},
    {"name": "sharePpm", "type": "uint32"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
HANDOVER_TYPE = [
    {"name": "jobId", "type": "uint256"},
    {"name": "fromSplit", "type": "uint256"},
    {"name": "toSplit", "type": "uint256"},
    {"name": "lot", "type": "bytes32"},
    {"name": "quantity", "type": "uint64"},
    {"name": "deadline", "type": "uint256"},
]
ACCEPT_SPLIT_TYPE_STRING = (
    "AcceptSplit(uint256 jobId,uint256 splitId,address factory,uint32 sharePpm,uint256 nonce,"
    "uint256 deadline)"
)
HANDOVER_TYPE_STRING = (
    "Handover(uint256 jobId,uint256 fromSplit,uint256 toSplit,bytes32 lot,uint64 quantity,"
    "uint256 deadline)"
)
DEFAULT_SIGNATURE_TTL = 24 * 3600  # a signed record is valid for a day unless told otherwise


def default_deadline(ttl: int = DEFAULT_SIGNATURE_TTL) -> int:
    return int(time.time()) + ttl


@dataclass(frozen=True)
class Acceptance:
    """A factory's acceptance of split `split_id` of job `job_id` at `share_ppm`."""

    job_id: int
    split_id: int
    factory: str
    share_ppm: int
    nonce: int
    deadline: int

    def message(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "splitId": self.split_id,
            "factory": to_checksum_address(self.factory),
            "sharePpm": self.share_ppm,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    def typed_data(self, chain_id: int, job_board: str) -> dict[str, Any]:
        return {
            "types": {"EIP712Domain": DOMAIN_TYPE, "AcceptSplit": ACCEPT_SPLIT_TYPE},
            "primaryType": "AcceptSplit",
            "domain": domain(chain_id, job_board),
            "message": self.message(),
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Acceptance:
        try:
            return cls(
                job_id=int(message["jobId"]),
                split_id=int(message["splitId"]),
                factory=to_checksum_address(message["factory"]),
                share_ppm=int(message["sharePpm"]),
                nonce=int(message["nonce"]),
                deadline=int(message["deadline"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidInput(f"not an AcceptSplit message: {exc}") from None


@dataclass(frozen=True)
class Handover:
    """Custody of lot `lot` (`quantity` units) passing from split `from_split` to `to_split`."""

    job_id: int
    from_split: int
    to_split: int
    lot: bytes
    quantity: int
    deadline: int

    def __post_init__(self) -> None:
        if not isinstance(self.lot, bytes) or len(self.lot) != 32:
            raise InvalidInput("a lot identifier must be 32 bytes", field="lot")
        if not 0 < self.quantity < 2**64:
            raise InvalidInput(
                "the quantity handed over must be a positive 64-bit integer", field="quantity"
            )

    def message(self) -> dict[str, Any]:
        return {
            "jobId": self.job_id,
            "fromSplit": self.from_split,
            "toSplit": self.to_split,
            "lot": "0x" + self.lot.hex(),
            "quantity": self.quantity,
            "deadline": self.deadline,
        }

    def as_tuple(self) -> tuple[int, int, int, bytes, int, int]:
        """The `JobBoard.Handover` struct argument."""
        return (self.job_id, self.from_split, self.to_split, self.lot, self.quantity, self.deadline)

    def typed_data(self, chain_id: int, job_board: str) -> dict[str, Any]:
        return {
            "types": {"EIP712Domain": DOMAIN_TYPE, "Handover": HANDOVER_TYPE},
            "primaryType": "Handover",
            "domain": domain(chain_id, job_board),
            "message": self.message(),
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Handover:
        try:
            lot = bytes.fromhex(str(message["lot"]).removeprefix("0x"))
            return cls(
                job_id=int(message["jobId"]),
                from_split=int(message["fromSplit"]),
                to_split=int(message["toSplit"]),
                lot=lot,
                quantity=int(message["quantity"]),
                deadline=int(message["deadline"]),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidInput(f"not a Handover message: {exc}") from None
