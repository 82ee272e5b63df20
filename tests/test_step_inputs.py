"""A step's numbers are read exactly as signed: never rounded, truncated or parsed."""

from __future__ import annotations

import pytest

from ledger.core.errors import InvalidInput
from ledger.steps.record import Step

VALID = {
    "jobId": 2,
    "splitId": 0,
    "seq": 10,
    "prevHash": "0x" + "11" * 32,
    "bizStep": "assembling",
    "payloadHash": "0x" + "22" * 32,
    "evidenceHash": "0x" + "00" * 32,
    "time": 1_760_000_000,
    "member": "0x" + "33" * 20,
}


def test_a_valid_record_is_read_as_is() -> None:
    step = Step.from_message(VALID)
    assert (step.job_id, step.split_id, step.seq, step.time) == (2, 0, 10, 1_760_000_000)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jobId", 2.9),
        ("jobId", 2.0),
        ("seq", 10.5),
        ("splitId", "0x0"),
        ("splitId", "00"),
        ("seq", " 10"),
        ("seq", "-1"),
        ("time", 1_760_000_000.5),
        ("seq", True),
        ("time", None),
    ],
)
def test_a_number_that_is_not_a_json_integer_is_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as refused:
        Step.from_message({**VALID, field: value})
    assert field in refused.value.message
    assert refused.value.details["errors"][0]["field"] == field
