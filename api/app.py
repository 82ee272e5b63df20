"""The FastAPI application over one Node."""

from __future__ import annotations

from fastapi import FastAPI

from api import portal, problems
from api.deps import TokenGate, active_member
from api.limits import RequestLimits
from api.routers import (
    audit,
    auth,
    contracts,
    council,
    designs,
    devices,
    disputes,
    epcis,
    events,
    handovers,
    health,
    jobs,
    members,
    pay,
    proposals,
    reputation,
    rpc,
    steps,
    timeline,
    tx,
)
from api.sessions import SessionStore
from ledger import __version__
from ledger.core.settings import PublicOrigin, public_origin
from ledger.node import Node

DESCRIPTION = """
cofab node API. Active members sign in with Sign-In with Ethereum (EIP-4361): get a nonce,
the node's domain and URI from `GET /auth/nonce`, sign the message with your key,
`POST /auth/login`, then send `Authorization: Bearer <token>`. Errors are RFC 9457
`application/problem+json`.
"""


def create_app(node: Node, public_url: str | PublicOrigin | None = None) -> FastAPI:
    """The API; sign-in messages must name `public_url` (default: $COFAB_PUBLIC_URL, else
    the default bind address)."""
    origin = public_url if isinstance(public_url, PublicOrigin) else public_origin(public_url)
    app = FastAPI(title="cofab", version=__version__, description=DESCRIPTION)
    app.state.node = node
    app.state.sessions = SessionStore(
        node.chain.chain_id, origin, lambda address: active_member(node, address)
    )
    problems.install(app)
    tx.install(app)
    app.add_middleware(RequestLimits)
    routers = [m.router for m in (health, auth, members, proposals, devices, designs, steps)]
    routers += [m.router for m in (jobs, pay, audit, tx, disputes, reputation, council, epcis)]
    routers += [m.router for m in (events, contracts, rpc, handovers, timeline)]
    for router in routers:
        # The routers' own routes, not `include_router`: FastAPI would build an included
        # router's routes again for each app (their dependencies and models, a quarter of a
        # second), and an app is made per node and per test. No include adds a prefix,
        # tags or dependencies of its own, so the routes are the same either way (the
        # OpenAPI document is identical); dependency overrides are not used.
        app.router.routes.extend(router.routes)
    app.state.api_keys = lambda secret: epcis.api_key_owner(node, secret)
    app.state.token_gate = TokenGate(routers)  # who needs a token, before a body is read
    app.state.origin = origin  # webhooks never call the node itself
    portal.install(app)
    return app
