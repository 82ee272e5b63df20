"""`cofab demo` plays the whole story on a devnet of its own and ends with a report path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_tells_the_story_and_writes_the_report(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFAB_")}
    env.update(COFAB_DATA_DIR=str(tmp_path / "unused"), COLUMNS="200")
    out = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    report_path = Path(lines[-1].split("HTML audit report:")[-1].strip())
    assert report_path.exists() and report_path.parent == out
    for part in (
        "shared encrypted",
        "splits the order in four",
        "anchored",
        "hands lot",
        "[critical]",
        "opens a dispute",
        "ruling:",
        "Payouts by share",
    ):
        assert part in proc.stdout, part
    report = json.loads(report_path.with_suffix(".json").read_text())
    codes = {f["code"] for f in report["findings"]}
    assert {"payload-mismatch", "dispute-opened", "dispute-ruled"} <= codes
    money = report["money"]
    assert money["deposited"] == money["released"] + money["refunded"] + money["held"]
    assert money["held"] == 0
    assert "Verdict: findings" in report_path.read_text()
    assert not (tmp_path / "unused").exists()  # a throwaway devnet: nothing left behind
