"""``dongyu patch apply|check`` and ``dongyu --help`` (in-process, and once as a real process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dongyu import programs
from dongyu.cli.main import main
from dongyu.core.snapshot import snapshot_bytes
from dongyu.core.table import ModelTable
from dongyu.patch.engine import PatchEngine

ROOT = Path(__file__).resolve().parents[2]


def _add(model_id: int, k: str, t: str, v: Any) -> dict[str, Any]:
    return {"op": "add_label", "model_id": model_id, "p": 0, "r": 0, "c": 0, "k": k, "t": t, "v": v}


def _write(tmp_path: Path, name: str, records: list[Any], op_id: str | None = None) -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"version": "mt.v0", "op_id": op_id or name, "records": records}))
    return str(path)


def _expected(*patches: tuple[list[Any], str], create: bool = False) -> Any:
    table = ModelTable()
    engine = PatchEngine(table)
    for records, op_id in patches:
        engine.apply(
            {"version": "mt.v0", "op_id": op_id, "records": records},
            trusted=True,
            allow_create_model=create,
        )
    return json.loads(snapshot_bytes(table))


GOOD = [_add(0, "a", "str", "x"), _add(0, "n", "json", {"b": [1, 2.5]})]


def test_apply_prints_the_snapshot_and_result_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f1 = _write(tmp_path, "one.json", GOOD)
    f2 = _write(tmp_path, "two.json", [_add(0, "a", "str", "y")])
    code = main(["patch", "apply", f1, f2])
    out, err = capsys.readouterr()
    assert code == 0
    assert json.loads(out) == _expected((GOOD, "1"), ([_add(0, "a", "str", "y")], "2"))
    lines = err.strip().splitlines()
    assert lines == [
        f"{f1}: op_id=one.json applied=2 rejected=0",
        f"{f2}: op_id=two.json applied=1 rejected=0",
    ]


def test_apply_output_is_canonical_bytes(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    f1 = _write(tmp_path, "one.json", GOOD)
    assert main(["patch", "apply", f1]) == 0
    out, _ = capsysbinary.readouterr()
    table = ModelTable()
    PatchEngine(table).apply({"version": "mt.v0", "op_id": "x", "records": GOOD})
    assert out == snapshot_bytes(table) + b"\n"


def test_apply_with_a_rejected_record_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f1 = _write(
        tmp_path, "bad.json", [_add(0, "a", "str", "x"), _add(9, "b", "str", "y"), {"op": "nope"}]
    )
    code = main(["patch", "apply", f1])
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out) == _expected(([_add(0, "a", "str", "x")], "x"))
    assert f"{f1}: op_id=bad.json applied=1 rejected=2 reason=model_not_found:" in err
    assert "  record 1 (add_label): model_not_found:" in err
    assert "  record 2 (nope): unknown_op:" in err


def test_allow_create_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [
        {"op": "create_model", "id": 7, "name": "seven", "type": "ui"},
        _add(-4, "k", "int", 1),
    ]
    f1 = _write(tmp_path, "c.json", records)
    assert main(["patch", "apply", f1]) == 1
    capsys.readouterr()
    assert main(["patch", "apply", "--allow-create-model", f1]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out) == _expected((records, "c"), create=True)
    assert json.loads(out)["models"]["-4"]["name"] == "system_model_-4"


def test_untrusted_refuses_function_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = programs.load("remote_worker")
    path = tmp_path / "rw.json"
    path.write_text(json.dumps(program))
    assert main(["patch", "apply", "--allow-create-model", str(path)]) == 0
    trusted_out, _ = capsys.readouterr()
    assert (
        "process_mqtt_message"
        in json.loads(trusted_out)["models"]["-10"]["cells"]["3,0,0"]["labels"]
    )
    assert main(["patch", "apply", "--allow-create-model", "--untrusted", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "untrusted_function:" in err
    assert (
        "-10" not in json.loads(out)["models"]
        or "3,0,0" not in json.loads(out)["models"]["-10"]["cells"]
    )


def test_missing_file_exits_2_without_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f1 = _write(tmp_path, "one.json", GOOD)
    code = main(["patch", "apply", f1, str(tmp_path / "missing.json")])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "missing.json: unreadable" in err


@pytest.mark.parametrize(
    "text", ["not json", '{"version": "mt.v0", "op_id": "x", "records": [NaN]}', ""]
)
def test_non_json_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert main(["patch", "apply", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "unreadable" in err


def test_json_that_is_no_patch_is_refused_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "v.json"
    path.write_text('{"version": "mt.v9", "op_id": "x", "records": []}')
    f2 = _write(tmp_path, "good.json", GOOD)
    assert main(["patch", "apply", str(path), f2]) == 1
    out, err = capsys.readouterr()
    assert "refused: invalid_patch:" in err
    assert json.loads(out) == _expected((GOOD, "g"))  # the later file still applied


def test_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write(tmp_path, "good.json", GOOD)
    bad = _write(tmp_path, "bad.json", [_add(5, "a", "str", "x")])
    nonjson = tmp_path / "nj.json"
    nonjson.write_text("{")
    assert main(["patch", "check", good]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{good}: op_id=good.json applied=2 rejected=0"
    assert err == ""
    assert main(["patch", "check", good, bad]) == 1
    out, _ = capsys.readouterr()
    assert "model_not_found" in out and '"models"' not in out
    assert main(["patch", "check", "--allow-create-model", bad]) == 0
    capsys.readouterr()
    assert main(["patch", "check", str(nonjson)]) == 2
    assert main(["patch", "check", str(tmp_path / "nope.json")]) == 2


def test_stdin_dash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    data = json.dumps({"version": "mt.v0", "op_id": "s", "records": GOOD}).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["patch", "apply", "-"]) == 0
    out, _ = capsys.readouterr()
    assert json.loads(out) == _expected((GOOD, "s"))


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "patch" in out and "apply or check mt.v0 patch files" in out
    with pytest.raises(SystemExit):
        main(["patch", "apply", "--help"])
    out = capsys.readouterr().out
    for word in ("--allow-create-model", "--untrusted", "Exit status", "stdout", "stderr"):
        assert word in out
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2


def test_console_script_runs(tmp_path: Path) -> None:
    script = ROOT / ".venv" / "bin" / "dongyu"
    assert script.exists(), script
    f1 = _write(tmp_path, "one.json", GOOD)
    done = subprocess.run(
        [str(script), "patch", "apply", f1], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == _expected((GOOD, "x"))
    assert b"applied=2 rejected=0" in done.stderr
    helped = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert helped.returncode == 0 and "patch" in helped.stdout
