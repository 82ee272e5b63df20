# ruff: noqa: RUF001 - the Chinese strings the page shows use full-width punctuation
"""The whole story through the portal, in headless Chromium, on a throwaway chain: a
designer, a buyer, two factories and two auditors, each in their own browser context,
some signing with a wallet injected into the page and some with a keystore file opened in
it. A designer registers and licenses a drawing; the buyer orders it in two splits, the
second starting from the first's lots; both factories accept by signature; a device key
(authorised on the portal) records steps through the API as a shop-floor device would; the
factories co-sign the hand-over; both deliver; the buyer accepts one delivery and disputes
the other; two auditors rule; the paid factory withdraws; an auditor runs the audit.

Each step is checked on screen (waiting for the page's own state, never for time), with no
console error and no serious or critical axe-core violation on any page visited."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import test_portal as tp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from test_portal import Person, Served, expect, propose_hand_over

from kit import DUSD, FAST_KDF, admit, new_account, serve_portal_node
from ledger.membership.roles import Role
from ledger.steps.builder import StepWriter, object_event
from ledger.steps.signatures import Signer

# the people come from the portal tests' fixtures; the node is the story's own, its clock
# never moved by other tests (the page counts review windows down by the browser's clock)
person = tp.person


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_portal_node(tmp_path_factory) as node:
        yield node


pytestmark = tp.pytestmark


def keystore_file(tmp: Path, account: LocalAccount, passphrase: str) -> Path:
    path = tmp / f"{account.address}.json"
    path.write_text(json.dumps(Account.encrypt(account.key, passphrase, iterations=FAST_KDF)))
    return path


def sign_in_with_keystore(who: Person, path: Path, passphrase: str) -> None:
    """Sign in from a keystore file; a refusal fails here, with what the page said (the
    key's decryption runs in the page, slowly on a loaded machine)."""
    page = who.open("signin")
    page.locator("#keystore-file").set_input_files(str(path))
    page.locator("#keystore-pass").fill(passphrase)
    page.locator("section[aria-labelledby=h-keystore] button[type=submit]").click()
    alert = page.get_by_role("alert")
    expect(page.get_by_test_id("who").or_(alert).first).to_be_visible(timeout=90_000)
    assert not alert.is_visible(), (
        f"the keystore sign-in was refused: {alert.inner_text()} (console: {who.warnings})"
    )


def visit(who: Person, route: str) -> Any:
    """Open `route` afresh; the page keeps its sign-in (held in its memory, so never
    reloaded: a page already showing `route` is left and opened again)."""
    url = f"{who.served.url}/#/{route}"
    if who.page.url == url:
        who.page.goto(f"{who.served.url}/#/members")
        expect(who.page.get_by_role("heading", level=1)).to_be_visible()
    who.page.goto(url)
    return who.page


LOADING = {"en": "Loading…", "zh-CN": "加载中…"}


def tour(who: Person, routes: dict[str, str]) -> None:
    """Every page in `routes` (shot name → route) in both languages, each loaded, checked
    (console, axe-core) and, with $COFAB_PORTAL_SCREENSHOTS set, saved as `page-name-lang`."""
    for lang in ("en", "zh-CN"):
        who.page.locator("#lang").select_option(lang)
        for name, route in routes.items():
            page = visit(who, route)
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            # a page reads the node and the chain: on a busy machine, more than the default 5 s
            expect(page.get_by_text(LOADING[lang], exact=True)).to_have_count(0, timeout=30_000)
            who.check(f"page-{name}-{lang.split('-')[0]}")


@pytest.mark.slow
def test_the_whole_story_through_the_portal(served: Served, person, tmp_path: Path) -> None:
    node = served.node
    chain_id = node.chain.chain_id
    keys = {name: new_account() for name in ("designer", "buyer", "plant_a", "plant_b")}
    keys |= {name: new_account() for name in ("auditor_x", "auditor_y")}
    admit(node, int(Role.DESIGNER), keys["designer"])
    admit(node, int(Role.BUYER), keys["buyer"])
    admit(node, int(Role.FACTORY), keys["plant_a"])
    admit(node, int(Role.FACTORY), keys["plant_b"])
    admit(node, int(Role.AUDITOR), keys["auditor_x"])
    admit(node, int(Role.AUDITOR), keys["auditor_y"])
    node.settlement.token().mint(node.sender(), keys["buyer"].address, 5_000 * DUSD)
    a_addr, b_addr = keys["plant_a"].address, keys["plant_b"].address

    # --- the designer (keystore) registers a drawing, reveals it, licenses the buyer -------
    designer = person()
    sign_in_with_keystore(
        designer, keystore_file(tmp_path, keys["designer"], "designer pass"), "designer pass"
    )
    page = designer.page
    expect(page.get_by_role("heading", name="My designs")).to_be_visible()
    drawing = b"bracket rev B " + os.urandom(16)
    page.get_by_label("Drawing files").set_input_files(
        {"name": "bracket.step", "mimeType": "application/octet-stream", "buffer": drawing}
    )
    page.get_by_role("button", name="Register 1 file(s)").click()
    expect(page.get_by_text("1 drawing(s) registered.")).to_be_visible()
    design = page.get_by_test_id("certificates").locator("code.hex").first.inner_text()
    row = page.get_by_test_id(f"design-{design}")
    row.get_by_role("button", name="Reveal on the chain").click()
    expect(page.get_by_test_id(f"design-{design}")).to_contain_text("active")
    designer.check(axe=True)
    page.get_by_test_id(f"design-{design}").get_by_role(
        "button", name="Licences and shares"
    ).click()
    page.locator("#licence-to").select_option(keys["buyer"].address)
    page.get_by_label("Royalty (% of each order's price)").fill("5")
    designer.check("licences-en")
    page.get_by_role("button", name="Grant the licence").click()
    licence = page.get_by_test_id(f"licence-{keys['buyer'].address}")
    expect(licence).to_contain_text("active")
    expect(licence).to_contain_text("5%")
    designer.check(axe=True)

    # --- the buyer (wallet) orders it: two splits, the second after the first -------------
    buyer = person().with_wallet(keys["buyer"], chain_id)
    buyer.sign_in_with_wallet()
    expect(buyer.page.get_by_test_id("who")).to_contain_text(keys["buyer"].address)
    page = visit(buyer, "new-order")
    page.get_by_label("Or choose the drawing (hashed here, not uploaded)").set_input_files(
        {"name": "bracket.step", "mimeType": "application/octet-stream", "buffer": drawing}
    )
    expect(page.get_by_test_id("royalty")).to_contain_text("royalty is 5% of the price")
    page.get_by_label("Price (dUSD)").fill("1000")
    for i, (factory, step, share) in enumerate(
        ((a_addr, "machining", "60"), (b_addr, "assembly", "33"))
    ):
        if i:
            page.get_by_role("button", name="Add a split").click()
        page.locator(f"#row-{i}-factory").select_option(factory)
        page.locator(f"#row-{i}-step").fill(step)
        page.locator(f"#row-{i}-quantity").fill("100")
        page.locator(f"#row-{i}-share").fill(share)
    page.locator("#row-1-after-0").check()
    expect(page.get_by_test_id("shares")).to_contain_text("= 100%")
    buyer.check(axe=True)
    page.get_by_role("button", name="Create, pay into escrow and split").click()
    expect(page.get_by_test_id("job-status")).to_have_text("split")
    job = int(page.url.rsplit("/", 1)[1])
    expect(
        page.get_by_text("Split 1 (assembly) starts from the output of split 0 (machining).")
    ).to_be_visible()
    expect(page.locator("#h-money + dl")).to_contain_text("1,000.00 dUSD")
    buyer.check(axe=True)

    # --- both factories accept by signature: A with its wallet, B with its keystore --------
    plant_a = person().with_wallet(keys["plant_a"], chain_id)
    plant_a.sign_in_with_wallet()
    plant_b = person("zh-CN")
    sign_in_with_keystore(
        plant_b, keystore_file(tmp_path, keys["plant_b"], "plant b pass"), "plant b pass"
    )
    for who, split, words, button, done in (
        (
            plant_a,
            0,
            "accept to make “machining”: 100 units",
            "Sign and accept",
            "accepted, in production",
        ),
        (plant_b, 1, "“assembly”：100 件", "签名并接受", "已接受，生产中"),
    ):
        row = who.page.get_by_test_id(f"work-{job}-{split}")
        row.get_by_role("button").click()
        expect(who.page.get_by_test_id("accept-words")).to_contain_text(words)
        who.check(axe=True)
        who.page.get_by_role("button", name=button).click()
        expect(who.page.get_by_test_id(f"work-{job}-{split}")).to_contain_text(done)
        who.check(axe=True)

    # --- factory A authorises a device key with the device's consent (its keystore) --------
    device = new_account()
    page = plant_a.page
    page.get_by_role("link", name="Device keys").click()
    expect(page.get_by_text("No device key authorised yet.")).to_be_visible()
    page.get_by_label("Device key (address)").fill(device.address)
    page.get_by_role("button", name="Prepare the binding").click()
    expect(page.get_by_test_id("device-words")).to_contain_text(
        f"The device key {device.address} will sign production steps for your factory {a_addr}"
    )
    page.get_by_label("The device's keystore file (it signs its consent here)").set_input_files(
        str(keystore_file(tmp_path, device, "device pass"))
    )
    page.locator("#device-pass").fill("device pass")
    plant_a.check("devices-en")
    page.get_by_role("button", name="Authorise the device key").click()
    expect(page.get_by_test_id(f"device-{device.address}")).to_contain_text("active")
    plant_a.check(axe=True)

    # --- the device records steps through the API, as a shop-floor device does ------------
    writer = StepWriter(Signer(device.key), node.steps.domain, job, 0, a_addr)
    bound = int(node.chain.w3.eth.get_block("latest")["timestamp"])  # the binding's block
    steps = [writer.step(object_event(step, bound)) for step in ("commissioning", "assembling")]
    sent = httpx.post(
        f"{served.url}/steps/batch",
        json={
            "steps": [
                {"record": s.record, "signature": s.signature, "payload": s.payload} for s in steps
            ]
        },
        timeout=60,
    )
    assert sent.status_code in (200, 201), sent.text
    [anchor] = node.steps.anchor(job, 0)  # the node anchors pending steps by its own policy
    late = writer.step(object_event("packing", bound))
    one = {"record": late.record, "signature": late.signature, "payload": late.payload}
    assert httpx.post(f"{served.url}/steps", json=one, timeout=60).status_code in (200, 201)

    # --- factory A delivers its split and hands its lots over; B signs in its inbox --------
    page = visit(plant_a, f"orders/{job}")
    timeline = page.get_by_test_id("steps-0")
    expect(timeline).to_contain_text("3 steps signed, 2 anchored on the chain")
    expect(timeline.get_by_role("listitem").last).to_contain_text("pending")
    expect(timeline.get_by_role("listitem").first).to_contain_text(
        f"anchored at block {anchor.block_number:,}"
    )
    page.get_by_test_id("split-0").get_by_role("button", name="Deliver").click()
    expect(page.get_by_text("Split 0 is delivered: the buyer reviews it now.")).to_be_visible()
    words = (
        "You hand over 100 units of lot “LOT-1” from split 0 (machining) to split 1 (assembly)"
        f" of order {job}."
    )
    propose_hand_over(page, "LOT-1", 100, words, b_addr)
    plant_a.check(axe=True)
    assert node.jobs.view(job).splits[0].handed_to == []  # one signature: nothing on chain

    page = plant_b.page
    page.get_by_role("link", name="交接", exact=True).click()
    item = page.get_by_test_id(f"pending-{job}-0-1")
    item.get_by_role("button", name="查看签署内容").click()
    expect(page.get_by_test_id("handover-words")).to_contain_text(
        f"您为订单 {job} 的分包 1（assembly）接收批次“LOT-1”的 100 件"
    )
    plant_b.check("inbox-zh")
    page.get_by_role("button", name="签名并提交交接").click()
    expect(page.get_by_text("分包 0 的批次现已由分包 1 保管。")).to_be_visible()
    plant_b.check(axe=True)
    page = visit(plant_b, f"orders/{job}")
    page.get_by_test_id("split-1").get_by_role("button", name="交付").click()
    expect(page.get_by_text("分包 1 已交付：现由采购方验收。")).to_be_visible()
    plant_b.check(axe=True)

    # --- the buyer accepts split 0 (review window counting down) and disputes split 1 ------
    page = visit(buyer, f"orders/{job}")
    row = page.get_by_test_id("split-0")
    expect(row).to_contain_text("delivered, in review")
    expect(row.get_by_test_id("countdown")).to_contain_text("13 d 23 h")
    row.scroll_into_view_if_needed()
    buyer.check("order-review-en")
    row.get_by_role("button", name="Accept delivery").click()
    expect(page.get_by_test_id("split-0")).to_contain_text("paid")
    page.get_by_test_id("split-1").get_by_role("button", name="Open a dispute").click()
    page.get_by_label("What is wrong").fill("the brackets are misaligned")
    photo = b"photo of the misaligned bracket " + os.urandom(8)
    page.get_by_label("Evidence file (hashed here, not uploaded)").set_input_files(
        {"name": "misaligned.jpg", "mimeType": "image/jpeg", "buffer": photo}
    )
    buyer.check(axe=True)
    page.get_by_role("button", name="Open the dispute on split 1").click()
    expect(page.get_by_text("is open: the split's payout is frozen")).to_be_visible()
    [dispute] = node.disputes.list(job, None)
    buyer.check(axe=True)

    # factory B answers with its own evidence on the disputes page
    page = visit(plant_b, "disputes")
    section = page.get_by_test_id(f"dispute-{dispute.id}")
    section.get_by_label("证据文件（在此计算哈希，不上传）").set_input_files(
        {"name": "qc.pdf", "mimeType": "application/pdf", "buffer": b"qc report " + os.urandom(8)}
    )
    section.get_by_role("button", name=f"为争议 {dispute.id} 补充证据").click()
    expect(page.get_by_text(f"您对争议 {dispute.id} 的证据已记录。")).to_be_visible()
    plant_b.check(axe=True)

    # --- two auditors rule: one with a wallet (Chinese), one with a keystore ---------------
    auditor_x = person("zh-CN").with_wallet(keys["auditor_x"], chain_id)
    auditor_x.sign_in_with_wallet()
    section = auditor_x.page.get_by_test_id(f"dispute-{dispute.id}")
    expect(section).to_contain_text("审计方投票中")
    section.get_by_label("支付给工厂的分包份额（%）").fill("50")
    section.get_by_label("责任方").select_option("factory")
    section.get_by_role("button", name=f"对争议 {dispute.id} 投票").click()
    expect(auditor_x.page.get_by_text(f"您对争议 {dispute.id} 的投票已记录。")).to_be_visible()
    auditor_x.check(axe=True)

    auditor_y = person()
    sign_in_with_keystore(
        auditor_y, keystore_file(tmp_path, keys["auditor_y"], "auditor y pass"), "auditor y pass"
    )
    section = auditor_y.page.get_by_test_id(f"dispute-{dispute.id}")
    expect(section).to_contain_text("1 of 2 needed")
    section.get_by_label("Share of the split to pay the factory (%)").fill("50")
    section.get_by_label("Who is at fault").select_option("factory")
    section.get_by_role("button", name=f"Vote on dispute {dispute.id}").click()
    expect(auditor_y.page.get_by_test_id(f"dispute-{dispute.id}")).to_contain_text(
        "pay 50% of the split to its factory; at fault: the factory"
    )
    auditor_y.check(axe=True)

    # --- factory A withdraws what it earned: 60 % of 1,000 dUSD ----------------------------
    token = node.settlement.token()
    before = token.balance_of(a_addr)
    page = visit(plant_a, "work")
    expect(page.get_by_test_id("balance")).to_contain_text("600.00 dUSD")
    page.get_by_role("button", name="Withdraw 600.00 dUSD").click()
    expect(page.get_by_text("600.00 dUSD sent to your wallet.")).to_be_visible()
    plant_a.check(axe=True)
    assert token.balance_of(a_addr) == before + 600 * DUSD

    # --- the order page tells the whole story: states, custody, money, chain timeline ------
    page = visit(auditor_y, f"orders/{job}")
    expect(page.get_by_test_id("split-0")).to_contain_text("paid")
    expect(page.get_by_test_id("split-1")).to_contain_text("ruled by auditors")
    expect(page.get_by_test_id(f"withdrawn-{a_addr}")).to_contain_text("600.00 dUSD")
    events = page.get_by_test_id("events")
    for said in (
        "Order created",
        "Split accepted by its factory",
        "Lots handed over",
        "Delivery accepted",
        "Dispute opened",
        "Dispute ruled",
    ):
        expect(events).to_contain_text(said)
    events.scroll_into_view_if_needed()
    auditor_y.check("order-story-en")

    # --- an auditor runs the audit of the order ----------------------------------------------
    page.get_by_role("link", name="Audit this order").click()
    page.get_by_role("button", name="Run the audit").last.click()
    verdict = page.get_by_test_id("audit-verdict")
    expect(verdict).to_contain_text("Report hash", timeout=60_000)  # reads every event
    auditor_y.check(axe=True)

    # and the factory's track record shows the dispute it lost
    page = visit(auditor_y, f"factories/{b_addr}")
    expect(page.get_by_test_id("reputation")).to_contain_text("Disputes lost1")
    auditor_y.check(axe=True)

    # --- every page, in both languages, as the people who use it see it ------------------
    tour(plant_a, {"work": "work", "inbox": "inbox", "devices": "devices"})
    tour(designer, {"designs": "designs"})
    tour(buyer, {"new-order": "new-order", "orders": "orders", "order": f"orders/{job}"})
    tour(auditor_y, {"disputes": "disputes", "factory": f"factories/{b_addr}"})
    tour(auditor_y, {"audit": f"audit/{job}", "council": "council", "members": "members"})
    visitor = person()
    visitor.open("verify")
    tour(visitor, {"verify": "verify", "signin": "signin"})
