"""Notebooks: stored without outputs, one parameters cell each, and each runs headlessly
under papermill (real servers, real browser) with its assertions; 05_e2e's recorded
results are read back and checked."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import pytest
import scrapbook as sb

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))
EXPECTED = ["00_infra", "01_modeltable", "02_ui_server", "03_mbr_bus", "04_k8s_worker", "05_e2e"]


def test_the_walkthrough_notebooks_exist() -> None:
    present = {p.stem for p in ALL}
    missing = [name for name in EXPECTED if name not in present]
    assert missing == [], missing


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_outputs_are_stripped(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert dirty == [], f"{path.name}: cells {dirty} keep outputs; strip them before committing"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_has_one_parameters_cell_and_explanations(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assert nb.cells[0].cell_type == "markdown", "each notebook starts by saying what it shows"
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 3


def _run(name: str, tmp_path: Path, **parameters: object) -> Path:
    out = tmp_path / name
    executed = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(executed),
        parameters={"output_dir": str(out), **parameters},
        progress_bar=False,
        cwd=str(tmp_path),
    )
    return executed


@pytest.mark.notebook
def test_modeltable_walkthrough_runs(tmp_path: Path) -> None:
    _run("01_modeltable", tmp_path, n_labels=200)
    summary = json.loads((tmp_path / "01_modeltable" / "01_modeltable.json").read_text())
    # 3 labels of step 2, 3 kept by cell_clear in step 4, one per bulk record in step 6
    assert summary["labels"] == 6 + 200
    assert summary["reply_bg_color"] == "#FF00FF"
    assert summary["bad_inputs_refused"] == 4


@pytest.mark.notebook
@pytest.mark.parametrize("name", ["00_infra", "02_ui_server", "03_mbr_bus", "04_k8s_worker"])
def test_walkthrough_runs(name: str, tmp_path: Path) -> None:
    executed = _run(name, tmp_path)
    nb = nbformat.read(executed, as_version=4)
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert errors == []


@pytest.mark.notebook
@pytest.mark.parametrize("mode", ["local", "k8s"])
def test_e2e_records_a_passing_verdict(mode: str, tmp_path: Path) -> None:
    executed = _run("05_e2e", tmp_path, worker_mode=mode, rounds=2)
    scraps = sb.read_notebook(str(executed)).scraps
    assert scraps["verdict"].data is True
    assert scraps["worker_mode"].data == mode
    assert scraps["background"].data == scraps["expected_background"].data == "rgb(255, 0, 255)"
    worker = scraps["worker_name"].data
    if mode == "local":
        assert worker == "e2e_worker_1"
    else:
        assert worker.startswith("remote-worker-"), worker  # the pod's name is its WORKER_ID
    assert scraps["status"].data == f"{worker}: #FF00FF"
    assert scraps["hops"].data == [
        "ui_server.received",
        "mbr.received",
        "mbr.to_mqtt",
        "worker.received",
        "worker.reply",
        "mbr.to_matrix",
        "ui_server.applied",
    ]
    assert len(scraps["round_trip_ms"].data) == 2
    for artefact in ("screenshot.png", "timeline.png", "results.json"):
        assert (tmp_path / "05_e2e" / artefact).stat().st_size > 0, artefact
    nb = nbformat.read(executed, as_version=4)
    verdict_cell = next(
        c for c in nb.cells if c.cell_type == "code" and "verdict_display" in c.source
    )
    shown = "".join(o.get("data", {}).get("text/markdown", "") for o in verdict_cell.outputs)
    assert shown.startswith("## PASS"), shown


@pytest.mark.notebook
def test_e2e_refuses_an_unknown_worker_mode(tmp_path: Path) -> None:
    """A wrong worker_mode fails the run (the parameter is checked before anything starts)."""
    with pytest.raises(papermill.PapermillExecutionError):
        _run("05_e2e", tmp_path, worker_mode="cloud")
