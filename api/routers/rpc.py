"""A read-only JSON-RPC window on the chain, same origin as the portal.

The Verify page computes its verdict in the browser from the chain alone (ethers'
JsonRpcProvider pointed here): it needs the chain's reads, not the node's opinion. Only
the reads that verification uses pass (anything that could write, sign, or ask the node's
own accounts is refused with 403); log queries are bounded in block range; bodies, batches
and each caller's request rate are bounded so the window cannot be used to load the chain.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from hexbytes import HexBytes
from starlette.concurrency import run_in_threadpool
from web3.types import RPCEndpoint

from api.deps import NodeDep
from ledger.core.errors import Forbidden, InvalidInput, TooLarge, TooManyRequests
from ledger.eth.chain import Backend

router = APIRouter(tags=["chain"])

READS = frozenset(
    {
        "eth_chainId",
        "eth_blockNumber",
        "eth_call",
        "eth_getLogs",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getTransactionReceipt",
    }
)
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH = 20
MAX_LOG_BLOCKS = 100_000
RATE_WINDOW_SECONDS = 60.0
RATE_LIMIT = 600  # requests (batch entries count one each) per caller per window


class RateLimiter:
    """Fixed-window request counts per caller (its IP)."""

    def __init__(self, limit: int = RATE_LIMIT, window: float = RATE_WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._counts: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, caller: str, n: int) -> None:
        now = time.monotonic()
        with self._lock:
            start, used = self._counts.get(caller, (now, 0))
            if now - start >= self.window:
                start, used = now, 0
            if used + n > self.limit:
                raise TooManyRequests(
                    f"more than {self.limit} chain reads in {self.window:.0f} s from "
                    f"{caller}; try again in {self.window - (now - start):.0f} s"
                )
            self._counts[caller] = (start, used + n)


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    limiter = getattr(state, "rpc_limiter", None)
    if not isinstance(limiter, RateLimiter):
        limiter = state.rpc_limiter = RateLimiter()
    return limiter


def _block(value: Any, latest: int, name: str) -> int:
    if value in (None, "latest", "safe", "finalized", "pending"):
        return latest
    if value == "earliest":
        return 0
    if isinstance(value, str) and value.startswith("0x"):
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise InvalidInput(f"eth_getLogs: {name} must be a block number or tag, not {value!r}")


def _check(node: Any, call: Any) -> tuple[Any, str, list[Any]]:
    if not isinstance(call, dict) or not isinstance(call.get("method"), str):
        raise InvalidInput("a JSON-RPC request is an object with a method")
    method, params = call["method"], call.get("params") or []
    if method not in READS:
        raise Forbidden(
            f"{method} is not served here: this endpoint answers only " + ", ".join(sorted(READS))
        )
    if not isinstance(params, list):
        raise InvalidInput(f"{method}: params must be a list")
    if method == "eth_getLogs":
        query = params[0] if params and isinstance(params[0], dict) else None
        if query is None:
            raise InvalidInput("eth_getLogs takes one filter object")
        if "blockHash" not in query:
            latest = node.chain.block_number()
            first = _block(query.get("fromBlock"), latest, "fromBlock")
            last = _block(query.get("toBlock"), latest, "toBlock")
            if last - first >= MAX_LOG_BLOCKS:
                raise InvalidInput(
                    f"eth_getLogs over {last - first + 1} blocks; ask for at most "
                    f"{MAX_LOG_BLOCKS} at a time"
                )
    return call.get("id"), method, params


def _plain(value: Any) -> Any:
    """A provider's answer as JSON-RPC puts it (the embedded chain answers with Python ints
    and bytes: quantities become hex, bytes 0x-hex)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return hex(value)
    if isinstance(value, (bytes, bytearray)):
        return HexBytes(value).to_0x_hex()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _forward(node: Any, rpc_id: Any, method: str, params: list[Any]) -> dict[str, Any]:
    chain = node.chain
    if method == "eth_call" and chain.backend is Backend.EMBEDDED and chain.faucet is not None:
        # eth-tester runs a call as a transaction from a funded account; JSON-RPC's is optional
        params = [{"from": chain.faucet.address, **params[0]}, *params[1:]] if params else params
    try:
        if chain.backend is Backend.EMBEDDED:  # eth-tester speaks JSON-RPC through web3 only
            if method == "eth_getLogs" and isinstance(params[0].get("address"), str):
                params = [{**params[0], "address": [params[0]["address"]]}]  # its filter's form
            answer = {"result": chain.w3.manager.request_blocking(RPCEndpoint(method), params)}
        else:
            answer = chain.w3.provider.make_request(RPCEndpoint(method), params)
    except Exception as exc:  # noqa: BLE001 - a chain's error goes back as a JSON-RPC error
        data = getattr(exc, "data", None)
        error: dict[str, Any] = {"code": -32000, "message": str(exc) or "execution failed"}
        if data is not None:
            error["data"] = _plain(data)
        return {"jsonrpc": "2.0", "id": rpc_id, "error": error}
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": rpc_id}
    if "error" in answer:
        out["error"] = _plain(answer["error"])
    else:
        out["result"] = _plain(answer.get("result"))
    return out


@router.post(
    "/rpc",
    summary="Read-only JSON-RPC on the chain (allow-listed reads; for in-browser "
    "verification with ethers' JsonRpcProvider)",
)
async def rpc(request: Request, node: NodeDep) -> JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"a JSON-RPC body is at most {MAX_BODY_BYTES} bytes")
    try:
        parsed = json.loads(body)
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    calls = parsed if isinstance(parsed, list) else [parsed]
    if not calls or len(calls) > MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} requests")
    checked = [_check(node, c) for c in calls]
    _limiter(request).take(request.client.host if request.client else "?", len(checked))
    answers = [await run_in_threadpool(_forward, node, *c) for c in checked]
    return JSONResponse(answers if isinstance(parsed, list) else answers[0])
