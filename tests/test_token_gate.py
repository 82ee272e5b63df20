"""The token gate remembers its answer per method and path: the same answers as matching
every route each time, for paths it has seen and paths it has not."""

from __future__ import annotations

from typing import Any

from starlette.routing import Match

from api.deps import TokenGate
from api.routers import audit, devices, jobs, steps


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def _matched(gate: TokenGate, scope: dict[str, Any]) -> bool:
    for route, needed in gate.routes:
        if route.matches(scope)[0] is Match.FULL:
            return needed
    return False


def test_remembered_answers_are_the_routes_answers() -> None:
    gate = TokenGate([m.router for m in (steps, jobs, devices, audit)])
    asks = [
        ("POST", "/steps/batch"),
        ("POST", "/steps/verify"),
        ("POST", "/jobs/3/splits/1/steps"),
        ("POST", "/jobs/4/splits/0/steps"),
        ("GET", "/jobs/3/splits/1/steps"),
        ("POST", "/no/such/path"),
        ("DELETE", "/steps/batch"),
    ]
    expected = [_matched(gate, _scope(*a)) for a in asks]
    assert True in expected and False in expected  # both kinds are asked
    for _ in range(2):  # first from the routes, then remembered
        assert [gate.needs_token(_scope(*a)) for a in asks] == expected


def test_the_memory_is_bounded() -> None:
    gate = TokenGate([steps.router])
    for i in range(10_000):
        gate.needs_token(_scope("POST", f"/jobs/{i}/splits/0/steps"))
    assert len(gate._known) <= 4096
    assert gate.needs_token(_scope("POST", "/jobs/1/splits/0/steps")) is True
