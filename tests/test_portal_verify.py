# ruff: noqa: RUF001, F811 - Chinese full-width punctuation; the portal tests' fixtures
"""The Verify page computes its verdict in the browser, from the chain alone: it reads the
chain through POST /rpc (ethers' JsonRpcProvider, the ABIs of GET /contracts) and never
asks the node's verification endpoints; the dropped file is never sent anywhere."""

from __future__ import annotations

import json
import os
from typing import Any

from eth_account.messages import encode_typed_data
from test_portal import (  # noqa: F401 - the portal tests' fixtures (cast, person)
    Person,
    Served,
    _json,
    _recorded_job,
    cast,
    expect,
    person,
)

from kit import Parties, admit
from ledger.designs.files import NewDesign
from ledger.membership.roles import Role


def drop_drawing(page: Any, content: bytes, cert: bytes | None = None, lang: str = "en") -> None:
    label, cert_label, button = {
        "en": ("Drawing file", "Its certificate (optional, JSON)", "Verify the drawing"),
        "zh-CN": ("图纸文件", "其证书（可选，JSON）", "验证图纸"),
    }[lang]
    page.get_by_label(label).set_input_files(
        {"name": "part.step", "mimeType": "application/octet-stream", "buffer": content}
    )
    if cert is not None:
        page.get_by_label(cert_label).set_input_files(
            {"name": "cert.json", "mimeType": "application/json", "buffer": cert}
        )
    page.get_by_role("button", name=button).click()


def read_only_the_chain(who: Person, secret: bytes) -> None:
    """Only chain reads (and the public contract list) left the page; never the file."""
    posts = [r for r in who.requests if r.method == "POST"]
    assert posts, "the verdict was computed without reading the chain"
    assert {r.url.rsplit("/", 1)[-1] for r in posts} == {"rpc"}
    assert all(secret not in (r.post_data_buffer or b"") for r in who.requests)
    assert not any("/designs/verify" in r.url or "/steps/verify" in r.url for r in who.requests)


def test_a_drawing_its_lineage_and_status_from_the_chain(served: Served, person) -> None:
    node = served.node
    designer = admit(node, int(Role.DESIGNER))
    svc = node.design_service()
    v1 = b"bracket rev A " + os.urandom(24)
    v2 = b"bracket rev B " + os.urandom(24)
    [c1] = svc.register(designer, [NewDesign.from_bytes(v1, file_name="a.step", title="A")])
    svc.reveal(designer, c1.design_id)
    [c2] = svc.register(
        designer, [NewDesign.from_bytes(v2, file_name="b.step", title="B")], c1.design_id
    )
    svc.reveal(designer, c2.design_id)
    svc.supersede(designer, c1.design_id, c2.design_id)

    who = person()
    page = who.open("verify")
    drop_drawing(page, v2)
    verdict = page.get_by_test_id("design-verdict")
    expect(verdict).to_contain_text("Registered on the chain")
    expect(verdict).to_contain_text(designer.address)
    expect(verdict).to_contain_text("0x" + c1.design_id.hex())  # derived from rev A
    expect(verdict).to_contain_text("active")
    expect(verdict).to_contain_text(f"{c2.block_number:,}")
    who.check("verify-lineage-en")

    drop_drawing(page, v1)
    verdict = page.get_by_test_id("design-verdict")
    expect(verdict).to_contain_text("superseded by a newer version")
    expect(verdict).to_contain_text("0x" + c2.design_id.hex())  # its successor
    expect(verdict).to_contain_text("an original design (no parent)")

    svc.revoke(designer, c2.design_id)
    drop_drawing(page, v2)
    expect(page.get_by_test_id("design-verdict")).to_contain_text("revoked by its designer")
    read_only_the_chain(who, v1[:14])
    read_only_the_chain(who, v2[:14])
    who.check()


def test_a_batch_certificate_is_checked_in_the_browser(served: Served, person) -> None:
    """A batch member, never revealed: its certificate's Merkle proof is checked against the
    batch root the chain recorded; a certificate for another file, or a forged proof, fails."""
    node = served.node
    designer = admit(node, int(Role.DESIGNER))
    files = [b"batch member %d " % i + os.urandom(16) for i in range(3)]
    items = [NewDesign.from_bytes(f, file_name=f"{i}.dxf", title=None) for i, f in enumerate(files)]
    certs = node.design_service().register(designer, items)
    cert = json.loads(certs[1].dumps())
    assert cert["batch"]["proof"]

    who = person("zh-CN")
    page = who.open("verify")
    drop_drawing(page, files[1], json.dumps(cert).encode(), "zh-CN")
    verdict = page.get_by_test_id("design-verdict")
    expect(verdict).to_contain_text(designer.address)
    expect(verdict).to_contain_text("批量（默克尔证明）")
    who.check("verify-batch-zh")

    drop_drawing(page, files[2], json.dumps(cert).encode(), "zh-CN")  # another file
    expect(page.get_by_role("alert")).to_contain_text("证书不成立")
    forged = json.loads(json.dumps(cert))
    forged["batch"]["proof"][0] = "0x" + "11" * 32
    drop_drawing(page, files[1], json.dumps(forged).encode(), "zh-CN")
    expect(page.get_by_role("alert")).to_contain_text("默克尔证明不成立")
    read_only_the_chain(who, b"batch member")
    who.check()


def test_a_step_bundle_is_checked_in_the_browser(served: Served, cast: Parties, person) -> None:
    node = served.node
    job = _recorded_job(node, cast)
    bundle = node.steps.export(job, 0)
    who = person()
    page = who.open("verify")
    page.get_by_label("Step proof bundle (JSON)").set_input_files(
        {"name": "steps.json", "mimeType": "application/json", "buffer": _json(bundle)}
    )
    page.get_by_role("button", name="Verify the record").click()
    verdict = page.get_by_test_id("steps-verdict")
    expect(verdict).to_contain_text("The record matches the chain")
    expect(verdict).to_contain_text("3 steps, 3 anchored on the chain")
    who.check("verify-steps-en")

    # a signature by another key over the same record: recovered in the browser, refused
    forged = json.loads(json.dumps(bundle))
    step = forged["splits"][0]["steps"][2]
    other = cast.factories[1].account
    typed = {**bundle["types"], "domain": bundle["domain"], "message": step["record"]}
    typed = {k: typed[k] for k in ("types", "primaryType", "domain", "message")}
    step["signature"] = other.sign_message(
        encode_typed_data(full_message=typed)
    ).signature.to_0x_hex()
    page.get_by_label("Step proof bundle (JSON)").set_input_files(
        {"name": "forged.json", "mimeType": "application/json", "buffer": _json(forged)}
    )
    page.get_by_role("button", name="Verify the record").click()
    verdict = page.get_by_test_id("steps-verdict")
    expect(verdict).to_contain_text("The record does not match the chain")
    expect(verdict).to_contain_text(f"is signed by {other.address}")

    # a proof that does not lead to the anchored root
    tampered = json.loads(json.dumps(bundle))
    tampered["splits"][0]["steps"][0]["proof"] = ["0x" + "22" * 32]
    page.get_by_label("Step proof bundle (JSON)").set_input_files(
        {"name": "tampered.json", "mimeType": "application/json", "buffer": _json(tampered)}
    )
    page.get_by_role("button", name="Verify the record").click()
    expect(page.get_by_test_id("steps-verdict")).to_contain_text("Merkle proof fails")
    payload = bundle["splits"][0]["steps"][0]["payload"].encode()
    read_only_the_chain(who, payload[:40])
    who.check()
