"""The Python side of the contracts' vocabulary matches the compiled contracts.

Enums, role bits and the ppm scale are written once in Solidity and once in Python (the
clients need them as values); these tests read the AST the project's solc produces
(ledger/eth/compiler.py) and fail as soon as the two sides drift. They also check that
every custom error has one declaration and a user-facing message from its NatSpec.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

import ledger.node  # noqa: F401  (imports every contract client: their enums register)
from ledger.core.abi import ALL_ROLES, MAX_SPLITS, PPM_SCALE, SOLIDITY_ENUMS, Role
from ledger.eth import reverts
from ledger.eth.compiler import artifacts, source_asts
from ledger.orders.jobs import JobStatus


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _nodes(node_type: str) -> list[tuple[str, dict[str, Any]]]:
    """(source path, node) of every AST node of `node_type` in cofab's own contracts."""
    return [
        (path, node)
        for path, ast in source_asts().items()
        for node in _walk(ast)
        if node.get("nodeType") == node_type
    ]


def _contract(name: str) -> dict[str, Any]:
    found = [n for _, n in _nodes("ContractDefinition") if n["name"] == name]
    assert len(found) == 1, f"{name} is declared {len(found)} times"
    return found[0]


def _constants(contract: str) -> dict[str, int]:
    return {
        n["name"]: int(n["value"]["value"].replace("_", ""))
        for n in _contract(contract)["nodes"]
        if n.get("nodeType") == "VariableDeclaration" and n.get("constant")
    }


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


def _solidity_enums() -> dict[str, list[str]]:
    enums: dict[str, list[str]] = {}
    for _, node in _nodes("EnumDefinition"):
        assert node["name"] not in enums, f"enum {node['name']} is declared twice"
        enums[node["name"]] = [m["name"] for m in node["members"]]
    return enums


def test_every_solidity_enum_has_its_python_twin_member_for_member() -> None:
    solidity = _solidity_enums()
    assert set(solidity) == set(SOLIDITY_ENUMS), "an enum exists on one side only"
    for name, members in solidity.items():
        python = SOLIDITY_ENUMS[name]
        assert [(m.name, int(m)) for m in python] == [
            (_upper_snake(m), i) for i, m in enumerate(members)
        ], f"{python.__module__}.{name} differs from the contract's enum {name}"


def test_role_bits_match_the_roles_library() -> None:
    bits = _constants("Roles")
    assert {name: bit for name, bit in bits.items() if name != "ALL"} == {
        r.name: int(r) for r in Role if r.name
    }
    assert bits["ALL"] == ALL_ROLES


def test_ppm_scale_matches() -> None:
    assert _constants("Ppm") == {"SCALE": PPM_SCALE}


def test_max_splits_matches() -> None:
    [node] = [
        n
        for n in _contract("JobBoard")["nodes"]
        if n.get("nodeType") == "VariableDeclaration" and n.get("name") == "MAX_SPLITS"
    ]
    assert int(node["value"]["value"]) == MAX_SPLITS


def test_no_contract_restates_a_role_bit_or_the_scale() -> None:
    """A role bit or the scale outside the common libraries is a reference to them,
    never a literal of its own."""
    named = {r.name for r in Role} | {"ALL_ROLES", "SCALE", "ROYALTY_SCALE"}
    for path, node in _nodes("VariableDeclaration"):
        if node.get("constant") and node["name"] in named and "common/" not in path:
            assert node["value"]["nodeType"] == "MemberAccess", f"{path}: {node['name']}"


def test_each_custom_error_is_declared_once() -> None:
    counts = Counter(node["name"] for _, node in _nodes("ErrorDefinition"))
    assert [name for name, n in counts.items() if n > 1] == []


def _abi_errors() -> dict[str, dict[str, Any]]:
    return {
        item["name"]: item
        for art in artifacts().values()
        for item in art.abi
        if item["type"] == "error"
    }


def test_every_custom_error_in_an_abi_has_a_message() -> None:
    messages = reverts.messages()
    assert sorted(set(_abi_errors()) - set(messages)) == []
    # and the messages written in Python, for OpenZeppelin's errors, are all still used
    assert sorted(set(reverts.FOREIGN_MESSAGES) - set(_abi_errors())) == []


def test_every_cofab_message_names_only_the_errors_arguments() -> None:
    """Each `param` of a notice became a field: no backticked argument is left, and no
    field points past the argument list (formatting it would raise)."""
    errors = _abi_errors()
    cofab = {node["name"] for _, node in _nodes("ErrorDefinition")}
    for name in sorted(cofab):
        inputs = [i["name"] for i in errors[name]["inputs"]]
        message = reverts.messages()[name]
        assert message.format(*inputs), name
        assert not any(f"`{arg}`" in message for arg in inputs), name
        assert message[0] != message[0].upper() or not message[0].isalpha(), name


def _revert_data(signature: str, types: list[str], values: list[Any]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, values)


def test_a_revert_reads_as_its_notice_with_names_for_roles_and_enums() -> None:
    account = "0x" + "ab" * 20
    revert = reverts.decode_revert(
        _revert_data("MissingRole(address,uint32)", ["address", "uint32"], [account, 16])
    )
    assert revert.error == "MissingRole"
    assert str(revert).endswith("is not an active member with the buyer role")
    status = int(JobStatus.IN_PRODUCTION)
    revert = reverts.decode_revert(
        _revert_data("JobNotInStatus(uint256,uint8)", ["uint256", "uint8"], [7, status])
    )
    assert str(revert) == "job 7 is in_production, which does not allow this"
