"""EPCIS 2.0 REST binding: capture, capture jobs, events query, named queries and their
subscriptions, API keys and mappings.

Capture and query take a member's bearer token or one of its EPCIS API keys (nothing else
does); keys and mappings are managed signed in only. The domain is `ledger.epcis`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import NodeDep, Principal, PrincipalDep, SessionDep, active_member
from api.params import MAX_UINT256
from ledger.core.errors import Forbidden, InvalidInput, QueryParameterError
from ledger.epcis import context as ctx
from ledger.epcis.query import query_document
from ledger.epcis.service import KEY_PREFIX, MAPPING_FIELDS
from ledger.membership.roles import Role
from ledger.node import Node

router = APIRouter(prefix="/epcis", tags=["EPCIS 2.0"])
JSON_LD = "application/ld+json"


def api_key_owner(node: Node, secret: str) -> str | None:
    """The owner of an EPCIS API key (checked before the EPCIS store is opened)."""
    return node.epcis.key_owner(secret) if secret.startswith(KEY_PREFIX) else None


def _factory(node: NodeDep, principal: PrincipalDep) -> Principal:
    """The caller, an active member holding the factory role, on this request."""
    member = active_member(node, principal.address)
    if not member.roles & Role.FACTORY:
        raise Forbidden(f"EPCIS capture is for factories; {member.address} is not one")
    return principal


def _member(node: NodeDep, principal: PrincipalDep) -> Principal:
    active_member(node, principal.address)
    return principal


FactoryDep = Annotated[Principal, Depends(_factory)]
ReaderDep = Annotated[Principal, Depends(_member)]


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="which system uses the key")


class MappingIn(BaseModel):
    field: str = Field(description=f"one of {', '.join(MAPPING_FIELDS)}")
    value: str = Field(
        min_length=1, max_length=2048, description="the identifier, as events write it"
    )
    job_id: int = Field(ge=0, le=MAX_UINT256)
    split_id: int = Field(ge=0, le=MAX_UINT256)


@router.post(
    "/capture",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Capture an EPCISDocument (or one event) as signed production steps",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}},
                        JSON_LD: {"schema": {"type": "object"}}},
        }
    },
)  # fmt: skip
async def capture(request: Request, node: NodeDep, who: FactoryDep) -> Response:
    try:
        document = await request.json()
    except ValueError as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", field="body") from None
    job = await run_in_threadpool(node.epcis.capture, who.address, document)
    location = f"/epcis/capture/{job['captureID']}"
    return JSONResponse(job, status_code=202, headers={"Location": location})


@router.get("/capture/{capture_id}", summary="A capture job")
def capture_job(capture_id: str, node: NodeDep, who: FactoryDep) -> dict[str, Any]:
    return node.epcis.capture_job(who.address, capture_id)


@router.get("/events", summary="Query events (EPCIS 2.0 query parameters); each with its proof")
def events(request: Request, node: NodeDep, who: ReaderDep) -> Response:
    params = _params(request)
    found, token = node.epcis.query(params)
    return _results(request, params, found, token, "SimpleEventQuery")


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


def _results(
    request: Request,
    params: dict[str, list[str]],
    found: list[dict[str, Any]],
    token: str | None,
    name: str,
) -> Response:
    """One page of query results as an EPCISQueryDocument, the next page in `Link`."""
    headers = {}
    if token is not None:
        rest = [(k, v) for k, vs in params.items() if k != "nextPageToken" for v in vs]
        url = f"{request.url.path}?{urlencode([*rest, ('nextPageToken', token)])}"
        headers["Link"] = f'<{url}>; rel="next"'
    body = query_document(found, name, str(request.url_for("cofab_context")))
    return JSONResponse(body, headers=headers, media_type=JSON_LD)


async def _body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise QueryParameterError(f"the body is not JSON: {exc}", field="body") from None


_JSON_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


@router.post(
    "/queries",
    status_code=status.HTTP_201_CREATED,
    summary="Create a named query ({name, query}: the EPCIS 2.0 query language)",
    openapi_extra=_JSON_BODY,
)
async def create_query(request: Request, node: NodeDep, who: ReaderDep) -> Response:
    made = node.epcis.subscriptions.create_query(who.address, await _body(request))
    location = f"{request.url.path}/{made['name']}"
    return JSONResponse(made, status_code=201, headers={"Location": location})


@router.get("/queries", summary="Your named queries")
def list_queries(node: NodeDep, who: ReaderDep) -> list[dict[str, Any]]:
    return node.epcis.subscriptions.queries(who.address)


@router.get("/queries/{name}", summary="One of your named queries")
def get_query(name: str, node: NodeDep, who: ReaderDep) -> dict[str, Any]:
    return node.epcis.subscriptions.named(who.address, name)


@router.delete(
    "/queries/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a named query and every subscription to it",
)
def delete_query(name: str, node: NodeDep, who: ReaderDep) -> Response:
    node.epcis.subscriptions.delete_query(who.address, name)
    return Response(status_code=204)


@router.get("/queries/{name}/events", summary="The named query's events, one page")
def query_events(name: str, request: Request, node: NodeDep, who: ReaderDep) -> Response:
    params = _params(request)
    found, token = node.epcis.subscriptions.query_events(who.address, name, params)
    return _results(request, params, found, token, name)


@router.post(
    "/queries/{name}/subscriptions",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a webhook (dest) to a named query: stream: true or a schedule",
    openapi_extra=_JSON_BODY,
)
async def subscribe(name: str, request: Request, node: NodeDep, who: ReaderDep) -> Response:
    body = await _body(request)
    origin = request.app.state.origin
    node.notify.own.add((origin.host, origin.port))  # never a report to the node itself
    made = await run_in_threadpool(node.epcis.subscriptions.subscribe, who.address, name, body)
    location = f"{request.url.path}/{made['subscriptionID']}"
    return JSONResponse(made, status_code=201, headers={"Location": location})


@router.get("/queries/{name}/subscriptions", summary="Your subscriptions to a named query")
def list_subscriptions(name: str, node: NodeDep, who: ReaderDep) -> list[dict[str, Any]]:
    return node.epcis.subscriptions.subscriptions(who.address, name)


@router.get("/queries/{name}/subscriptions/{sid}", summary="One of your subscriptions")
def get_subscription(name: str, sid: str, node: NodeDep, who: ReaderDep) -> dict[str, Any]:
    return node.epcis.subscriptions.subscription(who.address, name, sid)


@router.delete(
    "/queries/{name}/subscriptions/{sid}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Unsubscribe (pending reports are dropped)",
)
def unsubscribe(name: str, sid: str, node: NodeDep, who: ReaderDep) -> Response:
    node.epcis.subscriptions.unsubscribe(who.address, name, sid)
    return Response(status_code=204)


@router.get("/events/{event_id:path}", summary="One event by its eventID, with its proof")
def event(event_id: str, request: Request, node: NodeDep, who: ReaderDep) -> Response:
    found = node.epcis.event(event_id)
    found["@context"] = [ctx.GS1_CONTEXT, str(request.url_for("cofab_context"))]
    return JSONResponse(found, media_type=JSON_LD)


@router.get("/context/cofab.jsonld", name="cofab_context", summary="cofab's JSON-LD context")
def cofab_context() -> Response:
    return JSONResponse(ctx.document(), media_type=JSON_LD)


@router.post("/keys", status_code=status.HTTP_201_CREATED, summary="Create an API key (shown once)")
def create_key(body: KeyIn, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    _factory(node, Principal(session.address, "token"))
    return node.epcis.create_key(session.address, body.name)


@router.get("/keys", summary="Your API keys (never the keys themselves)")
def list_keys(node: NodeDep, session: SessionDep) -> list[dict[str, Any]]:
    return node.epcis.store.keys(session.address)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a key")
def revoke_key(key_id: str, node: NodeDep, session: SessionDep) -> Response:
    node.epcis.revoke_key(session.address, key_id)
    return Response(status_code=204)


@router.post(
    "/mappings", status_code=status.HTTP_201_CREATED, summary="Map an identifier to a split"
)
def add_mapping(body: MappingIn, node: NodeDep, session: SessionDep) -> dict[str, Any]:
    _factory(node, Principal(session.address, "token"))
    node.epcis.map(session.address, body.field, body.value, body.job_id, body.split_id)
    return body.model_dump()


@router.get("/mappings", summary="Your mappings of identifiers to splits")
def list_mappings(node: NodeDep, session: SessionDep) -> list[dict[str, Any]]:
    return node.epcis.mappings(session.address)


@router.delete("/mappings", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a mapping")
def remove_mapping(field: str, value: str, node: NodeDep, session: SessionDep) -> Response:
    node.epcis.unmap(session.address, field, value)
    return Response(status_code=204)
