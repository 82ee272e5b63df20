"""A cofab node: a chain connection, the deployed contracts and the keys it signs with.

`Node.start` is what `cofab up` runs; `Node.attach` is what other CLI commands use to
reach the chain of a node that is already running (recorded in <data dir>/run.json).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount

from ledger.core.errors import (
    ConfigError,
    DeploymentError,
    Forbidden,
    KeystoreError,
    NodeNotRunning,
)
from ledger.core.keys import Keyring, read_passphrase
from ledger.core.private import FILE_MODE, private_dir, write_private
from ledger.core.settings import data_dir as resolve_data_dir
from ledger.core.settings import notify_settings
from ledger.designs.client import DesignsClient
from ledger.designs.service import DesignService
from ledger.disputes.client import DisputesClient
from ledger.epcis.service import EpcisService
from ledger.eth import deployment as deploy_mod
from ledger.eth import tx
from ledger.eth.chain import Backend, Chain, attach, connect
from ledger.eth.compiler import artifacts
from ledger.eth.deployment import Deployment, GovernanceParams
from ledger.eth.devnet import process_alive
from ledger.eth.tx import Sender
from ledger.membership.consortium import ConsortiumClient
from ledger.notify.deriver import Sources
from ledger.notify.service import NotifyService
from ledger.orders.inbox import HandoverInbox
from ledger.orders.jobs import JobsClient
from ledger.orders.settlement import SettlementClient
from ledger.steps.service import StepService, chain_identity

log = logging.getLogger("cofab.node")
OPERATOR_KEY = "operator"


@dataclass
class NodeOptions:
    backend: Backend = Backend.DEVNET
    data_dir: Path = field(default_factory=resolve_data_dir)
    rpc_url: str | None = None
    devnet_port: int = 8545
    confirmations: int = 0
    chain_id: int | None = None
    redeploy: bool = False
    deploy: bool = False  # rpc: deploy a new consortium when none is recorded
    join: str | None = None  # rpc: take the deployment of a member node (URL) or a file
    passphrase_file: Path | None = None
    prompt: Callable[[], str] | None = None
    quorum: int = 1
    kdf_iterations: int | None = None
    payment_token: str | None = None  # an existing ERC-20 for orders (else the demo token)


def run_file(data_dir: Path) -> Path:
    return data_dir / "run.json"


def secrets_dir(data_dir: Path) -> Path:
    return data_dir / "secrets"


def _devnet_passphrase(data_dir: Path) -> Path:
    """The devnet operator's passphrase file, made on first start (mode 0600)."""
    path = secrets_dir(data_dir) / "operator.pass"
    if not path.exists():
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
    return path


class Node:
    def __init__(
        self, chain: Chain, deployment: Deployment, keyring: Keyring, data_dir: Path
    ) -> None:
        self.chain = chain
        self.deployment = deployment
        self.keyring = keyring
        self.data_dir = data_dir
        self.consortium = ConsortiumClient(deploy_mod.bind(chain, deployment, "Consortium"))
        self._senders: dict[str, Sender] = {}
        self._designs: DesignsClient | None = None
        self._steps: StepService | None = None
        self._settlement: SettlementClient | None = None
        self._jobs: JobsClient | None = None
        self._disputes: DisputesClient | None = None
        self._epcis: EpcisService | None = None
        self._notify: NotifyService | None = None
        self._inbox_lock = threading.Lock()

    @property
    def designs(self) -> DesignsClient:
        """The DesignRegistry client (bound on first use: older deployments lack it)."""
        if self._designs is None:
            record = self.deployment.contracts.get("DesignRegistry")
            self._designs = DesignsClient(
                deploy_mod.bind(self.chain, self.deployment, "DesignRegistry"),
                from_block=record.block_number if record else 0,
            )
        return self._designs

    def design_service(self) -> DesignService:
        """Design registration, certificates, licences and shares for this node."""
        return DesignService(self.chain, self.designs, self.consortium, self.data_dir)

    @property
    def steps(self) -> StepService:
        """Production steps: journal, ingest and anchoring (opened on first use)."""
        if self._steps is None:
            record = self.deployment.contracts.get("Traceability")
            self._steps = StepService(
                self.chain,
                self.consortium,
                deploy_mod.bind(self.chain, self.deployment, "Traceability"),
                deploy_mod.bind(self.chain, self.deployment, "JobBoard"),
                self.data_dir / "journal",
                self._senders,
                deployed_at=record.block_number if record else 0,
            )
        return self._steps

    @property
    def epcis(self) -> EpcisService:
        """EPCIS 2.0 capture and query over the steps (opened on first use)."""
        if self._epcis is None:
            self._epcis = EpcisService(self.steps, lambda: self.notify)
        return self._epcis

    @property
    def settlement(self) -> SettlementClient:
        """The Settlement client: escrow, balances, withdrawals (bound on first use)."""
        if self._settlement is None:
            contract = deploy_mod.bind(self.chain, self.deployment, "Settlement")
            record = self.deployment.contracts["Settlement"]
            self._settlement = SettlementClient(contract, self.chain, record.block_number)
        return self._settlement

    @property
    def jobs(self) -> JobsClient:
        """The JobBoard client: orders, splits, custody (bound on first use)."""
        if self._jobs is None:
            contract = deploy_mod.bind(self.chain, self.deployment, "JobBoard")
            self._jobs = JobsClient(contract, self.settlement, self.chain)
        return self._jobs

    def handover_inbox(self) -> HandoverInbox:
        """Hand-overs one factory signed, waiting for the other's signature."""
        return HandoverInbox(self.data_dir / "handovers.json", self.jobs, self._inbox_lock)

    @property
    def disputes(self) -> DisputesClient:
        """The Disputes client: open, evidence, votes, rulings (bound on first use)."""
        if self._disputes is None:
            record = self.deployment.contracts.get("Disputes")
            self._disputes = DisputesClient(
                deploy_mod.bind(self.chain, self.deployment, "Disputes"),
                self.chain,
                from_block=record.block_number if record else 0,
            )
        return self._disputes

    @property
    def notify(self) -> NotifyService:
        """Notifications: derived from the chain and the journal, told by webhooks and the
        event stream (opened on first use; `start()` runs it in the background)."""
        if self._notify is None:
            names = [
                n
                for n in ("JobBoard", "Disputes", "Settlement", "Traceability")
                if n in self.deployment.contracts
            ]
            from_block = min(self.deployment.contracts[n].block_number for n in names)
            sources = Sources(
                chain=self.chain,
                contracts=[deploy_mod.bind(self.chain, self.deployment, n) for n in names],
                jobs=self.jobs,
                consortium=self.consortium,
                from_block=from_block,
                stalled=self._anchor_problems,
                anchored_next=lambda job, split: self.steps.anchorer.chain_trace(job, split)[0],
                operators=lambda: self.signer_addresses[:1],
            )
            self._notify = NotifyService(
                sources,
                self.data_dir / "notify",
                chain_identity(self.chain, from_block),
                notify_settings(),
            )
            self._notify.tickers.append(self._epcis_reports)
        return self._notify

    def _epcis_reports(self) -> None:
        """EPCIS subscription reports of steps journaled by any path (captures report
        their own events at once)."""
        if self._epcis is not None or EpcisService.path(self.steps.journal.path).exists():
            self.epcis.subscriptions.publish()

    def _anchor_problems(self) -> dict[tuple[int, int], str]:
        service = self._steps.service if self._steps is not None else None
        return dict(service.problems) if service is not None else {}

    # --- signing ---------------------------------------------------------------------
    def add_signer(self, account: LocalAccount) -> Sender:
        sender = self._senders.get(account.address)
        if sender is None:
            sender = Sender(self.chain, account)
            self._senders[account.address] = sender
        return sender

    def sender(self, address: str | None = None) -> Sender:
        """The sender for `address` (the operator when None) if this node holds its key;
        while building unsigned transactions (`tx.build_only`), a `Builder` for it."""
        if address is not None and tx.building():
            return tx.Builder(self.chain, address)
        if address is None:
            if not self._senders:
                raise Forbidden("this node holds no unlocked key")
            return next(iter(self._senders.values()))
        for addr, sender in self._senders.items():
            if addr.lower() == address.lower():
                return sender
        raise Forbidden(
            f"this node does not hold the key of {address}; sign the transaction yourself "
            "and submit it to POST /tx (ask any write endpoint with ?unsigned=1 for it)"
        )

    @property
    def signer_addresses(self) -> list[str]:
        return list(self._senders)

    # --- lifecycle -------------------------------------------------------------------
    @classmethod
    def start(cls, opts: NodeOptions, progress: Callable[[str], None] | None = None) -> Node:
        say = progress or (lambda _msg: None)
        data_dir = private_dir(opts.data_dir)
        keyring = Keyring(data_dir / "keystore")
        say(f"connecting to the {opts.backend.value} chain")
        chain = connect(
            opts.backend,
            rpc_url=opts.rpc_url,
            data_dir=data_dir,
            devnet_port=opts.devnet_port,
            confirmations=opts.confirmations,
            expected_chain_id=opts.chain_id,
        )
        try:
            operator = cls._operator(opts, keyring, chain, say)
            node = cls(chain, cls._deployment(opts, chain, operator, say), keyring, data_dir)
            node.add_signer(operator)
            return node
        except BaseException:
            chain.close()
            raise

    @staticmethod
    def _operator(
        opts: NodeOptions, keyring: Keyring, chain: Chain, say: Callable[[str], None]
    ) -> LocalAccount:
        passphrase_file = opts.passphrase_file
        if passphrase_file is None and chain.is_dev and not os.environ.get("COFAB_PASSPHRASE"):
            passphrase_file = _devnet_passphrase(opts.data_dir)
        passphrase = read_passphrase(passphrase_file, prompt=opts.prompt)
        try:
            keyring.find(OPERATOR_KEY)
        except Exception:  # noqa: BLE001 - absent: make one
            if not chain.is_dev:
                raise KeystoreError(
                    f"no '{OPERATOR_KEY}' key in {keyring.directory}: import this node's "
                    f"member key with `cofab keys import {OPERATOR_KEY} --keystore FILE` "
                    f"(or --private-key-file FILE)"
                ) from None
            say("creating the operator key")
            keyring.new(OPERATOR_KEY, passphrase, kdf_iterations=opts.kdf_iterations)
        say("unlocking the operator key")
        return keyring.unlock(OPERATOR_KEY, passphrase)

    @staticmethod
    def _deployment(
        opts: NodeOptions, chain: Chain, operator: LocalAccount, say: Callable[[str], None]
    ) -> Deployment:
        say("compiling contracts")
        artifacts()
        sender = Sender(chain, operator)
        governance = GovernanceParams(
            council=(operator.address,), quorum=opts.quorum, payment_token=opts.payment_token
        )
        persist = chain.backend is not Backend.EMBEDDED
        existing = None
        if persist and not opts.redeploy:
            existing = deploy_mod.load(opts.data_dir, chain.chain_id)
            if existing is not None:
                say("checking the recorded deployment")
                deploy_mod.check(chain, existing)
        if existing is None and opts.join:
            say(f"joining the consortium of {opts.join}")
            joined = deploy_mod.fetch(opts.join)
            deploy_mod.verify(chain, joined)
            deploy_mod.save(opts.data_dir, joined)
            return joined
        shared = chain.backend is Backend.RPC  # a chain others use: never deploy unasked
        if shared and not opts.deploy and not opts.redeploy:
            if existing is None:
                raise DeploymentError(
                    f"no cofab deployment is recorded for chain {chain.chain_id} in "
                    f"{opts.data_dir}. To join an existing consortium: `cofab up --backend "
                    f"rpc --rpc-url URL --join <a member node's API URL>`. To start a new "
                    f"consortium on this chain, with this node's key as its council: add "
                    f"--deploy."
                )
            return existing  # contracts added to cofab later are deployed with --deploy
        height = chain.w3.eth.block_number
        deployment = deploy_mod.deploy(
            chain,
            sender,
            governance,
            existing=existing,
            progress=lambda name: say(f"deploying {name}"),
        )
        deployed_to = chain.w3.eth.block_number
        # recorded once the devnet has written them, so a record never names contracts that
        # a devnet killed now would lose
        devnet = chain.devnet
        if devnet is not None and deployed_to > height and not devnet.wait_saved(deployed_to):
            log.warning(
                "the devnet has not written its state since the contracts were deployed: "
                "if it is killed before it does, the next start needs --redeploy"
            )
        if persist:
            deploy_mod.save(opts.data_dir, deployment)
        return deployment

    @classmethod
    def attach(cls, data_dir: Path | None = None, *, rpc_url: str | None = None) -> Node:
        """Reach the chain of a running node (or an RPC endpoint) with its recorded deployment."""
        directory = data_dir or resolve_data_dir()
        info = read_run_info(directory)
        url = rpc_url or (info or {}).get("rpc_url")
        if not url:
            raise NodeNotRunning(
                f"no running node found for {directory}: start one with `cofab up` "
                "(or pass --rpc-url)"
            )
        backend = Backend((info or {}).get("backend", "rpc")) if not rpc_url else Backend.RPC
        chain = attach(url, backend=backend)
        deployment = deploy_mod.load(directory, chain.chain_id)
        if deployment is None:
            raise ConfigError(
                f"no deployment of cofab recorded for chain {chain.chain_id} in {directory}"
            )
        return cls(chain, deployment, Keyring(directory / "keystore"), directory)

    def unlock(self, name_or_address: str, passphrase: str) -> Sender:
        return self.add_signer(self.keyring.unlock(name_or_address, passphrase))

    def public_status(self) -> dict[str, Any]:
        """What anyone may know: the chain, its height and the contracts on it."""
        return {
            "chain_id": self.chain.chain_id,
            "block_number": self.chain.block_number(),
            "contracts": {n: r.address for n, r in self.deployment.contracts.items()},
        }

    def status(self) -> dict[str, Any]:
        """The public status plus how this node runs: for its operator and members only."""
        return {
            **self.public_status(),
            "backend": self.chain.backend.value,
            "rpc_url": self.chain.url,
            "data_dir": str(self.data_dir),
            "signers": self.signer_addresses,
            "stalled": self.stalled(),
        }

    def stalled(self) -> list[str]:
        """What keeps this node from agreeing with the chain (splits it cannot anchor)."""
        return self._steps.stalled() if self._steps is not None else []

    def close(self) -> None:
        if self._epcis is not None:
            self._epcis.close()
        if self._notify is not None:
            self._notify.stop()
        if self._steps is not None:
            self._steps.close()
        self.chain.close()


def write_run_info(data_dir: Path, info: dict[str, Any]) -> None:
    write_private(run_file(data_dir), json.dumps(info, indent=2))


def read_run_info(data_dir: Path) -> dict[str, Any] | None:
    path = run_file(data_dir)
    try:
        info: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = info.get("pid")
    if pid is not None and not process_alive(int(pid)):
        return None
    return info


def clear_run_info(data_dir: Path) -> None:
    run_file(data_dir).unlink(missing_ok=True)
