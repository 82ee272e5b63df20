"""`cofab up`, `cofab down`, `cofab status`: run a node and look at it."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from eth_utils import is_address, to_checksum_address

from ledger.cli.common import (
    JsonOpt,
    err,
    handled,
    out,
    print_json,
    prompt_passphrase,
    shared,
)
from ledger.core.errors import ConfigError, NodeNotRunning
from ledger.core.keys import read_passphrase
from ledger.core.private import open_private
from ledger.core.settings import (
    DEFAULT_API_HOST,
    DEFAULT_API_PORT,
    INGEST_WORKERS_ENV,
    PUBLIC_URL_ENV,
    PublicOrigin,
    default_ingest_workers,
    public_origin,
)
from ledger.eth import deployment as deploy_mod
from ledger.eth.chain import Backend
from ledger.eth.devnet import port_is_free, process_alive
from ledger.node import Node, NodeOptions, clear_run_info, read_run_info, write_run_info

DETACH_TIMEOUT_SECONDS = 120
BACKGROUND_COLUMNS = "120"  # the width of a background node's log lines
DEVNET_LOSS = (
    "the blocks it made after its last state dump (every 2 s) are lost; `cofab up` resumes "
    "from that dump and anchors again what the chain lost"
)


def up(
    ctx: typer.Context,
    backend: Annotated[Backend, typer.Option(help="Chain backend")] = Backend.DEVNET,
    host: Annotated[str, typer.Option(help="API bind address")] = DEFAULT_API_HOST,
    port: Annotated[int, typer.Option(help="API port")] = DEFAULT_API_PORT,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar=PUBLIC_URL_ENV,
            help="Where members reach the API (scheme://host\\[:port]\\[/path]); sign-in "
            "messages must name it. Default: http://HOST:PORT",
        ),
    ] = None,
    devnet_port: Annotated[int, typer.Option(help="anvil port (devnet backend)")] = 8545,
    chain_id: Annotated[
        int | None, typer.Option(help="Refuse to start unless the chain has this id")
    ] = None,
    confirmations: Annotated[int, typer.Option(help="Blocks to wait after each tx")] = 0,
    redeploy: Annotated[bool, typer.Option(help="Deploy fresh contracts")] = False,
    deploy: Annotated[
        bool,
        typer.Option(
            "--deploy",
            help="rpc backend: deploy a new consortium (this node's key is its council) "
            "when none is recorded",
        ),
    ] = False,
    join: Annotated[
        str | None,
        typer.Option(
            help="rpc backend: join the consortium of a member node (its API URL) or of a "
            "deployment record file; checked against the code on chain",
        ),
    ] = None,
    payment_token: Annotated[
        str | None,
        typer.Option(
            envvar="COFAB_PAYMENT_TOKEN",
            help="Existing ERC-20 orders are paid in (consortium chains; dev chains deploy "
            "a demo dollar). Used when the Settlement is deployed",
        ),
    ] = None,
    detach: Annotated[
        bool, typer.Option(help="Run in the background; return when healthy")
    ] = False,
    unlock: Annotated[
        list[str] | None,
        typer.Option(help="Also unlock this key (repeatable; same passphrase source)"),
    ] = None,
    anchor_steps: Annotated[
        int, typer.Option(help="Anchor a split once this many steps are pending")
    ] = 1024,
    anchor_age: Annotated[
        float, typer.Option(help="...or once its oldest pending step is this many seconds old")
    ] = 30.0,
    ingest_workers: Annotated[
        int | None,
        typer.Option(
            envvar=INGEST_WORKERS_ENV,
            help="Processes that check the signatures and payloads of step batches (0: the "
            "API process itself). Default: one per core beside the API process's own",
        ),
    ] = None,
) -> None:
    """Start a node: chain (devnet by default), contracts, and the API."""
    with handled():
        options = shared(ctx)
        directory, rpc_url, passphrase_file = (
            options.directory,
            options.rpc_url,
            options.passphrase_file,
        )
        running = read_run_info(directory)
        if running:
            raise ConfigError(
                f"a node is already running for {directory} (pid {running['pid']}, "
                f"API {running['api_url']}): `cofab down` first"
            )
        if not port_is_free(host, port):
            raise ConfigError(f"port {port} on {host} is already taken: choose another with --port")
        if payment_token is not None and not is_address(payment_token):
            raise ConfigError(f"--payment-token {payment_token!r} is not an address")
        if backend is Backend.RPC and not rpc_url:
            raise ConfigError("--backend rpc needs --rpc-url")
        if rpc_url and backend is Backend.DEVNET:
            backend = Backend.RPC
        origin = public_origin(public_url, host=host, port=port)
        if anchor_steps < 1 or anchor_age <= 0:
            raise ConfigError("--anchor-steps must be at least 1 and --anchor-age positive")
        if ingest_workers is not None and ingest_workers < 0:
            raise ConfigError(f"--ingest-workers must be 0 or more: {ingest_workers}")
        if detach and not _detach(directory, host, port):
            return  # the caller's side: the node is healthy in the background
        opts = NodeOptions(
            backend=backend,
            data_dir=directory,
            rpc_url=rpc_url,
            devnet_port=devnet_port,
            confirmations=confirmations,
            chain_id=chain_id,
            redeploy=redeploy,
            deploy=deploy,
            join=join,
            passphrase_file=passphrase_file,
            payment_token=to_checksum_address(payment_token) if payment_token else None,
            prompt=prompt_passphrase(),
        )
        with out.status("starting node") as status:
            node = Node.start(opts, progress=lambda msg: status.update(msg))
        try:
            for name in unlock or []:
                status_msg = f"unlocking {name}"
                with out.status(status_msg):
                    passphrase = read_passphrase(passphrase_file, prompt=prompt_passphrase())
                    node.unlock(name, passphrase)
            if "Traceability" in node.deployment.contracts:
                node.steps.start_anchoring(max_steps=anchor_steps, max_age=anchor_age)
                workers = default_ingest_workers() if ingest_workers is None else ingest_workers
                node.steps.start_ingest_workers(workers)
            if "JobBoard" in node.deployment.contracts:
                node.notify.start(own=[(host, port)])
            _serve(node, directory, host, port, backend, origin)
        finally:
            clear_run_info(directory)
            with out.status("stopping the chain (state is kept)"):
                node.close()
        devnet = node.chain.devnet
        if devnet is not None and devnet.died:
            out.print(
                f"[bold yellow]warning:[/] the devnet had stopped on its own "
                f"({devnet.died}): {DEVNET_LOSS}"
            )
        out.print("node stopped; run `cofab up` again to resume the same chain")


def _serve(
    node: Node, directory: Path, host: str, port: int, backend: Backend, origin: PublicOrigin
) -> None:
    import uvicorn

    from api.app import create_app

    api_url = f"http://{host}:{port}"
    devnet = node.chain.devnet
    write_run_info(
        directory,
        {
            "pid": os.getpid(),
            "backend": backend.value,
            "rpc_url": node.chain.url,
            "api_url": api_url,
            "public_url": origin.url,
            "chain_id": node.chain.chain_id,
            **(
                {"devnet_pid": devnet.process.pid}
                if devnet is not None and devnet.process is not None
                else {}
            ),
        },
    )
    status = node.status()
    out.print(f"[bold green]cofab node ready[/] on chain {status['chain_id']} ({backend.value})")
    if node.chain.devnet is not None and node.chain.devnet.recovered:
        out.print(f"[bold yellow]warning:[/] {node.chain.devnet.recovered}")
    for name, address in status["contracts"].items():
        out.print(f"  {name:12} {address}")
    out.print(f"  operator     {status['signers'][0]}")
    out.print(f"  data dir     {directory}")
    out.print(f"  public URL   {origin.url}  (sign-in messages must name it)")
    out.print(f"\nAPI {api_url}  ·  docs {api_url}/docs  ·  Ctrl-C stops (state is kept)")
    out.print("Try:  curl " + api_url + "/health   ·   .venv/bin/cofab member list")
    config = uvicorn.Config(
        create_app(node, origin),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=3,  # open event streams do not hold the shutdown
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; turning SIGTERM
    # into KeyboardInterrupt (like Ctrl-C) lets the caller stop anvil and keep its state.
    signal.signal(signal.SIGTERM, _interrupt)
    gc.freeze()  # start-up objects live as long as the node: full collections skip them
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _detach(directory: Path, host: str, port: int) -> bool:
    """Start this node in the background, logging to node.log, and wait until it answers
    /health. True in the background process, which goes on to start the node; False in
    the caller's, once the node is healthy.

    On Linux, the background process is a fork of this one, which has already imported
    everything a node needs (about 2 CPU-seconds a new interpreter would spend again). A
    process with threads, or another system, starts a new interpreter instead."""
    log_path = directory / "node.log"
    log_fd = open_private(log_path)
    if sys.platform == "linux" and threading.active_count() == 1:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _become_background(log_fd)
            return True
        os.close(log_fd)

        def alive() -> bool:
            return os.waitpid(pid, os.WNOHANG) == (0, 0)
    else:
        with os.fdopen(log_fd, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ledger.cli", *[a for a in sys.argv[1:] if a != "--detach"]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "COLUMNS": BACKGROUND_COLUMNS},
                umask=0o077,  # whatever the node writes is private to its user
            )
        pid = proc.pid

        def alive() -> bool:
            return proc.poll() is None

    url = f"http://{host}:{port}/health"
    deadline = time.monotonic() + DETACH_TIMEOUT_SECONDS
    with (
        out.status("starting node in the background"),
        httpx.Client(timeout=1, trust_env=False) as client,  # one TLS set-up, not one a poll
    ):
        while time.monotonic() < deadline:
            if not alive():
                tail = log_path.read_text(errors="replace")[-1500:]
                raise NodeNotRunning(f"the node exited during start-up; its log says:\n{tail}")
            try:
                if client.get(url).status_code == 200 and read_run_info(directory):
                    out.print(
                        f"node running (pid {pid}), API http://{host}:{port}, "
                        f"log {log_path}; stop it with `cofab down`"
                    )
                    return False
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    os.kill(pid, signal.SIGTERM)
    raise NodeNotRunning(f"the node did not become healthy in {DETACH_TIMEOUT_SECONDS}s")


def _become_background(log_fd: int) -> None:
    """In the forked process: a session of its own (a terminal's Ctrl-C or hang-up does
    not reach it), no input, its output appended to the log, private files."""
    os.setsid()
    os.umask(0o077)  # whatever the node writes is private to its user
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(devnull)
    os.close(log_fd)
    os.environ["COLUMNS"] = BACKGROUND_COLUMNS
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]


def down(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a clean stop")] = 30.0,
) -> None:
    """Stop the node started by `cofab up` for this data directory (chain state is kept).

    Says what it found: a devnet that had already stopped (killed, crashed) is not a
    failure of `down`, but the blocks it made after its last state dump are lost."""
    with handled():
        directory = shared(ctx).directory
        info = read_run_info(directory)
        if not info:
            out.print(f"no node is running for {directory}")
            return
        pid = int(info["pid"])
        devnet_pid = info.get("devnet_pid")
        devnet_was_up = devnet_pid is not None and process_alive(int(devnet_pid))
        with contextlib.suppress(ProcessLookupError):  # it may have stopped meanwhile
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        with out.status(f"stopping node (pid {pid})"):
            while process_alive(pid):
                if time.monotonic() > deadline:
                    raise NodeNotRunning(f"node pid {pid} did not stop within {timeout:.0f}s")
                time.sleep(0.2)
        out.print(f"node stopped (pid {pid})")
        if devnet_pid is None:
            out.print(f"the chain at {info.get('rpc_url')} is not this node's: left running")
        elif devnet_was_up:
            out.print(f"devnet stopped; its state is kept in {directory / 'devnet'}")
        else:
            out.print(
                f"[bold yellow]the devnet (pid {devnet_pid}) had already stopped[/] before "
                f"`cofab down`: {DEVNET_LOSS}"
            )


def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Chain id, block height, data directory and every deployed contract address."""
    with handled():
        options = shared(ctx)
        directory, rpc_url = options.directory, options.rpc_url
        info = read_run_info(directory)
        if not info and not rpc_url:
            records = sorted((directory / "deployments").glob("*.json"))
            if as_json:
                print_json(
                    {
                        "running": False,
                        "data_dir": str(directory),
                        "deployments": [p.stem for p in records],
                    }
                )
            else:
                err.print(f"node: not running (data dir {directory})")
                for path in records:
                    rec = deploy_mod.load(directory, int(path.stem))
                    if rec:
                        err.print(
                            f"  chain {rec.chain_id}: "
                            + ", ".join(f"{n} {r.address}" for n, r in rec.contracts.items())
                        )
            raise typer.Exit(3)
        node = Node.attach(directory, rpc_url=rpc_url)
        data = {"running": bool(info), **node.status(), "api_url": (info or {}).get("api_url")}
        if data["api_url"]:  # what the running node knows that the chain does not
            data["stalled"] = _running_node_stalled(str(data["api_url"]))
        if as_json:
            print_json(data)
            return
        out.print(f"chain id     {data['chain_id']} ({data['backend']}, {data['rpc_url']})")
        out.print(f"block height {data['block_number']}")
        out.print(f"data dir     {data['data_dir']}")
        if data["api_url"]:
            out.print(f"API          {data['api_url']}")
        for name, address in data["contracts"].items():
            out.print(f"{name:12} {address}")
        for line in data["stalled"]:
            out.print(f"[bold red]stalled[/]      {line}")


def _running_node_stalled(api_url: str) -> list[str]:
    """The running node's own account of splits it cannot anchor (from GET /ready)."""
    try:
        answer = httpx.get(api_url + "/ready", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return ["the running node does not answer on " + api_url]
    return [str(line) for line in answer.get("stalled", [])]
