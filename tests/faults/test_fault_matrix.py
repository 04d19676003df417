"""The fault matrix (issue 8): while UI events flow, kill -9 one component and restart it;
every event the UI server acknowledged is applied by the worker exactly once, and the
page converges to the last state. One stack for the module; the table is printed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dongyu.e2e.setup import run_settings
from dongyu.stack.faults import FaultRow, markdown, run_fault, state_survives_kill
from dongyu.stack.local import LocalStack

ROWS: list[FaultRow] = []


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    run = run_settings("")
    local = LocalStack(run.infra, ports=run.ports, worker_id="fault_worker", timeout_s=60)
    local.start()
    try:
        yield local
    finally:
        local.stop(stop_infra=True)
        if ROWS:
            report = (
                Path(os.environ.get("DONGYU_TEST_ARTIFACTS", "out/test-artifacts"))
                / "fault-matrix.md"
            )
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(markdown(ROWS) + "\n")
            print("\n" + markdown(ROWS))
        shutil.rmtree(run.infra.state_dir, ignore_errors=True)


@pytest.mark.parametrize("target", ["worker", "mbr", "ui-server", "mosquitto", "synapse"])
def test_kill_9_and_restart(stack: LocalStack, target: str) -> None:
    row = run_fault(stack, target, events=30, interval_s=0.05, down_s=1.0, timeout_s=90)
    ROWS.append(row)
    assert row.acknowledged > 0, row
    assert row.lost == (), f"acknowledged but never applied: {row.lost}\n{row.detail}"
    assert row.duplicates == 0, row
    assert row.applied == row.acknowledged, row
    assert row.converged, f"the page did not converge to the last acknowledged colour: {row}"
    if target in ("ui-server", "worker"):
        before, after = state_survives_kill(stack, target)
        assert before is not None and after == before, (
            f"{target} lost its table: {before} -> {after}"
        )
