"""Who may sign a step for a split: its factory, or a device key the factory authorised.

Answers come from the chain (Consortium, JobBoard) and are cached briefly, so a batch of
thousands of steps costs a handful of calls rather than one per step. The cache's clock is
injectable, so a test moves time instead of waiting for it. This is the ingest's question
(may this key sign now?); a bundle's steps are judged as of their anchors by
`ledger.verify.authority`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from web3.contract import Contract

from ledger.core.abi import checksum
from ledger.core.errors import Forbidden, NotFound
from ledger.eth.contract import View
from ledger.eth.reverts import revert_from, reverts
from ledger.membership.consortium import ConsortiumClient
from ledger.membership.roles import Role

CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class _Device:
    owner: str
    expires_at: int
    active: bool


class Authority:
    def __init__(
        self,
        consortium: ConsortiumClient,
        splits: Contract,
        from_block: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consortium = consortium
        self.clock = clock  # seconds, for the cache only
        self.splits = splits
        self.from_block = from_block  # the JobBoard's deployment: no order is older
        self._factories: dict[tuple[int, int], str] = {}
        self._created: dict[int, int] = {}
        self._members: dict[str, tuple[float, bool]] = {}
        self._devices: dict[str, tuple[float, _Device | None]] = {}
        self._lock = threading.Lock()
        self._has_role = View.named(consortium.contract, "hasRole")
        self._device_of = View.named(consortium.contract, "device")

    def split_factory(self, job_id: int, split_id: int) -> str:
        key = (job_id, split_id)
        with self._lock:
            cached = self._factories.get(key)
        if cached:
            return cached
        factory = str(self.splits.functions.splitFactory(job_id, split_id).call())
        if int(factory, 16) == 0:
            raise NotFound(f"job {job_id} has no split {split_id}")
        with self._lock:
            self._factories[key] = factory  # a split's factory never changes
        return factory

    def job_created_at(self, job_id: int) -> int:
        """When the order was placed (its JobCreated block's time): no step of it is older.
        Cached per job, as it never changes. A split registry that records no order
        creation (no JobCreated event) dates nothing: 0."""
        with self._lock:
            cached = self._created.get(job_id)
        if cached is not None:
            return cached
        if not any(e.get("name") == "JobCreated" for e in self.splits.abi if e["type"] == "event"):
            return 0
        logs = self.splits.events.JobCreated().get_logs(
            from_block=self.from_block, argument_filters={"jobId": job_id}
        )
        if not logs:
            raise NotFound(f"there is no job {job_id}")
        block = self.splits.w3.eth.get_block(logs[0]["blockNumber"])
        created = int(block["timestamp"])
        with self._lock:
            self._created[job_id] = created
        return created

    def _is_active_factory(self, member: str) -> bool:
        now = self.clock()
        with self._lock:
            hit = self._members.get(member)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            ok = bool(self._has_role(checksum(member), int(Role.FACTORY)))
        except reverts() as exc:
            raise revert_from(exc) from None
        with self._lock:
            self._members[member] = (now, ok)
        return ok

    def _device(self, signer: str) -> _Device | None:
        now = self.clock()
        with self._lock:
            hit = self._devices.get(signer)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        owner, expires_at, active, *_ = self._device_of(signer)
        device = None if int(owner, 16) == 0 else _Device(owner, int(expires_at), bool(active))
        with self._lock:
            self._devices[signer] = (now, device)
        return device

    def check(self, job_id: int, split_id: int, member: str, signer: str, at_time: int) -> None:
        """Raise unless `signer` may sign a step of this split for `member` at `at_time`.

        Ingest passes the time the node receives the step (or the step's own time if that
        is later), never the time the step claims alone: a key past its expiry cannot get a
        step in by dating it before the expiry."""
        factory = self.split_factory(job_id, split_id)
        if factory.lower() != member.lower():
            raise Forbidden(
                f"split {split_id} of job {job_id} belongs to {factory}, not to {member}"
            )
        if not self._is_active_factory(factory):
            raise Forbidden(f"{factory} is not an active factory member")
        if signer.lower() == factory.lower():
            return
        device = self._device(signer)
        if device is None or device.owner.lower() != factory.lower():
            raise Forbidden(f"{signer} is neither {factory} nor one of its device keys")
        if not device.active:
            raise Forbidden(f"device key {signer} of {factory} is revoked")
        if device.expires_at and at_time >= device.expires_at:
            raise Forbidden(
                f"device key {signer} of {factory} expired at {device.expires_at}, before "
                f"{at_time}: a step it signed is accepted only before the expiry, whatever "
                "time the step states"
            )
