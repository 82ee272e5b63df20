# ruff: noqa: RUF001 - the Chinese strings the page shows use full-width punctuation
"""The portal in a real browser: headless Chromium (Debian's) driven by Playwright, against a
real node (uvicorn on a free 127.0.0.1 port) on an anvil of its own.

People sign in as they would: with a browser wallet (an EIP-1193 provider injected into the
page, backed by a dev key that signs in Python) or with a V3 keystore file opened in the
page. Every page is checked for console errors and with axe-core (no serious or critical
violations), in English and in Chinese. Set $COFAB_PORTAL_SCREENSHOTS to a folder to save
a screenshot of each page there (docs/portal holds the ones in docs/portal.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount

from api.portal import portal_dir
from kit import (
    CHROMIUM,
    DUSD,
    FAST_KDF,
    Parties,
    Served,
    Tabs,
    Wallet,
    admit,
    four_splits,
    in_production,
    new_account,
    parties,
    split_order,
)
from ledger.designs.files import NewDesign
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec
from ledger.steps.builder import object_event

playwright_api = pytest.importorskip("playwright.sync_api")
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = os.environ.get("COFAB_PORTAL_SCREENSHOTS")

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}: make chromium"),
    pytest.mark.skipif(
        not (portal_dir() / "index.html").exists(), reason="the portal is not built: make portal"
    ),
]


# --- one node and one browser for all portal tests of a process (tests/conftest.py) -----
@pytest.fixture(scope="module")
def cast(served: Served) -> Parties:
    """A buyer, a designer whose design is licensed to it, three factories: for every test."""
    return parties(served.node)


class Person:
    """One person at one browser tab (its own storage): a visitor, or a member with a key."""

    def __init__(self, tabs: Tabs, served: Served, lang: str = "en") -> None:
        self.served = served
        self.tabs = tabs
        self.tab = tabs.take("zh-CN" if lang == "zh-CN" else "en-US")
        self.page = self.tab.page
        self.errors: list[str] = []
        self.warnings: list[str] = []  # what a failure message may need to say
        self.allowed: list[str] = []  # API refusals a test provokes on purpose
        self.requests: list[Any] = []
        self.origins = {served.url}
        self.listeners: list[tuple[str, Any]] = [
            ("console", self._console),
            ("pageerror", lambda e: self.errors.append(str(e))),
            ("request", lambda r: self.requests.append(r)),
            ("framenavigated", self._went),
        ]
        for event, listener in self.listeners:
            self.page.on(event, listener)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)
        elif message.type == "warning":
            self.warnings.append(message.text)

    def _went(self, frame: Any) -> None:
        if frame.url.startswith("http"):
            self.origins.add("/".join(frame.url.split("/", 3)[:3]))

    def with_wallet(
        self, account: LocalAccount, chain_id: int, more: Wallet | None = None
    ) -> Person:
        """An EIP-1193 provider in the page whose key signs here, in the test; `more`
        answers the methods it does not know."""

        def wallet(source: Any, method: str, params: list[Any]) -> Any:
            if method in ("eth_requestAccounts", "eth_accounts"):
                return [account.address]
            if method == "eth_chainId":
                return hex(chain_id)
            if method == "personal_sign":
                assert params[1].lower() == account.address.lower()
                signed = account.sign_message(encode_defunct(hexstr=params[0]))
                return signed.signature.to_0x_hex()
            if method == "eth_signTypedData_v4":
                assert params[0].lower() == account.address.lower()
                data = encode_typed_data(full_message=json.loads(params[1]))
                return account.sign_message(data).signature.to_0x_hex()
            if more is not None:
                return more(source, method, params)
            raise ValueError(f"unsupported method {method}")

        self.tab.use_wallet(wallet)
        return self

    def open(self, route: str = "") -> Any:
        self.page.goto(f"{self.served.url}/#/{route}")
        return self.page

    def check(self, name: str | None = None, *, axe: bool | None = None) -> None:
        """No console error (beyond expected API refusals); for a named page state (each
        page in each language has one) also no serious or critical axe-core violation,
        and its screenshot when $COFAB_PORTAL_SCREENSHOTS is set."""
        page = self.page
        page.wait_for_load_state("load")
        if axe if axe is not None else name is not None:
            if not page.evaluate("typeof axe !== 'undefined'"):
                page.evaluate(AXE.read_text())
            found = page.evaluate(
                "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
                ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"
            )
            assert found == [], f"accessibility violations on {page.url}: {found}"
        unexpected = [e for e in self.errors if not any(a in e for a in self.allowed)]
        assert unexpected == [], f"console errors on {page.url}: {unexpected}"
        if SHOTS and name:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))

    def sign_in_with_wallet(self) -> None:
        page = self.open("signin")
        page.locator("section[aria-labelledby=h-wallet] button").click()  # either language

    def close(self) -> None:
        """Hand the tab on, cleared, to whoever comes next."""
        for event, listener in self.listeners:
            self.page.remove_listener(event, listener)
        self.tabs.give_back(self.tab, self.origins)


@pytest.fixture
def person(tabs: Tabs, served: Served) -> Iterator[Any]:
    made: list[Person] = []

    def make(lang: str = "en") -> Person:
        p = Person(tabs, served, lang)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def expect(locator: Any) -> Any:
    return playwright_api.expect(locator)


# --- Verify: public, files hashed in the browser ------------------------------------------
def test_verify_a_drawing_hashed_in_the_browser_never_uploaded(served: Served, person) -> None:
    node = served.node
    designer = admit(node, int(Role.DESIGNER))
    drawing = b"cofab drawing: bracket rev A\n" + os.urandom(32)
    svc = node.design_service()
    item = NewDesign.from_bytes(drawing, file_name="bracket.step", title="bracket")
    [cert] = svc.register(designer, [item])
    svc.reveal(designer, cert.design_id)
    visitor = person()
    page = visitor.open("verify")
    expect(page.get_by_role("heading", name="Verify", exact=True)).to_be_visible()
    page.get_by_label("Drawing file").set_input_files(
        {"name": "bracket.step", "mimeType": "application/octet-stream", "buffer": drawing}
    )
    page.get_by_role("button", name="Verify the drawing").click()
    verdict = page.get_by_test_id("design-verdict")
    expect(verdict).to_contain_text("Registered on the chain")
    expect(verdict).to_contain_text(designer.address)
    expect(verdict).to_contain_text("this registration holds priority")
    digest = hashlib.sha256(drawing).hexdigest()
    expect(page.get_by_text(f"SHA-256 of the file: 0x{digest}")).to_be_visible()
    # only the fingerprint went to the node, never the file's bytes
    sent = [r.post_data_buffer or b"" for r in visitor.requests if r.method == "POST"]
    assert sent and all(b"cofab drawing" not in body for body in sent)
    assert any(digest.encode() in body for body in sent)
    visitor.check("verify-design-en")

    # a drawing nobody registered: a plain answer, not an error
    visitor.allowed.append("404")
    page.get_by_label("Drawing file").set_input_files(
        {"name": "other.step", "mimeType": "application/octet-stream", "buffer": b"unknown"}
    )
    page.get_by_role("button", name="Verify the drawing").click()
    expect(page.get_by_test_id("design-verdict")).to_contain_text("Not registered")
    visitor.check()


def test_verify_an_unrevealed_drawing_with_its_certificate(served: Served, person) -> None:
    node = served.node
    designer = admit(node, int(Role.DESIGNER))
    drawing = b"committed, not revealed " + os.urandom(16)
    item = NewDesign.from_bytes(drawing, file_name="part.dxf", title=None)
    [cert] = node.design_service().register(designer, [item])
    page = person().open("verify")
    page.get_by_label("Drawing file").set_input_files(
        {"name": "part.dxf", "mimeType": "application/octet-stream", "buffer": drawing}
    )
    page.get_by_label("Its certificate (optional, JSON)").set_input_files(
        {"name": "cert.json", "mimeType": "application/json", "buffer": cert.dumps().encode()}
    )
    page.get_by_role("button", name="Verify the drawing").click()
    verdict = page.get_by_test_id("design-verdict")
    expect(verdict).to_contain_text("Registered on the chain")
    expect(verdict).to_contain_text("committed, not revealed on the chain yet")


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _recorded_job(node: Node, p: Parties) -> int:
    job = in_production(node, p, [SplitSpec(p.factories[0].address, "machining", 100, 930_000)])
    node.chain.advance_time(60)
    t0 = node.steps.authority.job_created_at(job)
    for i in range(3):
        node.steps.record(p.factories[0].address, job, 0, object_event("assembling", t0 + i))
    node.steps.anchor(job, 0)
    return job


def test_verify_a_step_proof_bundle_and_catch_a_forged_one(
    served: Served, cast: Parties, person
) -> None:
    node = served.node
    job = _recorded_job(node, cast)
    bundle = node.steps.export(job, 0)
    visitor = person("zh-CN")
    page = visitor.open("verify")
    expect(page.get_by_role("heading", name="验证", exact=True)).to_be_visible()
    page.get_by_label("工序证明包（JSON）").set_input_files(
        {"name": "steps.json", "mimeType": "application/json", "buffer": _json(bundle)}
    )
    page.get_by_role("button", name="验证记录").click()
    verdict = page.get_by_test_id("steps-verdict")
    expect(verdict).to_contain_text("记录与链上一致")
    expect(verdict).to_contain_text("共 3 道工序，其中 3 道已锚定上链")
    visitor.check("verify-steps-zh")

    forged = json.loads(json.dumps(bundle))
    del forged["splits"][0]["steps"][1]  # a step left out of the record
    page.get_by_label("工序证明包（JSON）").set_input_files(
        {"name": "forged.json", "mimeType": "application/json", "buffer": _json(forged)}
    )
    page.get_by_role("button", name="验证记录").click()
    expect(page.get_by_test_id("steps-verdict")).to_contain_text("记录与链上不一致")
    visitor.check()

    # the order page shows the split's steps, anchored or still pending
    t0 = node.steps.authority.job_created_at(job)
    node.steps.record(cast.factories[0].address, job, 0, object_event("packing", t0 + 5))
    page.goto(f"{served.url}/#/orders/{job}")
    timeline = page.get_by_test_id("steps-0")
    expect(timeline).to_contain_text("已签署 4 道工序，其中 3 道已锚定上链")
    expect(timeline.get_by_role("listitem").last).to_contain_text("packing")
    expect(timeline.get_by_role("listitem").last).to_contain_text("待锚定")
    visitor.check("order-steps-zh")


# --- every public page, in both languages ---------------------------------------------------
PUBLIC_PAGES = {
    "verify": ("Verify", "验证"),
    "signin": ("Sign in", "登录"),
    "orders": ("Orders", "订单"),
    "disputes": ("Disputes", "争议"),
    "council": ("Council", "理事会"),
    "members": ("Members", "成员"),
}


def test_every_public_page_in_both_languages(served: Served, person) -> None:
    visitor = person()
    page = visitor.open("verify")
    for lang, index in (("en", 0), ("zh-CN", 1)):
        page.get_by_role("combobox").first.select_option(lang)
        for route, names in PUBLIC_PAGES.items():
            page.goto(f"{served.url}/#/{route}")
            heading = page.get_by_role("heading", level=1)
            expect(heading).to_have_text(names[index])
            visitor.check(axe=True)
            assert page.evaluate("document.documentElement.lang") == lang


# --- signing in ---------------------------------------------------------------------------
def test_a_stranger_is_told_what_to_do(served: Served, person) -> None:
    stranger = person().with_wallet(new_account(), served.node.chain.chain_id)
    stranger.allowed.append("403")
    stranger.sign_in_with_wallet()
    expect(stranger.page.get_by_role("alert")).to_contain_text(
        "This key is not an active member of the consortium. Ask the council to admit it"
    )
    expect(stranger.page.get_by_test_id("who")).to_have_count(0)
    stranger.check(axe=True)


# --- a factory's work: accept by an EIP-712 signature made in the browser -------------------
def test_factory_accepts_its_split_by_signature_in_the_browser(
    served: Served, cast: Parties, person
) -> None:
    node = served.node
    p = cast
    job = split_order(node, p)
    plant = p.factories[1]  # painting: split 1, 100 units, 23 %
    factory = person().with_wallet(plant.account, node.chain.chain_id)
    factory.sign_in_with_wallet()
    page = factory.page
    expect(page.get_by_test_id("who")).to_contain_text(plant.address)
    expect(page.get_by_role("heading", name="My work")).to_be_visible()
    row = page.get_by_test_id(f"work-{job}-1")
    expect(row).to_contain_text("assigned, waiting for the factory")
    expect(row).to_contain_text("2,300.00 dUSD")
    factory.check("work-en")
    row.get_by_role("button", name="Review and accept").click()
    words = page.get_by_test_id("accept-words")
    expect(words).to_contain_text(
        f"You, {plant.address}, accept to make “painting”: 100 units, split 1 of order {job}, "
        "for 23% of the order's price (2,300.00 dUSD)."
    )
    factory.check("accept-en")
    assert node.jobs.view(job).splits[1].status.name == "ASSIGNED"
    page.get_by_role("button", name="Sign and accept").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Split 1 of order {job} is accepted.")
    expect(page.get_by_test_id(f"work-{job}-1")).to_contain_text("accepted, in production")
    assert node.jobs.view(job).splits[1].status.name == "ACCEPTED"
    factory.check()


def test_keystore_sign_in_decrypts_in_the_page(
    served: Served, cast: Parties, person, tmp_path: Path
) -> None:
    node = served.node
    p = cast
    job = split_order(node, p)
    plant = p.factories[2]  # assembly: split 3, after split 0
    keystore = Account.encrypt(plant.account.key, "plant three pass", iterations=FAST_KDF)
    path = tmp_path / "plant-3.keystore.json"
    path.write_text(json.dumps(keystore))
    factory = person("zh-CN")
    page = factory.open("signin")
    expect(page.get_by_text("此浏览器中没有找到浏览器钱包")).to_be_visible()
    page.get_by_role("button", name="打开并登录").click()
    expect(page.get_by_role("alert")).to_contain_text("请先选择密钥库文件")

    page.locator("#keystore-file").set_input_files(str(path))
    page.get_by_label("口令").fill("wrong pass")
    page.get_by_role("button", name="打开并登录").click()
    expect(page.get_by_role("alert")).to_contain_text("无法打开密钥库：口令错误")
    expect(page.get_by_label("口令")).to_have_value("")  # not left in the page
    assert any("could not be opened" in w for w in factory.warnings)
    factory.check("signin-zh")

    page.get_by_label("口令").fill("plant three pass")
    page.get_by_role("button", name="打开并登录").click()
    expect(page.get_by_test_id("who")).to_contain_text(plant.address)
    row = page.get_by_test_id(f"work-{job}-3")
    expect(row).to_contain_text("已分配，等待工厂接受")
    row.get_by_role("button", name="查看并接受").click()
    expect(page.get_by_test_id("accept-words")).to_contain_text("“assembly”：100 件")
    page.get_by_role("button", name="签名并接受").click()
    expect(page.get_by_test_id(f"work-{job}-3")).to_contain_text("已接受，生产中")
    assert node.jobs.view(job).splits[3].status.name == "ACCEPTED"
    # the passphrase and the key never went to the node
    sent = b"".join(r.post_data_buffer or b"" for r in factory.requests)
    assert b"plant three pass" not in sent and plant.account.key.hex().encode() not in sent
    assert b'"crypto"' not in sent
    factory.check("work-zh")


# --- the order page, and the language switch ----------------------------------------------
def test_order_page_in_both_languages(served: Served, cast: Parties, person) -> None:
    node = served.node
    p = cast
    job = in_production(node, p, four_splits(p))
    reader = person()
    page = reader.open(f"orders/{job}")
    expect(page.get_by_test_id("job-status")).to_have_text("in production")
    expect(page.get_by_test_id("split-0")).to_contain_text("3,000.00 dUSD")
    expect(page.get_by_test_id("split-3")).to_contain_text("accepted, in production")
    expect(page.get_by_text("Split 3 (assembly) starts from the output of split 0")).to_be_visible()
    expect(page.get_by_text("Paid into escrow")).to_be_visible()
    money = page.locator("#h-money + dl")
    expect(money).to_contain_text(f"{10_000:,}.00 dUSD")
    assert node.jobs.view(job).model_dump(mode="json")["escrow"]["deposited"] == 10_000 * DUSD
    reader.check("order-en")

    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_test_id("job-status")).to_have_text("生产中")
    expect(page.get_by_text("已存入托管")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    page.reload()  # the choice is remembered
    expect(page.get_by_test_id("job-status")).to_have_text("生产中")
    reader.check("order-zh")

    page.goto(f"{served.url}/#/orders")
    expect(page.get_by_role("link", name=f"订单 {job}", exact=True)).to_be_visible()
    reader.check("orders-zh")
    page.goto(f"{served.url}/#/members")
    expect(page.get_by_role("heading", name="成员")).to_be_visible()
    reader.check("members-zh")


def test_the_portal_is_served_without_shadowing_the_api(served: Served) -> None:
    import httpx

    with httpx.Client(base_url=served.url, timeout=60) as http:  # a busy machine is slow
        page = http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert http.get("/assets/main.js").status_code == 200
        assert http.get("/health").json() == {"status": "ok"}
        missing = http.get("/no-such-route")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert "/" not in http.get("/openapi.json").json()["paths"]


def test_the_page_loads_only_its_own_files() -> None:
    """Everything the page loads comes from the node's origin: no CDN, no network."""
    index = (portal_dir() / "index.html").read_text()
    links = re.findall(r'(?:src|href)="([^"]+)"', index)
    assert links and all(link.startswith("/assets/") for link in links), links


# --- delivery, acceptance and payment -----------------------------------------------------
def test_factory_delivers_buyer_accepts_factory_withdraws(
    served: Served, cast: Parties, person
) -> None:
    node = served.node
    job = in_production(node, cast, four_splits(cast))
    plant = cast.factories[0]  # machining: split 0, 30 % of 10,000 dUSD
    token = node.settlement.token()
    wallet_before = token.balance_of(plant.address)

    factory = person().with_wallet(plant.account, node.chain.chain_id)
    factory.sign_in_with_wallet()
    page = factory.page
    expect(page.get_by_test_id("who")).to_contain_text(plant.address)
    page.goto(f"{served.url}/#/orders/{job}")
    page.get_by_test_id("split-0").get_by_role("button", name="Deliver").click()
    expect(page.get_by_text("Split 0 is delivered: the buyer reviews it now.")).to_be_visible()
    expect(page.get_by_test_id("split-0")).to_contain_text("delivered, in review")
    expect(page.get_by_test_id("split-0")).to_contain_text("days left")
    factory.check("order-factory-en")

    buyer = person("zh-CN").with_wallet(cast.buyer.account, node.chain.chain_id)
    buyer.sign_in_with_wallet()
    expect(buyer.page.get_by_test_id("who")).to_contain_text(cast.buyer.address)
    buyer.page.goto(f"{served.url}/#/orders/{job}")
    row = buyer.page.get_by_test_id("split-0")
    expect(row).to_contain_text("已交付，验收中")
    row.get_by_role("button", name="验收交付").click()
    expect(buyer.page.get_by_text("分包 0 的交付已验收：已向其工厂付款。")).to_be_visible()
    expect(buyer.page.get_by_test_id("split-0")).to_contain_text("已付款")
    buyer.check("order-buyer-zh")

    page.goto(f"{served.url}/#/work")
    balance = page.get_by_test_id("balance")
    expect(balance).to_contain_text("3,000.00 dUSD")
    page.get_by_role("button", name="Withdraw 3,000.00 dUSD").click()
    expect(page.get_by_text("3,000.00 dUSD sent to your wallet.")).to_be_visible()
    expect(page.get_by_text("Nothing to withdraw yet.")).to_be_visible()
    assert token.balance_of(plant.address) == wallet_before + 3_000 * DUSD
    factory.check("balance-en")


# --- a designer registers drawings hashed in the browser ------------------------------------
def test_designer_registers_a_batch_by_fingerprint_and_reveals_one(served: Served, person) -> None:
    node = served.node
    designer = admit(node, int(Role.DESIGNER))
    drawings = {f"part-{i}.dxf": f"drawing {i} ".encode() + os.urandom(16) for i in range(2)}
    ids = {name: "0x" + hashlib.sha256(body).hexdigest() for name, body in drawings.items()}
    who = person().with_wallet(designer.account, node.chain.chain_id)
    who.sign_in_with_wallet()
    page = who.page
    expect(page.get_by_role("heading", name="My designs")).to_be_visible()
    page.get_by_label("Drawing files").set_input_files(
        [
            {"name": name, "mimeType": "application/octet-stream", "buffer": body}
            for name, body in drawings.items()
        ]
    )
    page.get_by_role("button", name="Register 2 file(s)").click()
    expect(page.get_by_text("2 drawing(s) registered.")).to_be_visible()
    certs = page.get_by_test_id("certificates")
    for design_id in ids.values():
        expect(certs).to_contain_text(design_id)
    with page.expect_download() as got:
        certs.get_by_role("button", name="Download certificate").first.click()
    cert = json.loads(Path(got.value.path()).read_text())
    assert cert["design_id"] in ids.values() and cert["designer"] == designer.address
    sent = b"".join(r.post_data_buffer or b"" for r in who.requests)
    assert b"drawing 0" not in sent and b"drawing 1" not in sent  # fingerprints only
    who.check("designs-en")

    first = ids["part-0.dxf"]
    row = page.get_by_test_id(f"design-{first}")
    expect(row).to_contain_text("committed, not revealed yet")
    row.get_by_role("button", name="Reveal on the chain").click()
    expect(page.get_by_test_id(f"design-{first}")).to_contain_text("active")
    on_chain = node.designs.find(first)
    assert on_chain is not None and on_chain.designer == designer.address
    assert node.designs.find(ids["part-1.dxf"]) is None  # the other one stays committed only
    page.goto(f"{served.url}/#/verify")
    page.get_by_label("Drawing file").set_input_files(
        {
            "name": "part-0.dxf",
            "mimeType": "application/octet-stream",
            "buffer": drawings["part-0.dxf"],
        }
    )
    page.get_by_role("button", name="Verify the drawing").click()
    expect(page.get_by_test_id("design-verdict")).to_contain_text(designer.address)
    who.check()


# --- a dispute: opened by the buyer, ruled by two auditors ------------------------------------
@pytest.mark.slow
def test_buyer_disputes_a_delivery_and_two_auditors_rule(
    served: Served, cast: Parties, person
) -> None:
    node = served.node
    job = in_production(node, cast, four_splits(cast))
    painter = cast.factories[1]
    node.jobs.deliver(painter, job, 1, None)

    buyer = person().with_wallet(cast.buyer.account, node.chain.chain_id)
    buyer.sign_in_with_wallet()
    expect(buyer.page.get_by_test_id("who")).to_contain_text(cast.buyer.address)
    page = buyer.page
    page.goto(f"{served.url}/#/orders/{job}")
    page.get_by_test_id("split-1").get_by_role("button", name="Open a dispute").click()
    page.get_by_label("What is wrong").fill("paint peels off after one day")
    photo = b"photo of the peeling paint " + os.urandom(8)
    page.get_by_label("Evidence file (hashed here, not uploaded)").set_input_files(
        {"name": "peeling.jpg", "mimeType": "image/jpeg", "buffer": photo}
    )
    buyer.check("dispute-open-en")
    page.get_by_role("button", name="Open the dispute on split 1").click()
    expect(page.get_by_text("is open: the split's payout is frozen")).to_be_visible()
    [dispute] = node.disputes.list(job, None)
    assert dispute.evidence_hash == "0x" + hashlib.sha256(photo).hexdigest()
    assert b"peeling paint" not in b"".join(r.post_data_buffer or b"" for r in buyer.requests)
    node.disputes.add_evidence(painter, dispute.id, "0x" + "ab" * 32, "https://plant-2/qc")

    for i, lang in enumerate(("zh-CN", "en")):
        auditor = admit(node, int(Role.AUDITOR))
        who = person(lang).with_wallet(auditor.account, node.chain.chain_id)
        who.sign_in_with_wallet()
        section = who.page.get_by_test_id(f"dispute-{dispute.id}")
        if lang == "zh-CN":
            expect(section).to_contain_text("审计方投票中")
            expect(section).to_contain_text("0 / 需要 2")
            who.check("disputes-zh")
            section.get_by_label("支付给工厂的分包份额（%）").fill("40")
            section.get_by_label("责任方").select_option("factory")
            section.get_by_role("button", name=f"对争议 {dispute.id} 投票").click()
            expect(who.page.get_by_text(f"您对争议 {dispute.id} 的投票已记录。")).to_be_visible()
        else:
            expect(section).to_contain_text("1 of 2 needed")
            section.get_by_label("Share of the split to pay the factory (%)").fill("40")
            section.get_by_label("Who is at fault").select_option("factory")
            section.get_by_role("button", name=f"Vote on dispute {dispute.id}").click()
            expect(who.page.get_by_test_id(f"dispute-{dispute.id}")).to_contain_text(
                "pay 40% of the split to its factory; at fault: the factory"
            )
            who.check("disputes-en")
        assert i + 1 == len(node.disputes.list(job, None)[0].vote_list)
    assert node.disputes.list(job, None)[0].status.label == "ruled"

    # the factory's track record shows the dispute it lost
    record = who.page
    record.goto(f"{served.url}/#/factories/{painter.address}")
    reputation = record.get_by_test_id("reputation")
    expect(reputation).to_contain_text("Disputes lost1")
    who.check("factory-en")


# --- the council admits a member ------------------------------------------------------------
def test_council_proposes_and_admits_a_member(served: Served, person) -> None:
    node = served.node
    operator = node.sender()  # the founding council member
    newcomer = new_account()
    council = person("zh-CN").with_wallet(operator.account, node.chain.chain_id)
    council.sign_in_with_wallet()
    expect(council.page.get_by_test_id("who")).to_contain_text(operator.address)
    page = council.page
    page.goto(f"{served.url}/#/council")
    expect(page.get_by_text("需 1 票批准")).to_be_visible()
    page.get_by_label("成员（地址）").fill("0x1234")
    page.get_by_role("button", name="提交提案").click()
    expect(page.get_by_role("alert")).to_contain_text("请填写成员地址")
    page.get_by_label("成员（地址）").fill(newcomer.address)
    page.get_by_label("工厂").check()
    page.get_by_label("审计方").check()
    council.check("council-zh")
    page.get_by_role("button", name="提交提案").click()
    expect(page.get_by_text("已提交；达到法定人数批准后即执行。")).to_be_visible()
    member = node.consortium.member(newcomer.address)
    assert member.roles == Role.FACTORY | Role.AUDITOR
    [latest] = node.consortium.proposals()[-1:]
    expect(page.get_by_test_id(f"proposal-{latest.id}")).to_contain_text("已执行")
    page.goto(f"{served.url}/#/members")
    expect(page.get_by_text(newcomer.address)).to_be_visible()
    council.check()


# --- a buyer orders through the wizard ------------------------------------------------------
def test_buyer_creates_funds_and_splits_an_order_with_the_wizard(
    served: Served, cast: Parties, person
) -> None:
    node = served.node
    before = {j.id for j in node.jobs.list_jobs(None)}
    buyer = person().with_wallet(cast.buyer.account, node.chain.chain_id)
    buyer.sign_in_with_wallet()
    page = buyer.page
    expect(page.get_by_test_id("who")).to_contain_text(cast.buyer.address)
    page.get_by_role("link", name="New order").click()
    page.get_by_label("Design (SHA-256 of the drawing)").fill("0x" + cast.design.hex())
    page.get_by_label("Design (SHA-256 of the drawing)").press("Tab")
    expect(page.get_by_test_id("royalty")).to_contain_text("royalty is 5% of the price")
    page.get_by_label("Price (dUSD)").fill("1000")
    rows = [
        (cast.factories[0].address, "cutting", "100", "60"),
        (cast.factories[1].address, "welding", "100", "30"),
    ]
    for i, (factory, step, quantity, share) in enumerate(rows):
        if i:
            page.get_by_role("button", name="Add a split").click()
        page.locator(f"#row-{i}-factory").select_option(factory)
        page.locator(f"#row-{i}-step").fill(step)
        page.locator(f"#row-{i}-quantity").fill(quantity)
        page.locator(f"#row-{i}-share").fill(share)
    page.locator("#row-1-after-0").check()
    shares = page.get_by_test_id("shares")
    expect(shares).to_have_text("Splits 90% + royalty 5% + platform fee 2% = 97% (must be 100%)")
    page.get_by_role("button", name="Create, pay into escrow and split").click()
    expect(page.get_by_role("alert")).to_contain_text("the splits must add up to 93%")
    assert {j.id for j in node.jobs.list_jobs(None)} == before  # nothing was created
    page.locator("#row-1-share").fill("33")
    expect(shares).to_have_text("Splits 93% + royalty 5% + platform fee 2% = 100% (must be 100%)")
    buyer.check("new-order-en")
    page.get_by_role("button", name="Create, pay into escrow and split").click()
    expect(page.get_by_test_id("job-status")).to_have_text("split")
    expect(
        page.get_by_text("Split 1 (welding) starts from the output of split 0 (cutting).")
    ).to_be_visible()
    [job] = {j.id for j in node.jobs.list_jobs(None)} - before
    view = node.jobs.view(job).model_dump(mode="json")
    assert view["price"] == 1_000 * DUSD and view["escrow"]["deposited"] == 1_000 * DUSD
    assert [(s["step"], s["share_ppm"], s["depends_on"]) for s in view["splits"]] == [
        ("cutting", 600_000, []),
        ("welding", 330_000, [0]),
    ]
    buyer.check()


# --- a hand-over, both sides signed in the browser ------------------------------------------
def propose_hand_over(page: Any, lot: str, quantity: int, words: str, other: str) -> None:
    """On an order's page, a factory proposes a hand-over, reads it in `words` and signs its
    side, which then waits for the `other` factory's signature."""
    page.get_by_label("Lot label").fill(lot)
    page.get_by_label("Quantity", exact=True).fill(str(quantity))
    page.get_by_role("button", name="Review", exact=True).click()
    expect(page.get_by_test_id("handover-words")).to_contain_text(words)
    page.get_by_role("button", name="Sign the hand-over").click()
    posted = page.get_by_role("status").filter(has_text="now waits for the signature")
    expect(posted).to_contain_text(other)


def test_two_factories_sign_a_hand_over_in_their_browsers(
    served: Served, cast: Parties, person
) -> None:
    node = served.node
    job = in_production(node, cast, four_splits(cast))  # split 3 (assembly) after split 0
    giver_key, taker_key = cast.factories[0], cast.factories[2]
    node.jobs.deliver(giver_key, job, 0, None)  # lots are handed over once made

    giver = person().with_wallet(giver_key.account, node.chain.chain_id)
    giver.sign_in_with_wallet()
    expect(giver.page.get_by_test_id("who")).to_contain_text(giver_key.address)
    page = giver.page
    page.goto(f"{served.url}/#/orders/{job}")
    words = (
        "You hand over 100 units of lot “LOT-A” from split 0 (machining) to split 3 (assembly)"
        f" of order {job}. The receiving factory {taker_key.address} must sign too."
    )
    propose_hand_over(page, "LOT-A", 100, words, taker_key.address)
    giver.check("handover-give-en")
    assert node.jobs.view(job).splits[0].handed_to == []  # one signature does nothing

    # the receiving factory finds it in its inbox, reads it in words and signs its side
    taker = person("zh-CN").with_wallet(taker_key.account, node.chain.chain_id)
    taker.sign_in_with_wallet()
    expect(taker.page.get_by_test_id("who")).to_contain_text(taker_key.address)
    tpage = taker.page
    tpage.get_by_role("link", name="交接", exact=True).click()
    item = tpage.get_by_test_id(f"pending-{job}-0-3")
    expect(item).to_contain_text("批次“LOT-A”100 件")
    item.get_by_role("button", name="查看签署内容").click()
    expect(tpage.get_by_test_id("handover-words")).to_contain_text(
        f"您为订单 {job} 的分包 3（assembly）接收批次“LOT-A”的 100 件"
    )
    taker.check("handover-take-zh")
    tpage.get_by_role("button", name="签名并提交交接").click()
    expect(tpage.get_by_text("分包 0 的批次现已由分包 3 保管。")).to_be_visible()
    expect(tpage.get_by_text("没有等待您签名的交接。")).to_be_visible()
    view = node.jobs.view(job)
    assert view.splits[0].handed_to == [3] and view.splits[3].received_from == [0]
    taker.check()


# --- the audit of an order ------------------------------------------------------------------
def test_audit_of_an_order_with_an_added_bundle(served: Served, cast: Parties, person) -> None:
    import httpx

    node = served.node
    job = _recorded_job(node, cast)
    bundle = node.steps.export(job, 0)
    expected = httpx.post(
        f"{served.url}/jobs/{job}/audit", json={"bundles": [bundle]}, timeout=60
    ).json()
    auditor = person()
    page = auditor.open(f"orders/{job}")
    page.get_by_role("link", name="Audit this order").click()
    expect(page.get_by_role("heading", name=f"Audit of order {job}")).to_be_visible()
    page.get_by_label("Step bundles to add (optional, JSON)").set_input_files(
        {"name": "steps.json", "mimeType": "application/json", "buffer": _json(bundle)}
    )
    page.get_by_role("button", name="Run the audit").last.click()
    verdict = page.get_by_test_id("audit-verdict")
    # the audit reads every chain event of the order: give a busy machine time
    expect(verdict).to_contain_text(expected["report_hash"], timeout=60_000)  # same inputs
    with page.expect_download() as got:
        page.get_by_role("button", name="Download the report (JSON)").click()
    assert json.loads(Path(got.value.path()).read_text())["report_hash"] == expected["report_hash"]
    page.get_by_role("button", name="Read the full report").click()
    frame = page.frame_locator("iframe.report")
    expect(frame.locator("body")).to_contain_text(str(job))
    auditor.check("audit-en")
