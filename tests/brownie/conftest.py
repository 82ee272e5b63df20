"""Fixtures and helpers for the contract tests, run by `brownie test` (see
`make test-contracts`); test modules import the helpers from here (`from conftest import
err`), this folder being pytest's root for them."""

import os

import pytest

DAY = 86400
TTL = 7 * DAY
COUNCIL, FACTORY, DESIGNER, AUDITOR, BUYER = 1, 2, 4, 8, 16


def pytest_configure(config):
    # brownie's own chain.sleep/mine/snapshot go through its deprecated rpc.* wrappers and
    # warn on every call: noise that says nothing about this project.
    config.addinivalue_line(
        "filterwarnings", r"ignore:rpc\.\w+ should not be called directly:FutureWarning"
    )


def pytest_sessionstart(session):
    """Run the development anvil on 127.0.0.1:$COFAB_BROWNIE_PORT.

    brownie-config.yaml cannot carry this (eth-brownie 1.22.2 crashes on project
    cmd_settings for `development` and never expands ${VARS} there), so it is applied here,
    after brownie has read its options (pytest_configure) and before it connects and
    launches anvil (pytest_collection_finish).
    """
    # Imported here, not at module level: brownie hashes the sources of a conftest's
    # module-level imports that live under the project, and .venv/ holds brownie's
    # compiled _config module, which it cannot read as text.
    from brownie._config import CONFIG

    network_id = CONFIG.argv.get("network") or CONFIG.settings["networks"]["default"]
    network = CONFIG.networks.get(network_id) or {}
    if "cmd" not in network:
        return  # a live network, or one brownie only attaches to
    cmd_settings = dict(network.get("cmd_settings") or {})
    cmd_settings["host"] = "127.0.0.1"
    port = os.environ.get("COFAB_BROWNIE_PORT")
    if port:
        cmd_settings["port"] = int(port)
    network["cmd_settings"] = cmd_settings


def _arg(value):
    address = getattr(value, "address", value)
    if isinstance(address, str) and address.startswith("0x") and len(address) == 42:
        return address.lower()  # brownie decodes error arguments to lowercase addresses
    return str(value)


def err(name, *args):
    """Expect a revert with custom error `name`: with `args`, exactly those arguments (as
    brownie decodes them); without, whatever its arguments."""
    import brownie  # here, not at module level: see pytest_sessionstart

    if args:
        return brownie.reverts(f"{name}: {', '.join(_arg(a) for a in args)}")
    return brownie.reverts(revert_pattern=f"{name}(: .*)?")


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    """Every test starts from the chain state the module-scoped fixtures built."""


@pytest.fixture(scope="module")
def council(accounts):
    return accounts[0], accounts[1], accounts[2]


@pytest.fixture(scope="module")
def factory(accounts):
    return accounts[3]


@pytest.fixture(scope="module")
def designer(accounts):
    return accounts[4]


@pytest.fixture(scope="module")
def outsider(accounts):
    return accounts[9]


@pytest.fixture(scope="module")
def consortium(Consortium, council, factory, designer):
    """Three founding council members, quorum 2, proposals open for 7 days; plus an active
    factory (accounts[3]) and an active designer (accounts[4]) admitted by quorum."""
    c = Consortium.deploy(list(council), 2, TTL, {"from": council[0]})
    for account, roles in ((factory, FACTORY), (designer, DESIGNER)):
        tx = c.proposeAdmit(account, roles, b"\x11" * 32, b"\x22" * 32, {"from": council[0]})
        c.approve(tx.events["ProposalCreated"]["id"], {"from": council[1]})
    return c
