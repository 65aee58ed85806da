"""Bad input to `elman train`: one clear error, exit 1, nothing left in the run directory."""

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from elman.cli import app


def _train(spec, run):
    return CliRunner().invoke(app, ["train", "--data", spec, str(run), "--no-progress"])


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def _cases(tmp):
    x = np.zeros((6, 5, 2))
    y = np.arange(6) % 2
    nan = x.copy()
    nan[2, 3, 1] = np.nan
    inf = x.copy()
    inf[0, 0, 0] = np.inf
    (tmp / "empty.txt").write_text("  \n")
    (tmp / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    (tmp / "empty.npz").write_bytes(b"")
    return {
        "missing text": ("text:" + str(tmp / "nope.txt"), "nope.txt: no such file"),
        "missing npz": ("npz:" + str(tmp / "nope.npz"), "nope.npz: no such file"),
        "empty text": ("text:" + str(tmp / "empty.txt"), "empty text"),
        "empty npz": ("npz:" + str(tmp / "empty.npz"), "not a readable .npz"),
        "non-utf8": ("text:" + str(tmp / "latin1.txt"), r"not UTF-8 text \(invalid byte 0xe9"),
        "nan": (
            _npz(tmp / "nan.npz", x=nan, y=y),
            r"x contains NaN or inf \(first at \[2, 3, 1\]\)",
        ),
        "inf": (_npz(tmp / "inf.npz", x=inf, y=y), "x contains NaN or inf"),
        "mismatch": (_npz(tmp / "mm.npz", x=x, y=y[:5]), "x has 6 sequences but y has 5 labels"),
        "T=0": (_npz(tmp / "t0.npz", x=np.zeros((6, 0, 2)), y=y), "x has an empty dimension"),
        "no y": (_npz(tmp / "noy.npz", x=x), "array 'y' missing"),
        "float labels": (_npz(tmp / "fy.npz", x=x, y=y + 0.5), "integer class labels"),
        "unknown sensor": ("sensor:nosuch", "unknown built-in data set 'sensor:nosuch'"),
        "unknown kind": ("audio:x", "unknown data kind 'audio'"),
        "no kind": ("basicmotions", "must look like KIND:NAME"),
    }


CASES = [
    "missing text", "missing npz", "empty text", "empty npz", "non-utf8", "nan", "inf",
    "mismatch", "T=0", "no y", "float labels", "unknown sensor", "unknown kind", "no kind",
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_clear_error(tmp_path, case):
    spec, message = _cases(tmp_path)[case]
    run = tmp_path / "run"
    result = _train(spec, run)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not run.exists()


def test_bad_option_leaves_existing_run_dir_untouched(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("x")
    result = CliRunner().invoke(
        app, ["train", "--data", "sensor:basicmotions", str(run), "--units", "0"]
    )
    assert result.exit_code == 1
    assert result.output.strip() == "error: --units must be >= 1, got 0"
    assert sorted(p.name for p in run.iterdir()) == ["keep.txt"]


FLOAT_OPTIONS = ["--lr", "--clip", "--minutes", "--recurrent-scale", "--weight-decay", "--noise"]


@pytest.mark.parametrize("option", FLOAT_OPTIONS)
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_float_options_reject_nan_and_inf(tmp_path, option, value):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--data", "sensor:basicmotions", str(run),
                                      option, value, "--no-progress"])
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"error: {option} must be a finite number, got {value}"
    assert not run.exists()


def test_run_rejects_a_nan_learning_rate(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--data", "sensor:basicmotions", str(run),
                                      "--lr", "nan", "--quiet"])
    assert result.exit_code == 1, result.output
    assert "error: --lr must be a finite number, got nan" in result.output
    assert not (run / "model.keras").exists()


@pytest.mark.parametrize("args, message", [
    (["--max-length", "0"], "--max-length must be >= 1, got 0"),
    (["--data", "text:fortunes", "--max-length", "5"], "--max-length applies to sequences"),
])
def test_max_length_option_errors(tmp_path, args, message):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(run), "--no-progress", *args])
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


def test_far_longer_sequence_is_named_by_train_and_run_and_max_length_cuts_it(tmp_path):
    from elman.data.ts_datasets import archive_dir
    from elman.data.ts_format import read_ts

    ts = read_ts(archive_dir("BasicMotions") / "BasicMotions_TRAIN.ts")
    x = np.zeros((40, 1500, 6))
    x[:, :100] = np.stack([s.T for s in ts.series])
    x[:, 100:] = np.nan  # the end of each sequence...
    x[9] = np.tile(x[9, :100], (15, 1))  # ...but sequence 9 is 1,500 steps long
    np.savez(tmp_path / "long.npz", x=x, y=np.array(ts.labels))
    spec = f"npz:{tmp_path / 'long.npz'}"
    message = "sequence x[9] has 1,500 steps, more than 10x the median length 100"
    for command in (["train", "--no-progress"], ["run", "--quiet"]):
        run = tmp_path / command[0]
        result = CliRunner().invoke(app, [*command, "--data", spec, str(run)])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "--max-length N" in result.output and not run.exists()
    result = CliRunner().invoke(app, ["run", "--data", spec, str(tmp_path / "r"),
                                      "--max-length", "0", "--quiet"])
    assert result.output.strip() == "error: --max-length must be >= 1, got 0"
    run = tmp_path / "cut"
    result = CliRunner().invoke(app, ["train", "--data", spec, str(run), "--max-length", "120",
                                      "--epochs", "1", "--units", "4", "--no-progress",
                                      "--no-diagnostics"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "data_spec.json").read_text())
    assert saved["max_length"] == 120 and saved["input"]["timesteps"] == 120
    assert saved["lengths"]["cut_to_max_length"] == 1
