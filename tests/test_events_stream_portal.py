"""Live updates in a real browser: an open order page reloads when the member's
notification arrives on the event stream, with no focus change and no console error."""

from __future__ import annotations

from test_portal import Served, cast, expect, person, pytestmark

from kit import Parties, four_splits, in_production

assert cast and person and pytestmark  # fixtures used by name


def test_an_open_order_page_updates_when_a_notification_arrives(
    served: Served, cast: Parties, person
) -> None:
    node = served.node
    job = in_production(node, cast, four_splits(cast))
    plant = cast.factories[0]
    node.jobs.deliver(plant, job, 0)
    node.notify.start()  # the node derives and streams notifications
    factory = person().with_wallet(plant.account, node.chain.chain_id)
    factory.sign_in_with_wallet()
    page = factory.page
    expect(page.get_by_test_id("who")).to_contain_text(plant.address)
    page.goto(f"{served.url}/#/orders/{job}")
    expect(page.get_by_test_id("split-0")).to_contain_text("delivered, in review")
    page.wait_for_timeout(1500)  # the stream is open

    node.jobs.accept_delivery(cast.buyer, job, 0)  # elsewhere: the buyer accepts
    # funds.withdrawable reaches the factory's page, which reloads the order by itself
    expect(page.get_by_test_id("split-0")).to_contain_text("paid", timeout=30_000)
    factory.check()
