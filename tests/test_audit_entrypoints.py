"""The tamper corpus through every entry point: `cofab step verify`, `POST /steps/verify`,
`cofab audit` and the audit API give each bundle the same verdict and the same findings.

One world on anvil (real JSON-RPC) holds a clean job and one job per chain-side attack;
each case is a bundle, checked once by the checker itself and once through each entry.
"""

from __future__ import annotations

import copy
import json
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_audit import device_steps, record, step_before_admission, two_split_job
from typer.testing import CliRunner

from api.app import create_app
from kit import FAST_KDF, PASSPHRASE, chain_now, new_account, parties
from ledger.audit.chain_record import Contracts
from ledger.audit.engine import AuditInputs, audit
from ledger.cli import app as cli
from ledger.eth.chain import Backend, http_web3
from ledger.eth.rpc_counter import CountingProxy
from ledger.eth.toolchain import free_port
from ledger.node import Node, NodeOptions
from ledger.orders.jobs import SplitSpec
from ledger.scenario import factory_shares, order_in_production
from ledger.steps import compact
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.bundle import Bundle, Encoding, encoded
from ledger.steps.signatures import Signer
from ledger.verify.checker import verify_bundle


@dataclass
class Case:
    job: int
    bundle: dict[str, Any]
    expect: set[str]  # blocking codes that must be found (empty: the bundle is clean)
    exact: bool = True  # the blocking codes are exactly `expect`
    absent: frozenset[str] = frozenset()  # codes that must not be found


@dataclass
class World:
    node: Node
    proxy: CountingProxy
    cases: dict[str, Case]

    @property
    def url(self) -> str:
        return self.proxy.url


def _one_split_job(node: Node, factories: int = 1) -> tuple[int, Any]:
    p = parties(node, factories=factories)
    spec = SplitSpec(p.factories[0].address, "machining", 10, factory_shares(1)[0])
    job = order_in_production(node, p.buyer, p.design, [spec], 10_000 * 10**6)
    node.chain.advance_time(60)  # steps dated up to a minute back still follow the order
    return job, p


def _resigned_in_another_order(node: Node, job: int, bundle: dict) -> dict:
    items = bundle["splits"][0]["steps"]
    plant = node.sender(items[0]["record"]["member"])
    w = StepWriter(Signer(plant.account.key), node.steps.domain, job, 0, plant.address)
    out = copy.deepcopy(bundle)
    out["splits"][0]["steps"] = [
        {"record": sub.record, "signature": sub.signature, "payload": item["payload"]}
        for item in [items[i] for i in (0, 3, 2, 1, 4, 5)]
        for sub in [w.step(json.loads(item["payload"]))]
    ]
    return out


def _tampered(bundle: dict, fn: Callable[[list[dict], dict], None]) -> dict:
    out = copy.deepcopy(bundle)
    fn(out["splits"][0]["steps"], out)
    return out


def _edit_payload(steps: list[dict], _: dict) -> None:
    doc = json.loads(steps[2]["payload"])
    doc["quantityList"][0]["quantity"] = 2
    steps[2]["payload"] = json.dumps(doc)


def _swap_seq_fields(steps: list[dict], _: dict) -> None:
    steps[1]["record"]["seq"], steps[3]["record"]["seq"] = 3, 1


def _swap_list_order(steps: list[dict], _: dict) -> None:
    steps[1], steps[2] = steps[2], steps[1]


def _forge(steps: list[dict], _: dict) -> None:
    digest = bytes.fromhex(steps[0]["step_hash"][2:])
    steps[0]["signature"] = "0x" + Signer(os.urandom(32)).sign(digest).hex()


def _copy_signature(steps: list[dict], _: dict) -> None:
    steps[1]["signature"] = steps[0]["signature"]


def _false_step_hash(steps: list[dict], _: dict) -> None:
    steps[0]["step_hash"] = "0x" + "ab" * 32


def _false_anchor_root(_: list[dict], bundle: dict) -> None:
    bundle["splits"][0]["anchors"][0]["root"] = "0x" + "00" * 31 + "01"


def _build(node: Node) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    # the story: two factories, split 0 anchored 0-3 and 4-5, split 1 anchored 0-2
    job, p = two_split_job(node, wait=60)
    good = node.steps.export(job)
    cases["clean"] = Case(job, good, set())
    cases["edited-payload"] = Case(job, _tampered(good, _edit_payload), {"payload-mismatch"})
    cases["resigned-in-another-order"] = Case(
        job,
        _resigned_in_another_order(node, job, good),
        {"not-included"},
        exact=False,
        absent=frozenset({"chain-break", "sequence-gap", "unauthorized-signer"}),
    )
    cases["seq-fields-swapped"] = Case(
        job, _tampered(good, _swap_seq_fields), {"chain-break", "not-included"}, exact=False
    )
    cases["list-order-swapped"] = Case(job, _tampered(good, _swap_list_order), set())
    cases["dropped-step"] = Case(
        job,
        _tampered(good, lambda s, _: s.pop(4)),
        {"missing-steps", "chain-break", "sequence-gap"},
    )
    cases["partial-anchored-range"] = Case(
        job, _tampered(good, lambda s, _: s.pop(5)), {"missing-steps"}
    )
    cases["forged-signature"] = Case(job, _tampered(good, _forge), {"unauthorized-signer"})
    cases["copied-signature"] = Case(job, _tampered(good, _copy_signature), {"unauthorized-signer"})
    cases["false-step-hash"] = Case(job, _tampered(good, _false_step_hash), {"hash-mismatch"})
    cases["false-anchor-root"] = Case(job, _tampered(good, _false_anchor_root), {"anchor-mismatch"})

    # a device key dates a step before it was bound to the factory
    job, p = _one_split_job(node)
    plant, device = p.factories[0], new_account()
    node.chain.advance_time(3600)
    receipt = node.consortium.authorize_device(plant, device, 0)
    bound = int(node.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    device_steps(node, plant, job, device, [bound - 1800, bound], received=bound + 1)
    node.steps.anchor(job, 0)
    cases["backdated-before-binding"] = Case(
        job, node.steps.export(job), {"backdated-before-binding"}
    )

    # a step dated before its device key expired, anchored only after the expiry
    job, p = _one_split_job(node)
    plant, device = p.factories[0], new_account()
    expiry = chain_now(node) + 600
    node.consortium.authorize_device(plant, device, expiry)
    now = chain_now(node)
    device_steps(node, plant, job, device, [now + 10], received=now + 20)
    node.chain.advance_time(700)
    node.steps.anchor(job, 0)
    cases["anchored-after-expiry"] = Case(job, node.steps.export(job), {"backdated-past-expiry"})

    # steps signed by a device key that was revoked before they were anchored
    job, p = _one_split_job(node)
    plant, device = p.factories[0], new_account()
    node.consortium.authorize_device(plant, device, 0)
    record(node, plant, job, 0, 2, signer=Signer(device.key))
    node.consortium.revoke_device(plant, device.address)
    node.steps.anchor(job, 0)
    cases["revoked-device-key"] = Case(job, node.steps.export(job), {"unauthorized-signer"})

    # a step dated after its anchor
    job, p = _one_split_job(node)
    plant = p.factories[0]
    w = StepWriter(Signer(plant.account.key), node.steps.domain, job, 0, plant.address)
    t = chain_now(node) + 250  # within the ingest's clock skew, after the coming anchor
    node.steps.ingestor.clock = lambda: t
    node.steps.ingest([w.step(object_event("packing", t))])
    node.steps.anchor(job, 0)
    cases["dated-after-anchor"] = Case(job, node.steps.export(job), {"after-anchor"})

    # a hand-over claimed in a payload that the receiver never signed on chain
    job, p = _one_split_job(node)
    lot = "0x" + "ab" * 32
    record(node, p.factories[0], job, 0, 1, **{"cofab:handover": {"toSplit": 1, "lot": lot}})
    node.steps.anchor(job, 0)
    cases["one-sided-handover"] = Case(job, node.steps.export(job), {"one-sided-handover"})

    # a step dated after the order but before its factory was admitted
    p = parties(node, factories=0)
    job = step_before_admission(node, p.buyer, p.design)
    cases["signer-not-yet-a-member"] = Case(job, node.steps.export(job), {"signer-not-yet-valid"})
    return cases


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COFAB_PASSPHRASE", PASSPHRASE)
        data = tmp_path_factory.mktemp("world")
        opts = NodeOptions(
            backend=Backend.DEVNET,
            data_dir=data / "node",
            devnet_port=free_port(),
            kdf_iterations=FAST_KDF,
        )
        node = Node.start(opts)
        try:
            with CountingProxy(str(node.chain.url)) as proxy:
                yield World(node, proxy, _build(node))
        finally:
            node.close()


Verdict = tuple[str, list[dict[str, Any]]]
_reference: dict[str, Verdict] = {}


def reference(world: World, name: str) -> Verdict:
    """The checker's own answer, once per case."""
    if name not in _reference:
        case = world.cases[name]
        result = verify_bundle(Bundle.load(case.bundle), http_web3(world.url)).report()
        _reference[name] = (result.verdict, [f.model_dump(mode="json") for f in result.findings])
    return _reference[name]


def _json_out(text: str) -> dict[str, Any]:
    return json.JSONDecoder().raw_decode(text[text.index("{") :])[0]


def _bundle_file(case: Case, tmp: Path, encoding: Encoding) -> Path:
    """The case's bundle written as a file in `encoding`."""
    path = tmp / ("bundle.csb" if encoding is Encoding.COMPACT else "bundle.json")
    path.write_bytes(encoded(case.bundle, encoding))
    return path


def step_verify_cli(world: World, case: Case, tmp: Path, encoding: Encoding) -> Verdict:
    path = _bundle_file(case, tmp, encoding)
    result = CliRunner().invoke(
        cli, ["step", "verify", str(path), "--rpc-url", world.url, "--json"]
    )
    answer = _json_out(result.stdout)
    assert result.exit_code == (0 if answer["ok"] else 2), result.output
    return answer["verdict"], answer["findings"]


def step_verify_api(world: World, case: Case, tmp: Path, encoding: Encoding) -> Verdict:
    media_type = compact.MEDIA_TYPE if encoding is Encoding.COMPACT else "application/json"
    resp = TestClient(create_app(world.node)).post(
        "/steps/verify",
        content=encoded(case.bundle, encoding),
        headers={"content-type": media_type},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["verdict"], resp.json()["findings"]


def audit_cli(world: World, case: Case, tmp: Path, encoding: Encoding) -> Verdict:
    path, out = _bundle_file(case, tmp, encoding), tmp / "report.json"
    dep = world.node.deployment
    args = ["audit", "job", str(case.job), "--bundle", str(path), "--out", str(out)]
    args += ["--job-board", dep.address("JobBoard"), "--traceability", dep.address("Traceability")]
    result = CliRunner().invoke(cli, [*args, "--rpc-url", world.url])
    report = json.loads(out.read_text())
    verdict = report["summary"]["verdict"]
    assert result.exit_code == (0 if verdict == "clean" else 4), result.output
    return verdict, report["findings"]


def audit_api(world: World, case: Case, tmp: Path, encoding: Encoding) -> Verdict:
    assert encoding is Encoding.JSON  # the audit API takes bundles inside its JSON body
    body = {"bundles": [case.bundle], "include_node_steps": False}
    resp = TestClient(create_app(world.node)).post(f"/jobs/{case.job}/audit", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["summary"]["verdict"], resp.json()["findings"]


Entry = Callable[[World, Case, Path, Encoding], Verdict]
ENTRIES: dict[str, tuple[Entry, Encoding]] = {
    "cofab step verify": (step_verify_cli, Encoding.JSON),
    "POST /steps/verify": (step_verify_api, Encoding.JSON),
    "cofab audit": (audit_cli, Encoding.JSON),
    "audit API": (audit_api, Encoding.JSON),
    # the compact encoding of the same bundle: the same verdict and findings
    "cofab step verify, compact": (step_verify_cli, Encoding.COMPACT),
    "POST /steps/verify, compact": (step_verify_api, Encoding.COMPACT),
    "cofab audit, compact": (audit_cli, Encoding.COMPACT),
}
CASES = [
    "clean",
    "edited-payload",
    "resigned-in-another-order",
    "seq-fields-swapped",
    "list-order-swapped",
    "dropped-step",
    "partial-anchored-range",
    "forged-signature",
    "copied-signature",
    "false-step-hash",
    "false-anchor-root",
    "backdated-before-binding",
    "anchored-after-expiry",
    "revoked-device-key",
    "dated-after-anchor",
    "one-sided-handover",
    "signer-not-yet-a-member",
]


@pytest.mark.parametrize("name", CASES)
def test_the_checker_finds_each_tamper(world: World, name: str) -> None:
    case = world.cases[name]
    verdict, findings = reference(world, name)
    blocking = {f["code"] for f in findings if f["severity"] in ("critical", "major")}
    assert case.expect <= blocking, findings
    assert not case.absent & blocking, findings
    if case.exact:
        assert blocking == case.expect, findings
    assert verdict == ("clean" if not blocking else "findings")


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("name", CASES)
def test_every_entry_point_gives_the_same_verdict(
    world: World, name: str, entry: str, tmp_path: Path
) -> None:
    run, encoding = ENTRIES[entry]
    verdict, findings = run(world, world.cases[name], tmp_path, encoding)
    assert (verdict, findings) == reference(world, name)


def test_verifying_a_bundle_costs_no_more_requests_than_auditing_it(world: World) -> None:
    case = world.cases["clean"]
    dep = world.node.deployment
    w3 = http_web3(world.url)
    w3.eth.chain_id  # noqa: B018 - the connection's one chain-id request, outside the counts
    world.proxy.reset()
    verify_bundle(Bundle.load(case.bundle), w3)
    verified = world.proxy.total()
    world.proxy.reset()
    contracts = Contracts.discover(w3, dep.address("JobBoard"), dep.address("Traceability"))
    audit(contracts, case.job, AuditInputs(bundles=[case.bundle]))
    audited = world.proxy.total()
    assert 0 < verified <= audited, (world.proxy.methods, verified, audited)
    assert "eth_chainId" not in world.proxy.methods


def _crafted(good: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """Bundles built to break a reader: name -> (body, content type)."""

    def edit(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        b = copy.deepcopy(good)
        fn(b)
        return b

    def step(b: dict[str, Any]) -> dict[str, Any]:
        return b["splits"][0]["steps"][0]  # type: ignore[no-any-return]

    def lower_member(b: dict[str, Any]) -> None:
        step(b)["record"]["member"] = step(b)["record"]["member"].lower()

    def huge_seq(b: dict[str, Any]) -> None:
        step(b)["record"]["seq"] = "9" * 5000

    def surrogate(b: dict[str, Any]) -> None:
        step(b)["payload"] = "\ud800"
        step(b)["record"]["bizStep"] = "\ud800"

    def overflow(b: dict[str, Any]) -> None:
        step(b)["payload"] = '{"cofab:handover": {"toSplit": 1e999}}'

    bundles = {
        "member in lower case": edit(lower_member),
        "traceability no address": edit(lambda b: b.update(traceability="0x12")),
        "job id negative": edit(lambda b: b.update(job_id=-1)),
        "job id past uint256": edit(lambda b: b.update(job_id=2**256)),
        "leaf encoding a number": edit(lambda b: b["merkle"].update(leaf_encoding=1)),
        "seq of 5,000 digits": edit(huge_seq),
        "lone surrogates": edit(surrogate),
        "hand-over to split 1e999": edit(overflow),
        "65 splits": edit(
            lambda b: b.update(
                splits=[{"split_id": i, "anchors": [], "steps": []} for i in range(65)]
            )
        ),
    }
    out: dict[str, tuple[Any, str]] = {}
    for name, b in bundles.items():
        out[name + " (json)"] = (json.dumps(b).encode(), "application/json")
        out[name + " (compact)"] = (compact.encode(b), compact.MEDIA_TYPE)
    nested = "[" * 100_000 + "]" * 100_000  # parsed, it would overflow the C stack
    out["UTF-16 JSON nested 100,000 deep"] = (nested.encode("utf-16-le"), "application/json")
    out["UTF-16 JSON nested, no content type"] = (nested.encode("utf-16"), "")
    header = compact.MAGIC + compact._frame(compact.HEADER, zlib.compress(nested.encode("utf-16")))
    out["compact header in UTF-16, nested"] = (header, compact.MEDIA_TYPE)
    bomb = compact.MAGIC + compact._frame(compact.HEADER, zlib.compress(b" " * (300 << 20), 9))
    out["compact header inflating to 300 MiB"] = (bomb, compact.MEDIA_TYPE)
    return out


def test_a_crafted_bundle_gets_a_4xx_or_a_verdict_never_a_500_or_a_crash(world: World) -> None:
    """Run in pytest's process, whose recursion limit py-evm has raised to 100,000: deep
    nesting that reached a parser would kill it, not fail one request."""
    client = TestClient(create_app(world.node), raise_server_exceptions=False)
    answers = {}
    for name, (body, media_type) in _crafted(world.cases["clean"].bundle).items():
        headers = {"content-type": media_type} if media_type else {}
        resp = client.post("/steps/verify", content=body, headers=headers)
        answers[name] = resp.status_code
    assert answers["member in lower case (json)"] == 200  # the same address: a verdict
    assert {n: c for n, c in answers.items() if c not in (200, 413, 422)} == {}


def test_a_checker_worker_that_died_fails_no_check(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed between checks (the out-of-memory killer, an operator) leaves a
    broken pool: the next check does its parts here and gets its verdict, and the one after
    starts new workers."""
    import signal
    import time

    from ledger.verify import checker

    monkeypatch.setattr(checker, "PARALLEL_FROM", 1)  # every check uses the workers
    case = world.cases["clean"]
    expected = reference(world, "clean")
    workers = checker.pool()
    assert workers is not None
    workers.submit(int).result()  # the workers are up
    for pid in [p.pid for p in list(workers._processes.values())]:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not workers._broken and time.monotonic() < deadline:
        time.sleep(0.05)  # the pool notices its dead worker
    for _ in range(2):  # with the broken pool, then with new workers
        result = verify_bundle(Bundle.load(case.bundle), http_web3(world.url)).report()
        assert (result.verdict, [f.model_dump(mode="json") for f in result.findings]) == expected
    assert checker._POOL is not workers
    checker.close_pool()


def test_a_split_listed_twice_gets_one_verdict_in_either_form(world: World) -> None:
    """Two exports pasted together: the compact reader merges a split's blocks, so the
    writer leaves out only the proofs that merged view gives back."""
    good = world.cases["clean"].bundle
    twice = {**good, "splits": good["splits"] + copy.deepcopy(good["splits"])}
    halves = copy.deepcopy(good)
    steps = halves["splits"][0]["steps"]
    halves["splits"] = [
        {**halves["splits"][0], "steps": steps[: len(steps) // 2]},
        {**halves["splits"][0], "steps": steps[len(steps) // 2 :]},
    ]
    client = TestClient(create_app(world.node))
    for bundle in (twice, halves):
        verdicts = []
        for encoding in (Encoding.JSON, Encoding.COMPACT):
            media_type = compact.MEDIA_TYPE if encoding is Encoding.COMPACT else "application/json"
            resp = client.post(
                "/steps/verify",
                content=encoded(bundle, encoding),
                headers={"content-type": media_type},
            )
            assert resp.status_code == 200, resp.text
            verdicts.append((resp.json()["verdict"], resp.json()["findings"]))
        assert verdicts[0] == verdicts[1]


def test_findings_of_one_kind_beyond_a_hundred_are_counted_not_listed(world: World) -> None:
    """A bundle whose every step is forged answers with the first 100 findings of each
    kind and one more that counts the rest; the summary and the verdict count them all."""
    good = world.cases["clean"].bundle
    forged = copy.deepcopy(good)
    step = forged["splits"][0]["steps"][0]
    copies = []
    for i in range(250):  # step 0 with 250 different payloads: 250 payload mismatches
        s = copy.deepcopy(step)
        s["payload"] = s["payload"].replace("{", f'{{"n":{i},', 1)
        copies.append(s)
    forged["splits"][0]["steps"] = copies + forged["splits"][0]["steps"][1:]
    result = verify_bundle(Bundle.load(forged), http_web3(world.url)).report()
    kinds = [f for f in result.findings if f.code == "payload-mismatch"]
    assert len(kinds) == 101 and result.verdict == "findings"
    assert kinds[-1].evidence["omitted"] == 150 and "150 more" in kinds[-1].statement
    assert result.summary["critical"] == sum(
        f.evidence.get("omitted", 1) for f in result.findings if f.severity == "critical"
    )
    assert result.summary["critical"] >= 250


def test_a_corrupt_block_for_a_contract_that_is_no_traceability_is_refused_as_that(
    world: World,
) -> None:
    """The steps are examined while the chain is read, but the order of the answers is
    as if one came after the other: a contract that is no Traceability is the verdict,
    and only for a real one does the damaged block refuse the bundle."""
    from ledger.core.errors import InvalidInput

    good = world.cases["clean"].bundle
    raw = bytearray(compact.encode(good))
    frames = list(compact.frames(bytes(raw)))
    offset = len(compact.MAGIC)
    for kind, body in frames:
        offset += 5
        if kind == compact.STEPS:
            raw[offset + 20] ^= 0xFF  # inside the block's compressed steps
            break
        offset += len(body)
    other = world.node.deployment.address("JobBoard")
    wrong = (
        compact.MAGIC
        + compact.header_frame({**good, "traceability": other})[len(compact.MAGIC) :]
        + bytes(raw[len(compact.header_frame(good)) :])
    )
    result = verify_bundle(Bundle.load(wrong), http_web3(world.url))
    assert [f.code for f in result.findings] == ["no-contract"]
    with pytest.raises(InvalidInput, match="corrupt"):
        verify_bundle(Bundle.load(bytes(raw)), http_web3(world.url))
