# ruff: noqa: RUF001, F811 - Chinese full-width punctuation; the portal tests' fixtures
"""Members whose key the node does not hold act in the portal: each transaction the node
cannot sign is served unsigned, described in words, signed in the browser (an injected
wallet's eth_signTransaction, or a keystore opened in the page) and relayed by the node."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from test_portal import (  # noqa: F401 - the portal tests' fixtures (cast, person)
    Person,
    Served,
    cast,
    expect,
    person,
)

from kit import DUSD, FAST_KDF, Parties, split_order
from ledger.membership.roles import Role
from ledger.node import Node
from ledger.orders.jobs import SplitSpec

REFUSED = "403"  # the node's refusal to sign, which the portal answers by signing itself


def keyless(node: Node, roles: int) -> LocalAccount:
    """An active member whose key the node does not hold."""
    account: LocalAccount = Account.create(os.urandom(32).hex())
    node.consortium.propose_admit(node.sender(), account.address, roles)
    return account


def with_signing_wallet(who: Person, account: LocalAccount, chain_id: int) -> Person:
    """An EIP-1193 provider that also signs transactions (never sends them)."""
    signed: list[dict[str, Any]] = []

    def sign_transaction(_source: Any, method: str, params: list[Any]) -> Any:
        if method != "eth_signTransaction":
            raise ValueError(f"unsupported method {method}")
        fields = params[0]
        assert fields["from"].lower() == account.address.lower()
        tx = {k: int(v, 16) for k, v in fields.items() if k not in ("from", "to", "data")}
        tx.pop("type", None)
        tx |= {"to": fields["to"], "data": fields["data"]}
        signed.append(fields)
        return account.sign_transaction(tx).raw_transaction.to_0x_hex()

    who.with_wallet(account, chain_id, more=sign_transaction)
    who.signed = signed  # type: ignore[attr-defined]
    return who


def test_a_factory_with_a_browser_wallet_accepts_its_split(
    served: Served, cast: Parties, person
) -> None:
    node = served.node
    plant = keyless(node, int(Role.FACTORY))
    job = split_order(node, cast, [SplitSpec(plant.address, "milling", 50, 930_000)])
    factory = with_signing_wallet(person(), plant, node.chain.chain_id)
    factory.allowed.append(REFUSED)
    factory.sign_in_with_wallet()
    page = factory.page
    expect(page.get_by_test_id("who")).to_contain_text(plant.address)
    row = page.get_by_test_id(f"work-{job}-0")
    row.get_by_role("button", name="Review and accept").click()
    page.get_by_role("button", name="Sign and accept").click()
    dialog = page.get_by_role("dialog", name="Sign this transaction")
    expect(dialog.get_by_test_id("relay-words")).to_have_text(f"Accept split 0 of order #{job}.")
    factory.check("relay-accept-en")
    assert node.jobs.view(job).splits[0].status.name == "ASSIGNED"
    dialog.get_by_role("button", name="Sign and send").click()
    expect(page.get_by_role("status").first).to_contain_text(f"Split 0 of order {job} is accepted.")
    assert node.jobs.view(job).splits[0].status.name == "ACCEPTED"
    assert [f["to"] for f in factory.signed] == [node.deployment.address("JobBoard")]
    factory.check()


def test_a_buyer_with_a_keystore_places_and_funds_an_order(
    served: Served, cast: Parties, person, tmp_path: Path
) -> None:
    node = served.node
    buyer = keyless(node, int(Role.BUYER))
    node.designs.grant_licence(cast.designer, cast.design, buyer.address, 50_000)
    node.settlement.token().mint(node.sender(), buyer.address, 5_000 * DUSD)
    path = tmp_path / "buyer.keystore.json"
    path.write_text(json.dumps(Account.encrypt(buyer.key, "buyer pass", iterations=FAST_KDF)))
    before = {j.id for j in node.jobs.list_jobs(None)}

    who = person("zh-CN")
    who.allowed.append(REFUSED)
    page = who.open("signin")
    page.locator("#keystore-file").set_input_files(str(path))
    page.get_by_label("口令").fill("buyer pass")
    page.get_by_role("button", name="打开并登录").click()
    expect(page.get_by_test_id("who")).to_contain_text(buyer.address)
    page.get_by_role("link", name="新建订单").click()
    field = page.get_by_label("设计（图纸的 SHA-256）")
    field.fill("0x" + cast.design.hex())
    field.press("Tab")
    page.get_by_label("价格（dUSD）").fill("1000")
    page.locator("#row-0-factory").select_option(cast.factories[0].address)
    page.locator("#row-0-step").fill("cutting")
    page.locator("#row-0-quantity").fill("100")
    page.locator("#row-0-share").fill("93")
    page.get_by_role("button", name="创建、存入托管并分包").click()

    dialog = page.get_by_role("dialog", name="签署此交易")
    words = dialog.get_by_test_id("relay-words")
    expected = [
        "下单：100 件，价格 1,000.00 dUSD。",
        "允许托管合约从您的账户扣取 1,000.00 dUSD（下一步将完成付款）。",
        "为订单 #{job} 向托管支付 1,000.00 dUSD。",
        "将订单 #{job} 拆分给各工厂。",
    ]
    job = None
    for i, text in enumerate(expected):
        if i == 2:  # the approval is shown once the order exists
            [job] = {j.id for j in node.jobs.list_jobs(None)} - before
        expect(words).to_have_text(text.format(job=job))
        if i == 2:
            who.check("relay-fund-zh")
            assert node.jobs.view(job).status.name == "CREATED"
        dialog.get_by_role("button", name="签署并发送").click()
    expect(page.get_by_test_id("job-status")).to_be_visible()
    assert job is not None
    view = node.jobs.view(job).model_dump(mode="json")
    assert view["buyer"] == buyer.address
    assert view["escrow"]["deposited"] == 1_000 * DUSD
    assert [s["step"] for s in view["splits"]] == ["cutting"]
    # the passphrase and the key never went to the node
    sent = b"".join(r.post_data_buffer or b"" for r in who.requests)
    assert b"buyer pass" not in sent and buyer.key.hex().encode() not in sent
    who.check()
