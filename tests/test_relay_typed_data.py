"""Served EIP-712 messages carry integers as decimal strings (exact in any JSON reader) and
either form is taken back; step bundles carry ethers' shape of their types, so ethers'
`verifyTypedData` checks a bundle from the bundle alone."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from test_ethers_typed_data import ethers_sign, key_of

from api.app import create_app
from kit import four_splits, in_production, parties, run_node
from ledger.core.errors import InvalidInput
from ledger.eth import eip712
from ledger.node import Node
from ledger.steps import epcis
from ledger.steps.builder import object_event
from ledger.steps.record import Step

BIG = 2**200 + 1  # a double would round it


def ethers_verify_bundle(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return list(run_node("verify_bundle.mjs", bundle)["steps"])


def test_integers_above_2_53_are_served_as_decimal_strings_and_sign_the_same() -> None:
    account = Account.create()
    typed = {
        "types": {
            "EIP712Domain": eip712.DOMAIN_TYPE,
            "Lot": [{"name": "amount", "type": "uint256"}, {"name": "parts", "type": "uint64[]"}],
        },
        "primaryType": "Lot",
        "domain": eip712.domain(31337, "0x" + "11" * 20),
        "message": {"amount": BIG, "parts": [1, 2**63]},
    }
    served = eip712.served(typed)
    assert served["message"] == {"amount": str(BIG), "parts": ["1", str(2**63)]}
    assert served["ethers"]["message"] == served["message"]
    [signed] = ethers_sign([{"key": "0x" + bytes(account.key).hex(), "typed": served}])
    assert signed["digest"] == "0x" + eip712.digest(typed).hex()  # ints and strings alike
    assert eip712.recover(typed, signed["signature"]) == account.address
    assert eip712.recover(served, signed["signature"]) == account.address


@pytest.mark.parametrize("value", [7, "7"])
def test_a_uint_is_taken_back_as_a_number_or_a_decimal_string(value: object) -> None:
    assert eip712.uint(value, "nonce") == 7
    assert eip712.uint(str(BIG), "nonce") == BIG


@pytest.mark.parametrize("value", ["0x7", "07", "+7", "7.0", 7.0, True, "", " 7", str(2**256)])
def test_a_uint_in_another_form_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        eip712.uint(value, "nonce")
    assert "nonce" in refused.value.message


def test_ethers_verifies_a_bundle_from_its_own_types(node: Node) -> None:
    """Steps signed by ethers and sent with decimal-string numbers are taken; the exported
    bundle's records are decimal strings and ethers recovers every signer from the bundle's
    `types.ethers` alone, with the same hashes the node computed."""
    client = TestClient(create_app(node))
    p = parties(node)
    job = in_production(node, p)
    spec = four_splits(p)[1]
    plant = next(x for x in p.factories if x.address == spec.factory)
    types = client.get("/steps/types").json()
    t0 = node.steps.authority.job_created_at(job)
    head, steps, payloads = bytes(32), [], []
    for i, word in enumerate(("inspecting", "packing")):
        payload = object_event(word, t0 + i)
        step = Step(
            job, 1, i, head, word, epcis.payload_hash(epcis.canonical(payload)), bytes(32),
            t0 + i, spec.factory,
        )  # fmt: skip
        head = step.digest(node.steps.domain)
        steps.append(step)
        payloads.append(payload)
    as_strings = [
        {k: str(v) if isinstance(v, int) else v for k, v in s.message().items()} for s in steps
    ]
    signed = ethers_sign([{"key": key_of(plant), "typed": types, "message": m} for m in as_strings])
    body = {
        "steps": [
            {"record": m, "signature": r["signature"], "payload": payload}
            for m, r, payload in zip(as_strings, signed, payloads, strict=True)
        ]
    }
    resp = client.post("/steps/batch", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 2

    bundle = client.get(f"/jobs/{job}/steps/export").json()
    assert "EIP712Domain" in bundle["types"]["types"]
    assert "EIP712Domain" not in bundle["types"]["ethers"]["types"]
    records = [s["record"] for sp in bundle["splits"] for s in sp["steps"]]
    assert records and all(isinstance(r["jobId"], str) for r in records)
    checked = ethers_verify_bundle(bundle)
    assert len(checked) == 2
    for step in checked:
        assert step["signer"] == step["claimed_signer"] == plant.address
        assert step["digest"] == step["step_hash"]
    verdict = client.post("/steps/verify", json=bundle)
    assert verdict.status_code == 200, verdict.text
