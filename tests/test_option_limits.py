"""Options and inputs that used to end in tracebacks: non-finite floats, huge sizes,
a file that is not a Keras model (issue 12)."""

import shutil

import numpy as np
import pytest
from elman.train.config import TrainConfig
from elman.train.limits import check_sizes, training_bytes
from typer.testing import CliRunner

from elman import rundir
from elman.cli import app
from elman.errors import ElmanError


def _one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [s for s in result.output.splitlines() if s.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize(("command", "option", "value"), [
    ("train", "--recurrent-scale", "nan"),
    ("train", "--lr", "nan"),
    ("train", "--lr", "inf"),
    ("train", "--clip", "inf"),
    ("train", "--minutes", "nan"),
    ("train", "--weight-decay", "-inf"),
    ("train", "--noise", "inf"),
    ("quantize", "--input-percentile", "nan"),
    ("run", "--lr", "inf"),
    ("run", "--clip", "nan"),
])
def test_non_finite_float_options_are_refused(tmp_path, command, option, value):
    result = CliRunner().invoke(app, [command, str(tmp_path / "run"), option, value])
    line = _one_error_line(result)
    assert line == f"error: {option} must be a finite number, got {float(value)}"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field", ["recurrent_scale", "lr", "clip", "weight_decay", "noise"])
def test_train_config_refuses_non_finite_values(field):
    for value in (float("nan"), float("inf")):
        with pytest.raises(ElmanError, match=f"--{field.replace('_', '-')} must be a finite"):
            TrainConfig(**{field: value}).resolved("classification")


def test_units_beyond_a_tflite_file_are_refused_before_training(tmp_path):
    result = CliRunner().invoke(app, ["train", str(tmp_path / "run"), "--units", "100000",
                                      "--no-progress"])
    line = _one_error_line(result)
    assert "--units 100000 makes an int8 model of 10.0 GB" in line
    assert "more than a .tflite file can hold" in line
    assert not (tmp_path / "run" / rundir.MODEL_KERAS).exists()


def test_training_memory_is_bounded_by_what_is_available():
    need = training_bytes(4096, 6, 4, batch=32, steps=100)
    params = 4096 * (6 + 4096 + 1) + 4 * (4096 + 1)
    assert need == 16 * params + 4 * 32 * 100 * (6 + 3 * 4096 + 3 * 4)
    check_sizes(4096, 6, 4, batch=32, steps=100, available=need)  # just fits
    with pytest.raises(ElmanError, match=r"--units 4096 with --batch 32 and 100-step windows "
                                         r"needs about 0\.4 GB .* but 0\.1 GB is available"):
        check_sizes(4096, 6, 4, batch=32, steps=100, available=100_000_000)
    check_sizes(4096, 6, 4, batch=32, steps=100, available=None)  # unknown: format bound only


def test_random_bytes_as_model_keras_are_named(bm_run, tmp_path):
    """Keras said "File not found" for a file that exists (issue 12)."""
    run = tmp_path / "run"
    shutil.copytree(bm_run, run, ignore=shutil.ignore_patterns("c", "verify_report.json"))
    (run / rundir.MODEL_KERAS).write_bytes(np.random.default_rng(0).bytes(5000))
    (run / "provenance.json").unlink()  # no ledger: the file reaches Keras's own loader
    runner = CliRunner()
    for args in (["quantize", str(run), "--no-progress"],
                 ["verify", str(run), "--limit", "1", "--no-progress"]):
        line = _one_error_line(runner.invoke(app, args))
        assert "model.keras is not a Keras model: a .keras file is a zip archive" in line
        assert "not found" not in line
