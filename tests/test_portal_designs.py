# ruff: noqa: RUF001 - the Chinese strings the page shows use full-width punctuation
"""A design's versions and its encrypted shares, in the portal, in headless Chromium: a
designer supersedes a design with a new version (its file hashed in the browser) and
revokes one, each said in words first, and Verify agrees; a designer whose key the node
does not hold does the same by signing each transaction in the browser; a licensed factory
takes the designer's encrypted package to its OWN node (a second node on the same chain),
decrypts it there and gets the very file, while an unlicensed member is refused and its
node keeps nothing. One node, one factory node and one browser for the module."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_portal import Person, Served, expect, person, pytestmark
from test_relay_portal import REFUSED, keyless, with_signing_wallet

from api.app import create_app
from api.inthread import serving
from kit import Tabs, admit, new_account
from ledger.core.keys import Keyring
from ledger.core.private import private_dir
from ledger.designs.files import NewDesign
from ledger.eth.toolchain import free_port
from ledger.eth.tx import Sender
from ledger.membership.roles import Role
from ledger.node import Node

assert person and pytestmark  # fixtures used by name


@pytest.fixture(scope="module")
def own_node(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A factory's own node: its own data directory and keys, the same chain."""
    data_dir = private_dir(tmp_path_factory.mktemp("factory-node"))
    base = served.node
    node = Node(base.chain, base.deployment, Keyring(data_dir / "keystore"), data_dir)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(create_app(node, url), port):
        yield Served(node, url)


def drawing(name: str, body: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/octet-stream", "buffer": body}


def sha(body: bytes) -> str:
    return "0x" + hashlib.sha256(body).hexdigest()


def signed_in(who: Person, address: str) -> Any:
    """Sign in with the wallet, then open Shared with me from the menu."""
    who.sign_in_with_wallet()
    expect(who.page.get_by_test_id("who")).to_contain_text(address)
    who.page.get_by_role("link", name="Shared with me").click()
    return who.page


def verify_file(who: Person, name: str, body: bytes) -> Any:
    page = who.open("verify")
    page.locator("#design-file").set_input_files(drawing(name, body))
    page.locator("section[aria-labelledby=h-design] button[type=submit]").click()
    return page.get_by_test_id("design-verdict")


def test_a_designer_supersedes_a_design_and_revokes_the_new_one_in_words(
    served: Served, person
) -> None:
    node = served.node
    designer = admit(node, int(Role.DESIGNER))
    svc = node.design_service()
    rev_a, rev_b = b"bracket rev A " + os.urandom(16), b"bracket rev B " + os.urandom(16)
    [cert] = svc.register(designer, [NewDesign.from_bytes(rev_a, file_name="a", title="bracket")])
    svc.reveal(designer, cert.design_id)
    old, new = sha(rev_a), sha(rev_b)

    who = person().with_wallet(designer.account, node.chain.chain_id)
    who.sign_in_with_wallet()
    page = who.page
    row = page.get_by_test_id(f"design-{old}")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("version 1")
    row.get_by_role("button", name="New version").click()
    panel = page.get_by_test_id("new-version")
    expect(panel.get_by_role("heading", name="A new version of “bracket”")).to_be_focused()
    panel.get_by_label("The new version's file").set_input_files(drawing("bracket-b.step", rev_b))
    expect(panel.get_by_test_id("version-words")).to_have_text(
        f"You register “bracket-b.step” (SHA-256 {new}) as the new version of design {old}, "
        f"then mark {old} as superseded by it on the chain. Its existing licences stay; no new "
        "licence of it can be granted. Both stay verifiable, and Verify shows which version "
        "replaced which."
    )
    who.check(axe=True)
    assert not node.designs.find(old).superseded  # reading the words changes nothing
    panel.get_by_role("button", name="Register and supersede").click()
    expect(page.get_by_text(f"Design {old} is superseded by {new}.")).to_be_visible()
    assert node.designs.find(old).superseded and node.designs.find(new).designer == designer.address
    expect(row).to_contain_text(f"superseded by {new[:10]}")
    new_row = page.get_by_test_id(f"design-{new}")
    expect(new_row).to_contain_text(f"version 2 · after {old[:10]}")
    expect(new_row).to_contain_text("bracket-b.step")
    sent = b"".join(r.post_data_buffer or b"" for r in who.requests)
    assert b"bracket rev B" not in sent  # its fingerprint only

    # revoking, said in words; Cancel sends nothing
    new_row.get_by_role("button", name="Revoke").click()
    words = page.get_by_test_id("revoke-words")
    expect(words).to_have_text(
        f"You revoke design {new} on the chain, for good: it can no longer be licensed, "
        "shared or used as the parent of a new version, and its 0 active licence(s) end now. "
        "Its registration stays on record, and Verify shows it as revoked. This cannot be undone."
    )
    height = node.chain.block_number()
    page.get_by_test_id("revoke-design").get_by_role("button", name="Cancel").click()
    expect(page.get_by_test_id("revoke-design")).to_have_count(0)
    assert node.chain.block_number() == height and node.designs.find(new).status == "active"
    # with the keyboard: the focus is back on Revoke, the panel takes it, Tab reaches the
    # confirmation
    expect(new_row.get_by_role("button", name="Revoke")).to_be_focused()
    page.keyboard.press("Enter")
    confirm = page.get_by_role("button", name="Revoke the design")
    expect(page.get_by_role("heading", name="Revoke “bracket-b.step”?")).to_be_focused()
    expect(confirm).to_be_enabled()
    page.keyboard.press("Tab")
    expect(confirm).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"Design {new} is revoked.")).to_be_visible()
    assert node.designs.find(new).revoked
    expect(new_row).to_contain_text("revoked by its designer")
    expect(new_row.get_by_role("button", name="Revoke")).to_have_count(0)
    # its button gone, the keyboard stays in the list: on its heading
    expect(page.get_by_role("heading", name="Registered by me")).to_be_focused()
    who.check("designs-versions-en")
    page.locator("#lang").select_option("zh-CN")
    expect(page.get_by_test_id(f"design-{old}")).to_contain_text(f"已被取代，新版本 {new[:10]}")
    expect(page.get_by_test_id(f"design-{new}")).to_contain_text("已被设计方撤销")
    expect(page.get_by_text(f"设计 {new} 已撤销。")).to_be_visible()  # the notice too
    who.check("designs-versions-zh")

    # Verify, from the chain alone, says the same
    page.locator("#lang").select_option("en")
    verdict = verify_file(who, "bracket-a.step", rev_a)
    expect(verdict).to_contain_text("superseded by a newer version")
    expect(verdict).to_contain_text(new)
    verdict.evaluate("e => e.scrollIntoView({block: 'end'})")
    who.check("verify-superseded-en")
    page.locator("#lang").select_option("zh-CN")
    verdict = verify_file(who, "bracket-b.step", rev_b)
    expect(verdict).to_contain_text("已被设计方撤销")
    expect(verdict).to_contain_text(old)  # its lineage
    verdict.evaluate("e => e.scrollIntoView({block: 'end'})")
    who.check("verify-revoked-zh")


def test_a_designer_signing_in_the_browser_relays_the_version_and_the_revocation(
    served: Served, person
) -> None:
    node = served.node
    account = keyless(node, int(Role.DESIGNER))
    rev_a, rev_b = b"hinge rev A " + os.urandom(16), b"hinge rev B " + os.urandom(16)
    old, new = sha(rev_a), sha(rev_b)
    node.designs.register(Sender(node.chain, account), bytes.fromhex(old[2:]), bytes(32), bytes(32))

    who = with_signing_wallet(person(), account, node.chain.chain_id)
    who.allowed.append(REFUSED)
    who.sign_in_with_wallet()
    page = who.page
    page.get_by_test_id(f"design-{old}").get_by_role("button", name="New version").click()
    page.get_by_label("The new version's file").set_input_files(drawing("hinge-b.step", rev_b))
    page.get_by_role("button", name="Register and supersede").click()
    dialog = page.get_by_role("dialog", name="Sign this transaction")
    words = dialog.get_by_test_id("relay-words")
    for said in (
        "Register 1 design(s) by fingerprint (as one batch).",
        f"Record design {new} on the chain.",
        f"Mark design {old} as superseded by its new version {new}.",
    ):
        expect(words).to_have_text(said)
        dialog.get_by_role("button", name="Sign and send").click()
    expect(page.get_by_text(f"Design {old} is superseded by {new}.")).to_be_visible()
    assert node.designs.find(old).superseded
    expect(page.get_by_test_id(f"design-{new}")).to_contain_text(f"version 2 · after {old[:10]}")

    # declining the signature changes nothing; signing revokes
    page.get_by_test_id(f"design-{new}").get_by_role("button", name="Revoke").click()
    page.get_by_role("button", name="Revoke the design").click()
    expect(words).to_have_text(f"Revoke design {new} for good.")
    height = node.chain.block_number()
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_test_id("revoke-design").get_by_role("alert")).to_be_visible()
    assert node.chain.block_number() == height and not node.designs.find(new).revoked
    page.get_by_role("button", name="Revoke the design").click()
    expect(words).to_have_text(f"Revoke design {new} for good.")
    dialog.get_by_role("button", name="Sign and send").click()
    expect(page.get_by_text(f"Design {new} is revoked.")).to_be_visible()
    assert node.designs.find(new).revoked
    registry = node.deployment.address("DesignRegistry")
    assert [f["to"] for f in who.signed] == [registry] * 4  # type: ignore[attr-defined]
    who.check(axe=True)


@pytest.mark.slow
def test_a_licensed_factory_decrypts_the_shared_design_on_its_own_node(
    served: Served, own_node: Served, tabs: Tabs, person
) -> None:
    node, factory_node = served.node, own_node.node
    chain_id = node.chain.chain_id
    designer = admit(node, int(Role.DESIGNER))
    flange = b"flange rev C " + os.urandom(64)
    did = sha(flange)
    svc = node.design_service()  # the designer's node keeps the file, to share it
    svc.register(designer, [NewDesign.from_bytes(flange, file_name="flange.step", title="flange")])
    svc.reveal(designer, did)
    plant = factory_node.add_signer(new_account())
    stranger = factory_node.add_signer(new_account())
    for member in (plant, stranger):
        node.consortium.propose_admit(node.sender(), member.address, int(Role.FACTORY))
        factory_node.design_service().publish_key(member)

    # the designer licenses the plant and shares the drawing encrypted to it
    author = person().with_wallet(designer.account, chain_id)
    author.sign_in_with_wallet()
    page = author.page
    page.get_by_test_id(f"design-{did}").get_by_role("button", name="Licences and shares").click()
    page.locator("#licence-to").select_option(plant.address)
    page.get_by_label("Royalty (% of each order's price)").fill("3")
    page.get_by_role("button", name="Grant the licence").click()
    expect(page.get_by_test_id(f"licence-{plant.address}")).to_contain_text("active")
    page.get_by_label(plant.address).check()
    page.get_by_role("button", name="Share encrypted").click()
    expect(page.get_by_text("Shared with 1 member(s).")).to_be_visible()
    expect(page.get_by_test_id("shares")).to_contain_text(plant.address[:6])
    share = node.designs.share_of(did, plant.address)
    assert share is not None and node.designs.share_of(did, stranger.address) is None
    author.check(axe=True)

    # the plant fetches its package from the designer's node
    at_designer = person().with_wallet(plant.account, chain_id)
    page = signed_in(at_designer, plant.address)
    row = page.get_by_test_id(f"received-{did}")
    expect(row).to_contain_text("active")
    with page.expect_download() as got:
        row.get_by_role("button", name="Download the encrypted package").click()
    package = Path(got.value.path()).read_bytes()
    assert flange not in package  # encrypted
    at_designer.check(axe=True)

    people: list[Person] = []
    try:
        # the unlicensed member is refused that package on its node, which keeps nothing
        blobs = factory_node.design_service().blobs
        intruder = Person(tabs, own_node).with_wallet(stranger.account, chain_id)
        people.append(intruder)
        intruder.allowed.append("404")
        page = signed_in(intruder, stranger.address)
        expect(page.get_by_text("No design has been shared with you.")).to_be_visible()
        page.get_by_label("Share package (JSON)").set_input_files(
            {"name": "share.json", "mimeType": "application/json", "buffer": package}
        )
        page.get_by_role("button", name="Import into this node").click()
        expect(page.locator("#h-import ~ .message.error")).to_contain_text(
            f"no share of design {did} to {stranger.address} is recorded on chain"
        )
        assert not blobs.has(share.ciphertext_hash) and not blobs.has(share.wrapped_key_hash)
        intruder.check(axe=True)

        # the plant, on its own node: nothing to decrypt before the import, then its drawing
        plant_p = Person(tabs, own_node).with_wallet(plant.account, chain_id)
        people.append(plant_p)
        plant_p.allowed.append("404")
        page = signed_in(plant_p, plant.address)
        row = page.get_by_test_id(f"received-{did}")
        row.get_by_role("button", name="Decrypt on this node").click()
        expect(page.locator("#h-received ~ .message.error")).to_contain_text("does not hold")
        page.get_by_label("Share package (JSON)").set_input_files(
            {"name": "share.json", "mimeType": "application/json", "buffer": package}
        )
        page.get_by_role("button", name="Import into this node").click()
        expect(page.get_by_text(f"This node now keeps your share of design {did}")).to_be_visible()
        with page.expect_download() as got:
            row.get_by_role("button", name="Decrypt on this node").click()
        plain = Path(got.value.path()).read_bytes()
        assert sha(plain) == did and plain == flange
        expect(page.get_by_test_id("decrypted")).to_contain_text(
            f"Decrypted: the file hashes to design {did}"
        )
        plant_p.check("received-en")
        page.locator("#lang").select_option("zh-CN")
        expect(page.get_by_role("heading", level=1)).to_have_text("与我分享的设计")
        plant_p.check("received-zh")
    finally:
        for p in people:
            p.close()
