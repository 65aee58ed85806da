"""`elman codegen RUN_DIR`: files, options, errors (through Typer's CliRunner)."""

import numpy as np
import pytest
from elman.firmware_codegen.generate import generate_c
from elman.firmware_codegen.host import run_host_c
from elman.quantize.reader import read_ir
from elman.quantize.testing import random_step_tflite
from elman.runtime.simulator import Simulator
from typer.testing import CliRunner

from elman.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory holding a real converted int8 step model (random weights)."""
    path = tmp_path_factory.mktemp("codegen_run")
    (path / "model_int8.tflite").write_bytes(random_step_tflite(3, 12, 4, seed=4))
    return path


def _codegen(*args):
    return runner.invoke(app, ["codegen", *map(str, args)])


def test_codegen_writes_the_c_of_the_tflite(run_dir):
    result = _codegen(run_dir, "--prefix", "gesture", "--profile", "tflite")
    assert result.exit_code == 0, result.output
    out = run_dir / "c"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["gesture_io.c", "gesture_model.c", "gesture_model.h", "gesture_weights.h"]
    assert result.output.split() == [str(out / n) for n in names]
    ir = read_ir(run_dir / "model_int8.tflite")
    expected = generate_c(ir, prefix="gesture", profile="tflite")
    for name in names:
        assert (out / name).read_text() == expected[name]
    assert ir.source_sha256 in (out / "gesture_model.h").read_text()


def test_same_input_same_bytes_and_prefixes_share_a_folder(run_dir, tmp_path):
    assert _codegen(run_dir, "--out", tmp_path / "a").exit_code == 0
    assert _codegen(run_dir, "--out", tmp_path / "a", "--prefix", "other").exit_code == 0
    assert _codegen(run_dir, "--out", tmp_path / "b").exit_code == 0
    a = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    b = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    others = {"other_io.c", "other_model.c", "other_model.h", "other_weights.h"}
    assert set(a) == set(b) | others and len(b) == 4
    assert all(a[name] == b[name] for name in b)


def test_example_flag_writes_a_self_check(run_dir, tmp_path):
    result = _codegen(run_dir, "--out", tmp_path, "--prefix", "demo", "--example")
    assert result.exit_code == 0, result.output
    assert "int main(void)" in (tmp_path / "demo_example.c").read_text()


def test_example_flag_prints_how_to_build_and_run(run_dir, tmp_path):
    """The printed self-check command, pasted into a shell, builds and runs the check."""
    import subprocess

    out = tmp_path / "c d"  # a path that needs quoting
    result = _codegen(run_dir, "--out", out, "--prefix", "demo", "--example")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "how to use them:" in lines
    command = next(line.strip() for line in lines if line.strip().startswith("cc ")
                   and "demo_example.c" in line)
    done = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "demo: ok (0 mismatching values)" in done.stdout
    assert any("_model.h" in line and "macros" in line for line in lines)


@pytest.mark.parametrize("prefix", ["3d", "int", "a-b", "x_"])
def test_bad_prefix_is_one_clear_error_and_no_files(run_dir, tmp_path, prefix):
    target = tmp_path / "out"
    result = _codegen(run_dir, "--out", target, "--prefix", prefix)
    assert result.exit_code == 1
    assert result.output.startswith("error: C prefix")
    assert "Traceback" not in result.output
    assert not target.exists()


def test_bad_profile_and_missing_model_are_clear_errors(run_dir, tmp_path):
    result = _codegen(run_dir, "--out", tmp_path / "x", "--profile", "cmsis")
    assert result.exit_code == 1 and "unknown profile 'cmsis'" in result.output
    assert not (tmp_path / "x").exists()
    empty = tmp_path / "empty_run"
    empty.mkdir()
    result = _codegen(empty)
    assert result.exit_code == 1
    assert "model_int8.tflite is missing" in result.output
    assert list(empty.iterdir()) == []


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_c_of_a_converted_model_is_bit_exact(run_dir, profile):
    ir = read_ir(run_dir / "model_int8.tflite")
    x_q = np.random.default_rng(1).integers(-128, 128, size=(4, 20, ir.input_dim),
                                            dtype=np.int8)
    c = run_host_c(ir, x_q, profile=profile)
    sim = Simulator(ir, profile).run(x_q)
    np.testing.assert_array_equal(c.h, sim.h)
    np.testing.assert_array_equal(c.y, sim.y)
