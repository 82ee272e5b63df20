"""`cofab epcis` as a factory runs it against a detached devnet node: capture a document,
query it back, keep a named query and subscribe to it; a refused capture or query is one
line naming what was wrong, with its exit code, and changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kit import FAST_KDF, Cli, cli_refused, ok
from ledger.eth.toolchain import free_port
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec
from ledger.scenario import (
    factory_shares,
    licensed_design,
    make_operator_factory,
    member,
    order_in_production,
)
from ledger.steps.builder import object_event

POINT = "urn:epc:id:sgln:0614141.00777.0"
PUBLIC = "http://93.184.216.34/hooks/epcis"  # a public address; no report is due to it here


@dataclass
class Factory:
    cli: Cli
    job: int
    device: str  # the address of the MES's device key, in the node's keyring as "mes"
    t0: int
    passphrase: Path  # the operator's (the factory's), which the device key shares

    def run(self, *args: str, input: str | None = None) -> Any:
        return self.cli.run(*args, "--passphrase-file", str(self.passphrase), input=input)

    def document(self, *events: dict[str, Any]) -> Path:
        body = {
            "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
            "type": "EPCISDocument",
            "schemaVersion": "2.0",
            "creationDate": "2026-11-22T08:00:00Z",
            "epcisBody": {"eventList": list(events)},
        }
        path = self.cli.data_dir.parent / f"doc-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(body))
        return path

    def event(self, step: str, serial: int, **extra: Any) -> dict[str, Any]:
        return object_event(
            step,
            self.t0 + serial,
            epcs=[f"urn:epc:id:sgtin:0614141.107346.{serial}"],
            read_point=POINT,
            **extra,
        )

    def events(self) -> list[dict[str, Any]]:
        found = json.loads(ok(self.run("epcis", "events", "--json")))
        return list(found["epcisBody"]["queryResults"]["resultsBody"]["eventList"])


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Factory]:
    """One detached devnet node for this module's tests (each leaves it as it found it
    or only adds to it): its operator is a factory with an order in production, a device
    key for its MES in the keyring, authorised on chain, and a mapping of POINT to split 0."""
    cli = Cli(tmp_path_factory.mktemp("epcis-cli") / "data", free_port(), free_port())
    ok(cli.run(*cli.up_args(), "--detach"))
    try:
        passphrase = cli.data_dir / "secrets" / "operator.pass"
        node = Node.attach(cli.data_dir)
        try:
            node.unlock("operator", passphrase.read_text())
            op = make_operator_factory(node)
            buyer = member(node, int(Role.BUYER))
            design = licensed_design(node, member(node, int(Role.DESIGNER)), buyer.address)
            [share] = factory_shares(1)
            spec = SplitSpec(op.address, "lot 1", 10, share)
            job = order_in_production(node, buyer, design, [spec], 10**6)
            device = node.keyring.new("mes", passphrase.read_text(), kdf_iterations=FAST_KDF)
            node.consortium.authorize_device(
                op, node.keyring.unlock("mes", passphrase.read_text()), 0
            )
            t0 = max(int(node.chain.w3.eth.get_block("latest")["timestamp"]), int(time.time()))
        finally:
            node.close()
        factory = Factory(cli, job, device.address, t0 + 1, passphrase)
        ok(factory.run("epcis", "map", "readPoint", POINT, str(job), "0"))
        yield factory
    finally:
        cli.run("down")


def test_a_factory_captures_queries_and_subscribes_from_the_cli(plant: Factory) -> None:
    shipping, packing = plant.event("shipping", 1), plant.event("packing", 2)
    document = plant.document(shipping, packing)

    job = json.loads(ok(plant.run("epcis", "capture", str(document), "--device", "mes", "--json")))
    assert (job["captured"], job["duplicates"], job["success"]) == (2, 0, True)
    shipped_id, _ = job["eventIDs"]
    assert shipped_id.startswith("ni:///sha-256;")
    again = ok(plant.run("epcis", "capture", "-", "--device", "mes", input=document.read_text()))
    assert "0 captured, 2 already known" in again  # idempotent on eventID, read from stdin

    found = json.loads(ok(plant.run("epcis", "events", "--biz-step", "shipping", "--json")))
    assert found["type"] == "EPCISQueryDocument"
    [event] = found["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert event["eventID"] == shipped_id
    assert event["cofab:proof"]["signer"] == plant.device
    assert (event["cofab:proof"]["jobId"], event["cofab:proof"]["splitId"]) == (plant.job, 0)
    epc = "urn:epc:id:sgtin:0614141.107346.2"
    assert [e["bizStep"] for e in plant.events() if e["epcList"] == [epc]] == ["packing"]
    table = ok(plant.run("epcis", "events", "--read-point", POINT, "--per-page", "1"))
    assert "shipping" in table and "1 events" in table and "--next-page-token" in table
    token = table.rsplit("--next-page-token ", 1)[1].split()[0]
    page = ok(plant.run("epcis", "events", "--per-page", "1", "--next-page-token", token))
    assert "packing" in page and "shipping" not in page

    ok(plant.run("epcis", "query", "create", "shipped", "--biz-step", "shipping"))
    [named] = json.loads(ok(plant.run("epcis", "query", "list")))
    assert named == {"name": "shipped", "query": {"EQ_bizStep": ["shipping"]}}
    shown = json.loads(ok(plant.run("epcis", "query", "show", "shipped", "--json")))
    assert shown["epcisBody"]["queryResults"]["queryName"] == "shipped"
    results = shown["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["eventID"] for e in results] == [shipped_id]

    made = json.loads(ok(plant.run("epcis", "subscribe", "shipped", "--dest", PUBLIC, "--json")))
    assert made["stream"] is True and made["signatureToken"]  # made by the node, shown once
    [listed] = json.loads(ok(plant.run("epcis", "subscriptions", "shipped")))
    assert listed["subscriptionID"] == made["subscriptionID"] and "signatureToken" not in listed
    ok(plant.run("epcis", "unsubscribe", "shipped", made["subscriptionID"]))
    assert json.loads(ok(plant.run("epcis", "subscriptions", "shipped"))) == []
    ok(plant.run("epcis", "query", "delete", "shipped"))
    assert json.loads(ok(plant.run("epcis", "query", "list"))) == []


def test_bad_input_is_refused_naming_it_and_changes_nothing(plant: Factory) -> None:
    before = plant.events()
    duplicated = plant.event("shipping", 10)
    duplicated["epcList"] *= 2  # an EPC listed twice
    bad = plant.document(plant.event("packing", 11), duplicated)
    cli_refused(
        plant.run("epcis", "capture", str(bad), "--device", "mes"),
        2,
        "epcisBody.eventList[1].epcList: ",
    )
    elsewhere = plant.event("packing", 12, readPoint={"id": "urn:epc:id:sgln:0614141.00999.0"})
    cli_refused(
        plant.run("epcis", "capture", str(plant.document(elsewhere)), "--device", "mes"),
        2,
        "maps to no split",
    )
    cli_refused(plant.run("epcis", "events", "--ge-event-time", "yesterday"), 2, "--ge-event-time:")
    cli_refused(plant.run("epcis", "query", "create", "q", "--lt-event-time", "soon"), 2,
                "--lt-event-time:")  # fmt: skip
    cli_refused(plant.run("epcis", "subscribe", "nothing", "--dest", PUBLIC), 1, "no query")
    assert plant.events() == before
    assert json.loads(ok(plant.run("epcis", "query", "list"))) == []
