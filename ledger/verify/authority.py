"""Could a key sign for a factory: as of an anchor's block, and at a step's stated time.

The verifier's one source of signer authority. Answers are asked of the chain once per
(member, signer, block) and kept: a bundle of 100,000 steps anchored in a hundred blocks
by one factory costs a few hundred calls, never one per step. Nothing depends on the wall
clock: the chain's history at a block does not change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from web3.contract import Contract

from ledger.core.abi import checksummed
from ledger.eth.contract import View
from ledger.membership.roles import Role


@dataclass(frozen=True)
class Window:
    """What the chain says of `signer` signing for `member` as of one block."""

    authorized: bool  # at the end of the block (member active factory, key bound and active)
    member_since: int  # when the member was admitted
    bound_since: int  # device keys: when the binding active at the block began; else 0
    expires: int  # device keys: expiry at the block, 0 for none


class Authority:
    """A device key's binding history comes from its DeviceAuthorized, DeviceRevoked and
    DeviceUnbound events (read once per key): a verdict needs when the binding in force at
    the anchor began, which renewals do not move but a revocation or unbinding ends."""

    def __init__(self, consortium: Contract, block_time: Callable[[int], int]) -> None:
        self.consortium = consortium
        self.block_time = block_time
        self._windows: dict[tuple[str, str, int], Window] = {}
        self._since: dict[str, int] = {}
        self._bindings: dict[str, list[tuple[int, int, str, str]]] = {}
        self._authorized = View.named(consortium, "isAuthorizedSigner")
        self._device_at = View.named(consortium, "deviceAt")
        self._member = View.named(consortium, "member")

    def _events(self, signer: str) -> list[tuple[int, int, str, str]]:
        """(block, log index, event name, owner) of every binding change of `signer`."""
        key = signer.lower()
        if key not in self._bindings:
            found = []
            for name in ("DeviceAuthorized", "DeviceRevoked", "DeviceUnbound"):
                event = getattr(self.consortium.events, name)()
                for log in event.get_logs(from_block=0, argument_filters={"device": signer}):
                    found.append(
                        (int(log["blockNumber"]), int(log["logIndex"]), name, log["args"]["owner"])
                    )
            self._bindings[key] = sorted(found)
        return self._bindings[key]

    def bound_since(self, member: str, signer: str, block: int) -> int:
        """Block time at which `signer`'s binding to `member` in force at `block` began
        (0 if none was in force)."""
        owner, start = "", 0
        for number, _, name, who in self._events(signer):
            if number > block:
                break
            if name == "DeviceAuthorized":
                if owner != who.lower():
                    owner, start = who.lower(), number
            else:  # revoked or unbound: a later authorisation starts a new binding
                owner, start = "", 0
        return self.block_time(start) if owner == member.lower() else 0

    def member_since(self, member: str) -> int:
        key = member.lower()
        if key not in self._since:
            self._since[key] = int(self._member(member)[2])
        return self._since[key]

    def window(self, member: str, signer: str, block: int) -> Window:
        found = self._windows.get((member, signer, block))  # as spelt: no case folding
        if found is not None:
            return found
        key = (member.lower(), signer.lower(), block)
        found = self._windows.get(key)
        if found is None:
            member, signer = checksummed(member), checksummed(signer)  # as the chain takes
            ok = self._authorized(member, signer, int(Role.FACTORY), block, 0)
            bound, expires = 0, 0
            if key[0] != key[1]:
                _owner, _active, expires = self._device_at(signer, block)
                bound = self.bound_since(member, signer, block) if ok else 0
            found = Window(bool(ok), self.member_since(member), bound, int(expires))
            self._windows[key] = found
        self._windows[(member, signer, block)] = found
        return found
