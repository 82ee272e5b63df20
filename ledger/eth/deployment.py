"""Deploy cofab's contracts once and remember where: <data dir>/deployments/<chain id>.json.

On restart the record is reused after checking that the recorded code is still at each
address; contracts added to the plan since are deployed next to the existing ones, and a
full redeploy happens only when asked for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_typing import ChecksumAddress
from eth_utils import keccak, to_checksum_address
from web3.contract import Contract

from ledger.core.abi import ZERO_ADDRESS
from ledger.core.errors import DeploymentError
from ledger.core.private import write_private
from ledger.eth.chain import Chain
from ledger.eth.compiler import artifact
from ledger.eth.contract import call, contract_at
from ledger.eth.tx import Sender

WEEK = 7 * 24 * 3600


@dataclass(frozen=True)
class GovernanceParams:
    """Constructor parameters of the Consortium and Settlement contracts."""

    council: tuple[str, ...]
    quorum: int = 1
    proposal_ttl: int = WEEK
    # Settlement: an existing ERC-20 orders are paid in (consortium chains; dev chains deploy
    # DemoStable when none is given), who receives the platform fee (the first council
    # member when None) and the fee in parts per million of each order's price.
    payment_token: str | None = None
    platform: str | None = None
    platform_fee_ppm: int = 20_000
    # Disputes: seconds for evidence after opening, seconds for votes after that, and the
    # number of auditor votes that rule (see docs/disputes.md).
    dispute_evidence_period: int = 3 * 24 * 3600
    dispute_ruling_period: int = WEEK
    dispute_quorum: int = 2


ArgsBuilder = Callable[[dict[str, str], GovernanceParams], tuple[Any, ...]]

# Deployment order; each entry builds its constructor arguments from the addresses so far.
PLAN: list[tuple[str, ArgsBuilder]] = [
    ("Consortium", lambda _a, g: (list(g.council), g.quorum, g.proposal_ttl)),
    ("DesignRegistry", lambda a, _g: (a["Consortium"],)),
    ("DemoStable", lambda _a, _g: ()),
    (
        "Settlement",
        lambda a, g: (
            g.payment_token or a.get("DemoStable", ZERO_ADDRESS),
            g.platform or g.council[0],
            g.platform_fee_ppm,
        ),
    ),
    ("JobBoard", lambda a, _g: (a["Consortium"], a["DesignRegistry"], a["Settlement"])),
    ("Traceability", lambda a, _g: (a["Consortium"], a["JobBoard"])),
    (
        "Disputes",
        lambda a, g: (
            a["Consortium"],
            a["JobBoard"],
            a["Settlement"],
            g.dispute_evidence_period,
            g.dispute_ruling_period,
            g.dispute_quorum,
        ),
    ),
]

# Contracts of PLAN deployed only where their condition holds (others always are).
Condition = Callable[[Chain, GovernanceParams], bool]
CONDITIONS: dict[str, Condition] = {
    "DemoStable": lambda chain, g: chain.is_dev and not g.payment_token,
}

DEMO_MINT = 1_000_000 * 10**6  # 1,000,000 dUSD to each demo account on a dev chain


def link_job_board(chain: Chain, sender: Sender, addresses: dict[str, str], _params: Any) -> None:
    """Let the freshly deployed JobBoard, and only it, move escrow in the Settlement."""
    settlement = chain.w3.eth.contract(
        address=to_checksum_address(addresses["Settlement"]), abi=artifact("Settlement").abi
    )
    current = str(call(settlement.functions.jobBoard()))
    if int(current, 16) != 0:
        raise DeploymentError(
            f"the Settlement at {settlement.address} is already linked to another JobBoard "
            f"({current}): start with --redeploy"
        )
    sender.transact(settlement.functions.setJobBoard(addresses["JobBoard"]))


def mint_demo_balances(
    chain: Chain, sender: Sender, addresses: dict[str, str], _params: Any
) -> None:
    """Give the demo accounts of a dev chain (the operator, the chain's faucet) demo dollars."""
    token = chain.w3.eth.contract(
        address=to_checksum_address(addresses["DemoStable"]), abi=artifact("DemoStable").abi
    )
    accounts = {sender.address}
    if chain.faucet is not None:
        accounts.add(str(chain.faucet.address))
    for account in sorted(accounts):
        sender.transact(token.functions.mint(account, DEMO_MINT))


def link_disputes(chain: Chain, sender: Sender, addresses: dict[str, str], _params: Any) -> None:
    """Let the freshly deployed Disputes contract, and only it, apply rulings in the
    Settlement (which then also consults it before releasing or refunding a split)."""
    settlement = chain.w3.eth.contract(
        address=to_checksum_address(addresses["Settlement"]), abi=artifact("Settlement").abi
    )
    current = str(call(settlement.functions.disputes()))
    if int(current, 16) != 0:
        raise DeploymentError(
            f"the Settlement at {settlement.address} already names {current} for dispute "
            "rulings: start with --redeploy"
        )
    sender.transact(settlement.functions.setDisputes(addresses["Disputes"]))


# One-time steps the deployer runs right after a contract of PLAN is deployed (links
# between contracts, demo balances): (chain, deployer, addresses so far, parameters).
AfterDeploy = Callable[[Chain, Sender, dict[str, str], GovernanceParams], None]
AFTER_DEPLOY: dict[str, AfterDeploy] = {
    "DemoStable": mint_demo_balances,
    "JobBoard": link_job_board,
    "Disputes": link_disputes,
}


@dataclass
class ContractRecord:
    address: str
    tx_hash: str
    block_number: int
    code_hash: str


@dataclass
class Deployment:
    chain_id: int
    deployer: str
    contracts: dict[str, ContractRecord] = field(default_factory=dict)
    deployed_at: int = 0

    def address(self, name: str) -> ChecksumAddress:
        try:
            return to_checksum_address(self.contracts[name].address)
        except KeyError:
            raise DeploymentError(f"{name} is not deployed on chain {self.chain_id}") from None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        records = {k: ContractRecord(**v) for k, v in data["contracts"].items()}
        return cls(data["chain_id"], data["deployer"], records, data.get("deployed_at", 0))


def record_path(data_dir: Path, chain_id: int) -> Path:
    return data_dir / "deployments" / f"{chain_id}.json"


def load(data_dir: Path, chain_id: int) -> Deployment | None:
    path = record_path(data_dir, chain_id)
    if not path.exists():
        return None
    try:
        return Deployment.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise DeploymentError(f"deployment record {path} is unreadable: {exc}") from None


def save(data_dir: Path, deployment: Deployment) -> Path:
    path = record_path(data_dir, deployment.chain_id)
    return write_private(path, json.dumps(deployment.to_json(), indent=2) + "\n")


def check(chain: Chain, deployment: Deployment) -> None:
    """Every recorded contract still has its code: else the chain was reset or is another."""
    for name, rec in deployment.contracts.items():
        code = bytes(chain.w3.eth.get_code(to_checksum_address(rec.address)))
        if not code:
            raise DeploymentError(
                f"no code at {rec.address}, where {name} was recorded on chain "
                f"{deployment.chain_id}: the chain was reset; start with --redeploy"
            )
        if "0x" + keccak(code).hex() != rec.code_hash:
            raise DeploymentError(f"the code at {rec.address} is not the {name} cofab deployed")


def fetch(source: str) -> Deployment:
    """A deployment record from a member node (`http(s)://…`, its GET /deployment) or a
    file; not trusted until `verify` has compared it with the chain."""
    try:
        if source.startswith(("http://", "https://")):
            url = source.rstrip("/") + "/deployment"
            answer = httpx.get(url, timeout=10)
            answer.raise_for_status()
            data = answer.json()
        else:
            data = json.loads(Path(source).read_text())
        return Deployment.from_json(data)
    except (httpx.HTTPError, OSError) as exc:
        raise DeploymentError(f"cannot read the deployment record from {source}: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DeploymentError(f"{source} did not give a cofab deployment record: {exc}") from None


def verify(chain: Chain, deployment: Deployment) -> None:
    """The record is for this chain and every contract in it runs the code this checkout
    compiles (immutables aside): a node joins only contracts it can vouch for."""
    if deployment.chain_id != chain.chain_id:
        raise DeploymentError(
            f"the deployment record is for chain {deployment.chain_id}, this chain is "
            f"{chain.chain_id}"
        )
    if "Consortium" not in deployment.contracts:
        raise DeploymentError("the deployment record has no Consortium")
    check(chain, deployment)
    for name, rec in deployment.contracts.items():
        code = bytes(chain.w3.eth.get_code(to_checksum_address(rec.address)))
        if not artifact(name).runs_as(code):
            raise DeploymentError(
                f"the code at {rec.address} is not the {name} this version of cofab "
                f"compiles: refusing to join (a different cofab version, or not cofab)"
            )


def deploy(
    chain: Chain,
    sender: Sender,
    governance: GovernanceParams,
    *,
    existing: Deployment | None = None,
    progress: Callable[[str], None] | None = None,
) -> Deployment:
    """Deploy every contract of PLAN missing from `existing` (all of them when None)."""
    deployment = existing or Deployment(
        chain_id=chain.chain_id, deployer=sender.address, deployed_at=int(time.time())
    )
    addresses = {name: rec.address for name, rec in deployment.contracts.items()}
    for name, build_args in PLAN:
        if name in deployment.contracts:
            continue
        condition = CONDITIONS.get(name)
        if condition is not None and not condition(chain, governance):
            continue
        if progress:
            progress(name)
        art = artifact(name)
        receipt = sender.deploy(art.abi, art.bytecode, *build_args(addresses, governance))
        address = str(receipt["contractAddress"])
        code = bytes(chain.w3.eth.get_code(to_checksum_address(address)))
        deployment.contracts[name] = ContractRecord(
            address=address,
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
            code_hash="0x" + keccak(code).hex(),
        )
        addresses[name] = address
        after = AFTER_DEPLOY.get(name)
        if after is not None:
            after(chain, sender, addresses, governance)
    return deployment


def bind(chain: Chain, deployment: Deployment, name: str) -> Contract:
    return contract_at(chain.w3, name, deployment.address(name))
