"""Shapes elman does not ship, each through `elman run` (2 epochs) with the real interpreters.

Every case is built from real recordings (UEA/UCR archive files in the aeon wheel):
unequal lengths and > 256 test sequences (JapaneseVowels, 12 channels, 9 classes),
> 1,000 test sequences with T = 5 and uint64 labels far from 0..K-1
(ItalyPowerDemand), 24 classes of one channel with string labels (BasicMotions,
one channel per sequence), 64 channels (ACSF1 cut into frames), T = 2,000
(ACSF1 resampled) and the full ItalyPowerDemand. Each run must end with every
verify pair bit-exact on every sequence, answers read at each sequence's own
last step, and the class names in the generated C.
"""

import json

import numpy as np
import pytest
from elman.data.ts_datasets import archive_dir
from elman.data.ts_format import read_ts
from typer.testing import CliRunner

from elman.cli import app

RUN_ARGS = ["--epochs", "2", "--units", "8", "--quiet", "--cpu", "cortex-m4", "--opt", "O2"]


def _series(name):
    """(train series, train labels, test series, test labels): lists of (T_i, C) arrays."""
    out = []
    for split in ("TRAIN", "TEST"):
        ts = read_ts(archive_dir(name) / f"{name}_{split}.ts")
        out += [[s.T for s in ts.series], ts.labels]
    return out


def _run(tmp_path, spec, *options):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--data", spec, str(run), *RUN_ARGS, *options])
    assert result.exit_code == 0, result.output
    verify = json.loads((run / "verify_report.json").read_text())
    assert verify["ok"] and verify["pairs"]
    for pair in verify["pairs"]:
        assert pair["exact"] and pair["mismatches"] == 0, pair
    return run, verify


def _assert_whole_test_split(run, verify, sequences, lengths=None):
    """verify compared every test sequence (pairs that afford it), with the right lengths."""
    assert verify["data"]["sequences"] == sequences
    spec = json.loads((run / "data_spec.json").read_text())
    assert spec["sizes"]["test"] == sequences
    if lengths is not None:
        assert spec["lengths"]["min"] == min(lengths) and spec["lengths"]["max"] == max(lengths)
    simulator_pairs = [p for p in verify["pairs"] if "Micro" in p["b"] or "LiteRT" in p["b"]]
    assert len(simulator_pairs) == 2  # both real interpreters, both profiles
    quant = json.loads((run / "quant_report.json").read_text())
    assert quant["evaluation"]["sequences"] == sequences
    for f in verify["float_vs_int8"]:
        assert 0.0 <= f["metrics"]["float_accuracy"] <= 1.0


def test_unequal_lengths_and_more_than_256_test_sequences(tmp_path):
    spec = f"ts:{archive_dir('JapaneseVowels') / 'JapaneseVowels_TRAIN.ts'}"
    run, verify = _run(tmp_path, spec)
    test_lengths = [len(s) for s in _series("JapaneseVowels")[2]]
    _assert_whole_test_split(run, verify, 370)
    assert verify["data"]["description"] == "test split, 370 sequences x 7 to 29 steps"
    assert len(set(test_lengths)) > 10 and max(test_lengths) == 29
    # verify compares each sequence's real steps only, in every pair (not its padding)
    units = sum(verify["model"]["layer_units"])
    assert verify["data"]["real_steps"] == sum(test_lengths) < 370 * 29
    for pair in verify["pairs"]:
        used = 370
        if pair["data"].startswith("first "):  # an emulator that affords a prefix
            used = int(pair["data"].split()[1])
        assert pair["compared_hidden"] == sum(test_lengths[:used]) * units, pair
        assert pair["compared"] == sum(test_lengths[:used]) * (units + 9), pair
    header = (run / "c" / "elman_model.h").read_text()
    assert "#define ELMAN_INPUT_DIM 12" in header and "#define ELMAN_OUTPUT_DIM 9" in header


def test_more_than_1000_test_sequences_t5_and_uint64_labels(tmp_path):
    xs, ys, xt, yt = _series("ItalyPowerDemand")
    big = {"1": np.uint64(2**64 - 3), "2": np.uint64(7)}
    np.savez(tmp_path / "italy.npz",
             x=np.stack([s[-5:, 0] for s in xs]), y=np.array([big[v] for v in ys]),
             x_test=np.stack([s[-5:, 0] for s in xt]), y_test=np.array([big[v] for v in yt]))
    run, verify = _run(tmp_path, f"npz:{tmp_path / 'italy.npz'}")
    _assert_whole_test_split(run, verify, 1029)
    assert "1029 sequences x 5 steps" in verify["data"]["description"]
    spec = json.loads((run / "data_spec.json").read_text())
    assert spec["classes"] == ["7", str(2**64 - 3)] and spec["input"]["channels"] == 1
    assert f'"{2**64 - 3}"' in (run / "c" / "elman_model.c").read_text()


def test_24_classes_one_channel_string_labels(tmp_path):
    xs, ys, xt, yt = _series("BasicMotions")

    def split(series, labels):
        x = np.stack([s[:, c] for s in series for c in range(6)])
        y = np.array([f"{label} / channel {c}" for label in labels for c in range(6)])
        return x, y

    x, y = split(xs, ys)
    x_test, y_test = split(xt, yt)
    np.savez(tmp_path / "bm24.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    run, verify = _run(tmp_path, f"npz:{tmp_path / 'bm24.npz'}")
    _assert_whole_test_split(run, verify, 240)
    spec = json.loads((run / "data_spec.json").read_text())
    assert len(spec["classes"]) == 24 and spec["classes"][0] == "Badminton / channel 0"
    io = (run / "c" / "elman_model.c").read_text()
    assert all(f'"{name}"' in io for name in spec["classes"])
    assert "#define ELMAN_OUTPUT_DIM 24" in (run / "c" / "elman_model.h").read_text()


def _acsf1_frames(tmp_path, channels):
    xs, ys, xt, yt = _series("ACSF1")

    def frames(series):
        flat = np.stack([s[:, 0] for s in series])
        steps = flat.shape[1] // channels
        return flat[:, : steps * channels].reshape(len(series), steps, channels)

    np.savez(tmp_path / "acsf1.npz", x=frames(xs), y=np.array(ys), x_test=frames(xt),
             y_test=np.array(yt))
    return f"npz:{tmp_path / 'acsf1.npz'}"


def test_64_channels(tmp_path):
    run, verify = _run(tmp_path, _acsf1_frames(tmp_path, 64))
    _assert_whole_test_split(run, verify, 100)
    assert "100 sequences x 22 steps" in verify["data"]["description"]
    assert "#define ELMAN_INPUT_DIM 64" in (run / "c" / "elman_model.h").read_text()


@pytest.mark.slow
def test_2000_steps(tmp_path):
    xs, ys, xt, yt = _series("ACSF1")

    def resample(series):
        t = np.linspace(0, len(series[0]) - 1, 2000)
        return np.stack([np.interp(t, np.arange(len(s)), s[:, 0]) for s in series])

    np.savez(tmp_path / "long.npz", x=resample(xs), y=np.array(ys), x_test=resample(xt[:30]),
             y_test=np.array(yt[:30]))
    run, verify = _run(tmp_path, f"npz:{tmp_path / 'long.npz'}", "--stride", "1")
    _assert_whole_test_split(run, verify, 30)
    assert "30 sequences x 2000 steps" in verify["data"]["description"]


@pytest.mark.slow
def test_full_italy_power_demand(tmp_path):
    spec = f"ts:{archive_dir('ItalyPowerDemand') / 'ItalyPowerDemand_TRAIN.ts'}"
    run, verify = _run(tmp_path, spec)
    _assert_whole_test_split(run, verify, 1029)
    assert "1029 sequences x 24 steps" in verify["data"]["description"]


@pytest.mark.slow
def test_pickup_gesture_unequal_lengths_default_training(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", "--data", "sensor:pickupgesturewiimotez", str(run),
                                      "--quiet", "--cpu", "cortex-m4", "--opt", "O2"])
    assert result.exit_code == 0, result.output
    verify = json.loads((run / "verify_report.json").read_text())
    assert all(p["exact"] for p in verify["pairs"])
    # read every 4th sample (median length 136 > 128): 37 to 324 samples -> 10 to 81 steps
    assert "50 sequences x 10 to 81 steps" in verify["data"]["description"]
    assert json.loads((run / "data_spec.json").read_text())["stride"] == 4


def test_csv_unequal_lengths_string_labels_through_run(tmp_path):
    """csv:PATH (one row per sample, a sequence id, a label and a split column) with
    sequences of 40 to 100 steps: verified on each sequence's own length, the label
    names in the C."""
    xs, ys, xt, yt = _series("BasicMotions")
    rng = np.random.default_rng(3)
    rows = ["trial,ax,ay,az,gx,gy,gz,label,split"]
    lengths = {}
    for split, series, labels in (("train", xs, ys), ("test", xt, yt)):
        for n, (s, label) in enumerate(zip(series, labels, strict=True)):
            trial = f"{split}-{n:02d}"
            lengths[trial] = int(rng.integers(40, 101))
            rows += [f"{trial}," + ",".join(f"{v:.6g}" for v in sample) + f",{label},{split}"
                     for sample in s[: lengths[trial]]]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    run, verify = _run(tmp_path, f"csv:{tmp_path / 'log.csv'}")
    test_lengths = [v for k, v in lengths.items() if k.startswith("test")]
    _assert_whole_test_split(run, verify, 40, list(lengths.values()))
    assert verify["data"]["description"] == (f"test split, 40 sequences x {min(test_lengths)} "
                                             f"to {max(test_lengths)} steps")
    spec = json.loads((run / "data_spec.json").read_text())
    assert spec["classes"] == ["Badminton", "Running", "Standing", "Walking"]
    io = (run / "c" / "elman_model.c").read_text()
    assert all(f'"{name}"' in io for name in spec["classes"])
