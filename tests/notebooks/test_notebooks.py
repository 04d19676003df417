"""Notebooks: stored without outputs, and each runs headlessly under papermill."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert any(p.name == "01_modeltable.ipynb" for p in ALL)


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
def test_has_one_parameters_cell(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"


@pytest.mark.notebook
def test_modeltable_walkthrough_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    papermill.execute_notebook(
        str(NOTEBOOKS / "01_modeltable.ipynb"),
        str(tmp_path / "01_modeltable.ipynb"),
        parameters={"output_dir": str(out), "n_labels": 200},
        progress_bar=False,
    )
    summary = json.loads((out / "01_modeltable.json").read_text())
    # 3 labels of step 2, 3 kept by cell_clear in step 4, one per bulk record in step 6
    assert summary["labels"] == 6 + 200
    assert summary["reply_bg_color"] == "#FF00FF"
    assert summary["bad_inputs_refused"] == 4
