"""What the tests share besides fixtures (those live in conftest.py): test keys, members
and orders on a node, the assertion that a call is refused, and the one way to run the
`cofab` command and the Node scripts of tests/js."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.testing
from web3 import IPCProvider
from web3.types import RPCEndpoint

from api.app import create_app
from api.inthread import serving
from ledger.core.errors import ContractRevert
from ledger.eth.chain import Backend, Chain, anvil_faucet, block_head, lean_web3
from ledger.eth.devnet import Devnet
from ledger.eth.toolchain import free_port
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node, NodeOptions
from ledger.orders.jobs import SplitSpec
from ledger.scenario import DAY, ROYALTY_PPM, licensed_design, order_in_production
from ledger.scenario import member as admit  # the tests' word for it
from ledger.scenario import new_account as new_account
from ledger.steps import epcis
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.bundle import Bundle
from ledger.steps.record import Domain, Step, types_document
from ledger.steps.signatures import Signer

PASSPHRASE = "correct horse battery staple"
FAST_KDF = 2**10  # scrypt cost for test keystores; real keys use eth-account's default

DUSD = 10**6  # one demo dollar in token units
PRICE = 10_000 * DUSD
FEE_PPM = 20_000  # 2 %, the deployment default

# --- refusals -------------------------------------------------------------------------


def refused(error: str, fn: Callable[..., object], *args: Any, **kwargs: Any) -> ContractRevert:
    """`fn(*args, **kwargs)` reverts with the custom error `error`; the revert, for more
    checks (callers assert separately that nothing changed)."""
    with pytest.raises(ContractRevert) as info:
        fn(*args, **kwargs)
    assert info.value.error == error, info.value.message
    return info.value


# --- members, designs, orders -----------------------------------------------------------


@dataclass
class Parties:
    buyer: Sender
    designer: Sender
    factories: list[Sender]
    design: bytes


def exported_steps(
    signer: Signer, domain: Domain, job: int, split: int, n: int, when: int
) -> list[dict[str, Any]]:
    """`n` steps of one split signed by `signer` at `when`, as a node's export lists them
    before they are anchored (no anchor, no proof)."""
    w = StepWriter(signer, domain, job, split, signer.address)
    subs = [w.step(object_event("assembling", when)) for _ in range(n)]
    return [
        {
            "record": s.record,
            "step_hash": "0x" + Step.from_message(s.record).digest(domain).hex(),
            "signature": s.signature,
            "signer": signer.address,
            "payload": epcis.canonical(s.payload).decode(),
            "anchor_index": None,
            "proof": None,
        }
        for s in subs
    ]


def bundle_of(domain: Domain, job: int, splits: list[dict[str, Any]]) -> dict[str, Any]:
    """A bundle's JSON object (current version) of `splits` of order `job` on `domain`."""
    empty = Bundle(
        chain_id=domain.chain_id,
        traceability=domain.verifying_contract,
        job_id=job,
        splits=[],
        domain=domain.as_dict(),
        types=types_document(),
    )
    return empty.export() | {"splits": splits}


def snapshot(chain: Chain) -> int:
    """The id of a new snapshot of the tests' anvil as it stands."""
    answer = chain.w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])
    return int(answer["result"], 16)


def rewound(chain: Chain, snapshot_id: int) -> int:
    """The tests' anvil moved back to `snapshot_id`; the id of a new snapshot of that state,
    to come back to it again (anvil forgets a snapshot it reverts to, and every later one).
    Its clock goes on from now, as a chain deployed now would: anvil's would resume from
    the snapshot's block."""
    rpc = chain.w3.provider.make_request
    answer = rpc(RPCEndpoint("evm_revert"), [hex(snapshot_id)])
    assert answer.get("result"), f"no snapshot {snapshot_id}: {answer}"
    head = block_head(chain.w3, "latest")
    assert head is not None
    rpc(RPCEndpoint("evm_setNextBlockTimestamp"), [max(int(time.time()), head[2] + 1)])
    return snapshot(chain)


def parties(node: Node, factories: int = 3, royalty_ppm: int = ROYALTY_PPM) -> Parties:
    """A buyer with demo dollars, a designer whose design is licensed to it, factories."""
    buyer = admit(node, int(Role.BUYER))
    designer = admit(node, int(Role.DESIGNER))
    plants = [admit(node, int(Role.FACTORY)) for _ in range(factories)]
    design = licensed_design(node, designer, buyer.address, royalty_ppm=royalty_ppm)
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
    return int(order_in_production(node, p.buyer, p.design, specs, PRICE))


def state(node: Node, job_id: int | None = None) -> tuple[Any, ...]:
    """What a refused call must leave untouched: the order, the escrow totals, the block's
    storage-visible figures."""
    view = node.jobs.view(job_id).model_dump(mode="json") if job_id else None
    return view, node.settlement.totals().model_dump(mode="json"), node.jobs.count()


def chain_now(node: Node) -> int:
    """The latest block's time: what a contract compares a deadline with when the node
    estimates a transaction (anvil runs the estimate in the latest block, which may be
    seconds behind the wall clock)."""
    head = block_head(node.chain.w3, "latest")
    assert head is not None
    return head[2]


def time_travel(node: Node, seconds: int) -> None:
    """Move the embedded chain's clock forward (mines a block)."""
    node.chain.advance_time(seconds)


# --- the cofab command ----------------------------------------------------------------

# COFAB_TEST_CLI=process runs every command as its own process, as a user's shell does;
# by default they run in the test's process (the same Click parsing, exit codes and
# output, without ~2 s of imports per command).
IN_PROCESS = os.environ.get("COFAB_TEST_CLI", "in-process") != "process"


# typer's test runner builds the whole command tree (`cofab`'s ~80 commands, 0.12 s of CPU)
# for every invocation, most of a quick command's time; the tree is the same every time
typer.testing._get_command = functools.cache(typer.main.get_command)  # type: ignore[attr-defined]


def cofab(
    *args: str,
    env: Mapping[str, str],
    input: str | None = None,
    process: bool = False,
    refused: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run `cofab ARGS` with exactly the environment `env`; its exit code and output.

    `cofab up` runs as a process: it serves until stopped, and `--detach` forks itself.
    Unless `refused`: an `up` that must refuse before it starts a node runs here too, and
    fails the test at once if it gets as far as starting one. Everything else runs in this
    process unless `process` (the process boundary is what a test checks) or
    COFAB_TEST_CLI=process. An exception no command handles exits 70, as the installed
    entry point does, with its traceback in stderr so the failing test shows it."""
    if process or not IN_PROCESS or (args[:1] == ("up",) and not refused):
        return subprocess.run(
            [sys.executable, "-m", "ledger.cli", *args],
            capture_output=True,
            text=True,
            env=dict(env),
            timeout=180,
            umask=0o022,  # a permissive umask: the node's files must be private anyway
            **({"input": input} if input is not None else {"stdin": subprocess.DEVNULL}),
        )
    from typer.testing import CliRunner

    from ledger.cli import app

    saved_env, cwd, umask = dict(os.environ), os.getcwd(), os.umask(0o022)
    try:
        os.environ.clear()
        os.environ.update(env)
        with pytest.MonkeyPatch.context() as mp:
            if refused:
                mp.setattr(Node, "start", _started_instead_of_refusing)
            result = CliRunner().invoke(app, list(args), input=input, prog_name="cofab")
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(cwd)
        os.umask(umask)
    code, stderr = result.exit_code, result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        code = 70
        exc = result.exception
        stderr += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return subprocess.CompletedProcess(["cofab", *args], code, result.stdout, stderr)


def _started_instead_of_refusing(*args: Any, **kwargs: Any) -> Node:
    raise AssertionError("`cofab up` went on to start a node instead of refusing")


@dataclass
class Cli:
    """A user's shell for one node: its data directory and the ports `cofab up` takes."""

    data_dir: Path
    api_port: int
    devnet_port: int

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COFAB_")}
        env["COFAB_DATA_DIR"] = str(self.data_dir)
        env["COFAB_KDF_ITERATIONS"] = str(FAST_KDF)  # keys `cofab up` and `keys new` write
        env["COLUMNS"] = "200"
        return env

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return cofab(*args, env=self.env(), input=input)

    def refused(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A command that must refuse before it starts anything, `up` included, run in
        this process (a process of its own costs about 3 CPU-seconds of imports)."""
        return cofab(*args, env=self.env(), refused=True)

    def process(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The command as its own process (signals, the entry point, exit status)."""
        return cofab(*args, env=self.env(), process=True)

    def up_args(self) -> list[str]:
        return ["up", "--port", str(self.api_port), "--devnet-port", str(self.devnet_port)]

    def pid(self) -> int | None:
        try:
            return int(json.loads((self.data_dir / "run.json").read_text())["pid"])
        except (OSError, ValueError, KeyError):
            return None


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def cli_refused(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    """The command exited `code` and said `text` on stderr in one line, no traceback."""
    assert result.returncode == code, f"exit {result.returncode}\n{result.stdout}{result.stderr}"
    assert text in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# --- Node scripts -----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
JS = Path(__file__).parent / "js"


def run_node(script: str, payload: object) -> Any:
    """Run tests/js/`script` (ethers v6, @openzeppelin/merkle-tree from node_modules:
    `make setup`) with the `node` on PATH, `payload` as JSON on its stdin; its JSON answer."""
    assert shutil.which("node"), "node is not on PATH"
    done = subprocess.run(
        ["node", str(JS / script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# --- the tests' chains ------------------------------------------------------------------


@dataclass
class _TestDevnet(Devnet):
    """anvil for tests: its state in memory only, and JSON-RPC over a Unix socket besides
    HTTP (a request over IPC costs the test process a fraction of what web3's HTTP client
    does; the devnet nodes of `cofab up` keep HTTP)."""

    ipc: Path = Path()

    def command(self) -> list[str]:
        cmd = super().command()
        at = cmd.index("--state")
        assert cmd[at + 2] == "--state-interval", cmd
        del cmd[at : at + 4]
        return [*cmd, "--ipc", str(self.ipc)]


@contextlib.contextmanager
def anvil_node(data_dir: Path) -> Iterator[Node]:
    """A node deployed on an anvil of its own (free port), which this process reaches over
    a Unix socket; both stopped on exit."""
    sockets = Path(tempfile.mkdtemp(prefix="cofab-test-"))  # short: a socket path's limit
    devnet = _TestDevnet(data_dir / "devnet", port=free_port(), ipc=sockets / "anvil.ipc")
    try:
        devnet.start()
        w3 = lean_web3(IPCProvider(str(devnet.ipc), timeout=30))
        chain = Chain(
            w3=w3,
            backend=Backend.DEVNET,
            chain_id=int(w3.eth.chain_id),
            url=devnet.url,
            faucet=anvil_faucet(),
            devnet=devnet,
        )
        opts = NodeOptions(
            backend=Backend.DEVNET, data_dir=data_dir / "node", kdf_iterations=FAST_KDF
        )
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("COFAB_PASSPHRASE", PASSPHRASE)
            mp.setattr("ledger.node.connect", lambda *_args, **_kwargs: chain)
            node = Node.start(opts)
        try:
            yield node
        finally:
            node.close()
    finally:
        devnet.stop()
        shutil.rmtree(sockets, ignore_errors=True)


# --- the portal tests' browser and node (fixtures `browser` and `served` in conftest.py) ---
CHROMIUM = Path(os.environ.get("COFAB_CHROMIUM", "/usr/bin/chromium"))


@dataclass(frozen=True)
class Served:
    """A node serving the API and the portal over real HTTP, at `url`."""

    node: Node
    url: str


@contextlib.contextmanager
def serve_portal_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A node (on its own anvil) serving the API and the portal over real HTTP on a free
    127.0.0.1 port, stopped on exit."""
    data = tmp_path_factory.mktemp("portal-node")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COFAB_DATA_DIR", str(data))
        with anvil_node(data) as node:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with serving(create_app(node, url), port):
                yield Served(node, url)


# An EIP-1193 provider backed by the test (`Tab.wallet`), present only in a tab whose
# person has a wallet (a cookie says so: init scripts cannot be removed from a context).
WALLET_COOKIE = "cofab-test-wallet"
WALLET_SCRIPT = f"""
try {{
  if (document.cookie.split("; ").includes("{WALLET_COOKIE}=1"))
    window.ethereum = {{request: ({{method, params}}) =>
      window.cofabTestWallet(method, params || [])}};
}} catch (e) {{}}
"""

Wallet = Callable[[Any, str, list[Any]], Any]


@dataclass
class Tab:
    """A browser context and its one page, lent to one person at a time."""

    context: Any
    page: Any
    locale: str
    wallet: Wallet | None = None

    def use_wallet(self, wallet: Wallet) -> None:
        """Pages opened from now on see `window.ethereum`, answered by `wallet`."""
        self.wallet = wallet
        self.context.add_cookies(
            [{"name": WALLET_COOKIE, "value": "1", "domain": "127.0.0.1", "path": "/"}]
        )


class Tabs:
    """Browser tabs handed from one person to the next. A new tab costs Chromium a
    renderer process, about 1.5 CPU-seconds; a reused one is cleared first: its cookies
    and the storage of every origin it visited, and it is left on about:blank. That is all
    a person leaves behind in the portal, which keeps its session in the page's memory."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.free: list[Tab] = []

    def take(self, locale: str) -> Tab:
        for tab in self.free:
            if tab.locale == locale:
                self.free.remove(tab)
                return tab
        context = self.browser.new_context(locale=locale, viewport={"width": 1100, "height": 760})
        tab = Tab(context, None, locale)

        def wallet(source: Any, method: str, params: list[Any]) -> Any:
            if tab.wallet is None:
                raise ValueError("this person has no wallet")
            return tab.wallet(source, method, params)

        context.expose_binding("cofabTestWallet", wallet)
        context.add_init_script(WALLET_SCRIPT)
        tab.page = context.new_page()
        return tab

    def give_back(self, tab: Tab, origins: set[str]) -> None:
        """Clear what the last person left (`origins`: where its page went) and keep the
        tab; a tab that cannot be cleared is closed instead."""
        try:
            tab.page.goto("about:blank")
            cdp = tab.context.new_cdp_session(tab.page)
            for origin in origins:
                cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
            cdp.detach()
            tab.context.clear_cookies()
            tab.wallet = None
        except Exception:
            tab.context.close()
            raise
        self.free.append(tab)

    def close(self) -> None:
        for tab in self.free:
            tab.context.close()
        self.free.clear()
