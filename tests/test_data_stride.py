"""Long sequences read at a stride: every k-th sample, chosen from the training lengths
unless given, recorded in the data spec and applied again by every later stage."""

import json

import numpy as np
import pytest
from elman.data.datasets import load_dataset, load_raw
from elman.data.sequences import auto_stride, strided
from elman.data.spec import load_run_data
from typer.testing import CliRunner

from elman.cli import app
from elman.errors import DataError
from elman.files import dumps_json


@pytest.mark.parametrize("median, stride", [
    (5, 1), (100, 1), (128, 1),  # BasicMotions (100), JapaneseVowels, ItalyPowerDemand
    (129, 4), (136, 4),          # PickupGestureWiimoteZ: median 136 -> 34 steps
    (150, 4), (160, 4), (161, 5), (2000, 50),
])
def test_auto_stride_brings_long_sequences_to_at_most_40_steps(median, stride):
    lengths = np.array([median // 2, median, median, 3 * median])
    assert auto_stride(lengths) == stride
    if stride > 1:
        assert -(-median // stride) <= 40 < -(-median // (stride - 1))


@pytest.mark.parametrize("mode", ["mean", "sample"])
def test_pickup_gesture_is_read_at_a_stride_of_four(tmp_path, mode):
    raw = load_raw("sensor", "pickupgesturewiimotez")
    data = load_dataset("sensor:pickupgesturewiimotez", stride=None, stride_mode=mode)
    assert np.median(raw.lengths_train) == 136
    np.testing.assert_array_equal(data.lengths_train, -(-raw.lengths_train // 4))
    np.testing.assert_array_equal(data.lengths_test, -(-raw.lengths_test // 4))
    assert data.timesteps == 91  # ceil(361 / 4)
    n = 8
    assert raw.lengths_train[n] == 131  # its last group of samples is shorter
    real = raw.x_train[n, : raw.lengths_train[n], 0]
    if mode == "sample":
        steps = real[::4]
    else:  # the mean of each group of 4 samples; the last group: of the samples it has
        steps = np.array([real[j: j + 4].mean() for j in range(0, len(real), 4)])
    np.testing.assert_allclose(data.x_train[n, : data.lengths_train[n], 0],
                               (steps - data.mean[0]) / data.std[0], rtol=1e-5, atol=1e-6)
    assert (data.x_train[n, data.lengths_train[n]:] == 0).all()  # padding stays zero
    spec = json.loads(dumps_json(data.spec()))
    assert spec["stride"] == 4 and "median training length, 136 samples" in spec["stride_rule"]
    assert spec["stride_mode"] == mode
    assert spec["lengths"] == {"min": 8, "max": 91, "median": 33.0}  # both splits
    assert spec["input"]["timesteps"] == 91
    # every later stage reads the data as the model did
    (tmp_path / "data_spec.json").write_text(dumps_json(spec))
    again = load_run_data(tmp_path)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    np.testing.assert_array_equal(again.lengths_test, data.lengths_test)


def test_mean_stride_of_unequal_lengths_by_hand():
    x = np.zeros((2, 7, 2))
    x[0, :, 0] = np.arange(7)
    x[1, :5, 0] = [3, 5, 7, 10, 20]  # 5 real samples, then padding
    x[:, :, 1] = -x[:, :, 0]
    out, lengths = strided(x, np.array([7, 5]), 3, "mean")
    np.testing.assert_array_equal(lengths, [3, 2])
    np.testing.assert_array_equal(out[:, :, 0], [[1, 4, 6], [5, 15, 0]])
    np.testing.assert_array_equal(out[:, :, 1], -out[:, :, 0])
    every, _ = strided(x, np.array([7, 5]), 3, "sample")
    np.testing.assert_array_equal(every[:, :, 0], [[0, 3, 6], [3, 10, 0]])
    with pytest.raises(DataError,
                       match="--stride-mode must be one of mean, sample, stack, got 'max'"):
        strided(x, np.array([7, 5]), 3, "max")


def test_stack_stride_of_unequal_lengths_by_hand():
    """A step is its k samples side by side (sample-major); a sequence's last, shorter group
    repeats its last real sample; the steps after its end stay zero."""
    x = np.zeros((2, 7, 2))
    x[0, :, 0] = np.arange(7)
    x[1, :4, 0] = [3, 5, 7, 10]  # 4 real samples, then padding
    x[:, :, 1] = -x[:, :, 0]
    out, lengths = strided(x, np.array([7, 4]), 3, "stack")
    np.testing.assert_array_equal(lengths, [3, 2])
    assert out.shape == (2, 3, 6)
    np.testing.assert_array_equal(out[0], [[0, 0, 1, -1, 2, -2], [3, -3, 4, -4, 5, -5],
                                           [6, -6, 6, -6, 6, -6]])
    np.testing.assert_array_equal(out[1], [[3, -3, 5, -5, 7, -7], [10, -10, 10, -10, 10, -10],
                                           [0, 0, 0, 0, 0, 0]])


def test_a_data_spec_without_stride_mode_reads_every_kth_sample(tmp_path):
    """Runs trained before stride_mode existed kept every k-th sample: later stages still do."""
    data = load_dataset("sensor:pickupgesturewiimotez", stride=4, stride_mode="sample")
    spec = json.loads(dumps_json(data.spec()))
    del spec["stride_mode"]
    (tmp_path / "data_spec.json").write_text(dumps_json(spec))
    np.testing.assert_array_equal(load_run_data(tmp_path).x_test, data.x_test)
    spec["stride_mode"] = "median"
    (tmp_path / "data_spec.json").write_text(dumps_json(spec))
    with pytest.raises(DataError, match="field 'stride_mode' must be one of mean, sample"):
        load_run_data(tmp_path)


def test_short_sequences_keep_every_sample():
    auto = load_dataset("sensor:basicmotions", stride=None)
    plain = load_dataset("sensor:basicmotions")
    np.testing.assert_array_equal(auto.x_train, plain.x_train)
    assert "stride" not in auto.spec() and auto.timesteps == 100
    two = load_dataset("sensor:basicmotions", stride=2, stride_mode="mean")
    assert two.timesteps == 50 and two.spec()["stride"] == 2 and "stride_rule" not in two.spec()
    # --stride-mode auto with a given stride: 2 x 6 channels, 10 sequences a class: a stack
    auto_two = load_dataset("sensor:basicmotions", stride=2)
    spec = auto_two.spec()
    assert (spec["stride"], spec["stride_mode"], auto_two.channels) == (2, "stack", 12)
    assert spec["stride_rule"].startswith("auto: 2 samples x 6 channel(s) side by side")
    assert "median" not in spec["stride_rule"]  # the stride was given
    three = load_dataset("sensor:basicmotions", stride=3)  # 18 inputs: the mean
    assert (three.spec()["stride_mode"], three.channels) == ("mean", 6)
    assert "a stack of them: 18 inputs" in three.spec()["stride_rule"]


def test_stride_is_refused_where_it_does_not_apply():
    with pytest.raises(DataError, match="--stride must be a positive number of samples, got 0"):
        load_dataset("sensor:basicmotions", stride=0)
    with pytest.raises(DataError, match="--stride applies to sequences, not to text"):
        load_dataset("text:fortunes", stride=2)
    with pytest.raises(DataError, match="--stride applies to one label per sequence"):
        load_dataset("sensor:basicmotions-stream", stride=2)
    streams = load_dataset("sensor:basicmotions-stream", stride=None)
    assert "stride" not in streams.spec()


def test_elman_train_stride_option_and_the_automatic_choice(tmp_path):
    rng = np.random.default_rng(0)
    y = np.arange(20) % 2
    x = rng.normal(size=(20, 300)) + y[:, None]  # median 300 samples: auto stride 8
    np.savez(tmp_path / "long.npz", x=x[:16], y=y[:16], x_test=x[16:], y_test=y[16:])
    options = ["--no-progress", "--units", "4", "--epochs", "1", "--no-diagnostics"]
    for name, extra, stride in (("auto", [], 8), ("given", ["--stride", "3"], 3),
                                ("off", ["--stride", "1"], None)):
        run = tmp_path / name
        result = CliRunner().invoke(app, ["train", "--data", f"npz:{tmp_path / 'long.npz'}",
                                          str(run), *options, *extra])
        assert result.exit_code == 0, result.output
        spec = json.loads((run / "data_spec.json").read_text())
        assert spec.get("stride") == stride
        assert spec.get("stride_mode") == (None if stride is None else "mean")  # the default
        assert spec["input"]["timesteps"] == -(-300 // (stride or 1))
        report = json.loads((run / "train_report.json").read_text())
        assert report["config"]["stride"] == (stride if name == "given" else
                                              (1 if name == "off" else None))
    result = CliRunner().invoke(app, ["train", "--data", f"npz:{tmp_path / 'long.npz'}",
                                      str(tmp_path / "bad"), *options, "--stride", "0"])
    assert result.exit_code != 0 and "--stride must be >= 1, got 0" in result.output


@pytest.mark.parametrize("mode", ["mean", "stack"])
def test_stride_on_many_unequal_sequences_and_classes_matches_a_plain_loop(tmp_path, mode):
    """1,200 sequences of 5 to 2,000 samples, 3 channels, 25 classes with labels far from
    0..K-1, through npz and the automatic stride (median over 128): every step of every
    sequence is the mean of its group of samples (stack: the group side by side, the last
    one filled with its last sample), the lengths ceil(L / k), padding zero."""
    rng = np.random.default_rng(4)
    n = 1200
    lengths = rng.integers(5, 2001, n)
    lengths[[1000, 1001]] = 5, 2000  # the shortest and the longest, in the test split
    x = np.full((n, 2000, 3), np.nan)
    for i, length in enumerate(lengths):
        x[i, :length] = rng.normal(size=(length, 3)) * [1, 10, 100]
    y = 1000 + 7 * (np.arange(n) % 25)
    np.savez(tmp_path / "many.npz", x=x[:1000], y=y[:1000], x_test=x[1000:], y_test=y[1000:])
    data = load_dataset(f"npz:{tmp_path / 'many.npz'}", stride=None, stride_mode=mode)
    k = data.spec()["stride"]
    assert k == int(np.ceil(np.median(lengths[:1000]) / 40)) and k > 1
    assert len(data.classes) == 25 and data.spec()["stride_mode"] == mode
    assert data.channels == (3 * k if mode == "stack" else 3)
    np.testing.assert_array_equal(data.lengths_train, -(-lengths[:1000] // k))
    np.testing.assert_array_equal(data.lengths_test, -(-lengths[1000:] // k))
    for i in [0, 1, *rng.integers(0, 200, 20)]:  # test split rows (the shortest, the longest)
        real = x[1000 + i, : lengths[1000 + i]]
        if mode == "mean":
            want = np.array([real[j: j + k].mean(axis=0) for j in range(0, len(real), k)])
        else:
            filled = np.concatenate([real, np.repeat(real[-1:], -len(real) % k, axis=0)])
            want = filled.reshape(-1, 3 * k)
        got = data.x_test[i, : data.lengths_test[i]]
        np.testing.assert_allclose(got, ((want - data.mean) / data.std).astype(np.float32),
                                   rtol=1e-5, atol=1e-5)
        assert not data.x_test[i, data.lengths_test[i]:].any()


@pytest.mark.parametrize("lengths, channels, smallest, stride, want", [
    ([150] * 4, 1, 25, None, (8, "stack")),    # GunPoint: ceil(150 / 20)
    ([136] * 4, 1, 5, None, (4, "mean")),      # PickupGestureWiimoteZ: 5 a class, ceil(136 / 40)
    ([150] * 4, 1, 10, None, (8, "stack")),    # 10 a class: enough
    ([150] * 4, 1, 9, None, (4, "mean")),
    ([320] * 4, 1, 50, None, (16, "stack")),   # 16 inputs: still a stack
    ([340] * 4, 1, 50, None, (9, "mean")),     # ceil(340 / 20) = 17 inputs: the mean
    ([300] * 4, 2, 50, None, (8, "mean")),     # 2 channels x 15 = 30 inputs: the mean of 8
    ([300] * 4, 64, 50, None, (8, "mean")),
    ([2000] * 4, 1, 50, None, (50, "mean")),
    ([100] * 4, 6, 10, 2, (2, "stack")),       # a given stride: only the mode is chosen
    ([100] * 4, 6, 10, 3, (3, "mean")),
])
def test_auto_stride_mode_stacks_few_narrow_inputs_of_well_filled_classes(
        lengths, channels, smallest, stride, want):
    from elman.data.sequences import auto_stride_mode

    k, mode, why = auto_stride_mode(np.array(lengths), channels, smallest, stride)
    assert (k, mode) == want
    assert why.startswith("auto: ")
    assert ("median" in why) == (stride is None)


@pytest.mark.parametrize("name, stride, mode, steps", [
    ("gunpoint", 8, "stack", 19), ("pickupgesturewiimotez", 4, "mean", 91)])
def test_the_default_stride_mode_on_gunpoint_and_pickup_gesture(name, stride, mode, steps):
    raw = load_raw("sensor", name)
    data = load_dataset(f"sensor:{name}", stride=None)
    spec = data.spec()
    assert (spec["stride"], spec["stride_mode"], data.timesteps) == (stride, mode, steps)
    # --deltas auto: each sample and its first difference where the stack holds both
    assert spec.get("deltas", False) == (mode == "stack")
    assert data.channels == (2 * stride if mode == "stack" else 1)
    if mode == "stack":  # step j: samples 8j .. 8j + 7 and their differences side by side,
        # the last group filled with sample 149 (and its difference)
        got = (data.x_train[3] * data.std + data.mean).reshape(19, 8, 2)
        x = raw.x_train[3, :150, 0]
        d = np.concatenate([[0.0], np.diff(x)])
        for want, channel in ((x, 0), (d, 1)):
            padded = np.concatenate([want, np.repeat(want[-1], 2)])
            np.testing.assert_allclose(got[:, :, channel], padded.reshape(19, 8), rtol=1e-5,
                                       atol=1e-5)
        assert spec["deltas_rule"].startswith("auto: a stack of 8 samples of 1 channel(s)")
    else:
        assert "the rarest class 5 training sequences" in spec["stride_rule"]
        assert "deltas_rule" not in spec


def test_auto_stride_mode_on_many_unequal_sequences_and_on_wide_ones(tmp_path):
    """1,100 sequences of 5 to 2,000 samples, 1 channel, 22 classes of 40-60: a stack of
    ceil(median / 20) samples when that is at most 16, else the mean; 64 channels: the mean."""
    rng = np.random.default_rng(9)
    n = 1100
    lengths = rng.integers(5, 301, n)
    x = np.full((n, 300, 1), np.nan)
    for i, length in enumerate(lengths):
        x[i, :length, 0] = rng.normal(size=length)
    y = np.arange(n) % 22
    np.savez(tmp_path / "narrow.npz", x=x[:1000], y=y[:1000], x_test=x[1000:],
             y_test=y[1000:])
    data = load_dataset(f"npz:{tmp_path / 'narrow.npz'}", stride=None)
    k = int(np.ceil(np.median(lengths[:1000]) / 20))
    assert 1 < k <= 16 and data.spec()["stride_mode"] == "stack"
    # the differences join the stack where both fit in 16 inputs
    deltas = 2 * k <= 16
    assert data.spec().get("deltas", False) == deltas and data.channels == k * (1 + deltas)
    np.testing.assert_array_equal(data.lengths_test, -(-lengths[1000:] // k))
    plain = load_dataset(f"npz:{tmp_path / 'narrow.npz'}", stride=None, deltas="off")
    assert plain.channels == k and "deltas" not in plain.spec()
    wide = np.repeat(x[:, :, :1], 64, axis=2)
    np.savez(tmp_path / "wide.npz", x=wide[:1000], y=y[:1000], x_test=wide[1000:],
             y_test=y[1000:])
    data = load_dataset(f"npz:{tmp_path / 'wide.npz'}", stride=None)
    assert data.spec()["stride_mode"] == "mean" and data.channels == 64
    assert data.spec()["stride"] == int(np.ceil(np.median(lengths[:1000]) / 40))


def test_with_deltas_follows_each_sample_with_its_difference_and_keeps_the_padding_zero():
    from elman.data.sequences import with_deltas

    x = np.zeros((2, 5, 2))
    x[0, :5] = [[1, 10], [3, 7], [2, 7], [6, 0], [6, 1]]
    x[1, :3] = [[-1, 2], [4, 2], [0, 5]]  # 3 real samples, then padding
    got = with_deltas(x, np.array([5, 3]))
    assert got.shape == (2, 5, 4)
    np.testing.assert_array_equal(got[..., :2], x)
    np.testing.assert_array_equal(got[0, :, 2:], [[0, 0], [2, -3], [-1, 0], [4, -7], [0, 1]])
    np.testing.assert_array_equal(got[1, :, 2:], [[0, 0], [5, 0], [-4, 3], [0, 0], [0, 0]])


@pytest.mark.parametrize("lengths, channels, smallest, stride, mode, want", [
    ([150] * 4, 1, 25, None, "auto", True),    # GunPoint: a stack of 8, 16 inputs with them
    ([150] * 4, 1, 9, None, "auto", False),    # too few a class for a stack
    ([136] * 4, 1, 5, None, "auto", False),    # PickupGestureWiimoteZ: the mean
    ([100] * 4, 6, 10, None, "auto", False),   # BasicMotions: no stride
    ([300] * 4, 1, 50, None, "auto", False),   # a stack of 15: 30 inputs with them
    ([160] * 4, 1, 50, None, "auto", True),    # a stack of 8
    ([180] * 4, 1, 50, None, "auto", False),   # a stack of 9: 18 inputs
    ([150] * 4, 1, 25, 1, "auto", False),      # a given stride of 1: no stack
    ([150] * 4, 1, 25, 4, "auto", True),       # a given stride of 4: a stack of 8 inputs
    ([150] * 4, 1, 25, None, "mean", False),   # a given mode other than the stack
    ([150] * 4, 1, 25, 8, "sample", False),
    ([300] * 4, 1, 50, None, "stack", True),   # --stride-mode stack: stride 8 (40 steps)
])
def test_auto_deltas_where_the_stack_holds_each_sample_and_its_difference(
        lengths, channels, smallest, stride, mode, want):
    from elman.data.sequences import auto_deltas

    use, why = auto_deltas(np.array(lengths), channels, smallest, stride, mode)
    assert use == want and why.startswith("auto: ")


def test_deltas_refused_where_they_do_not_apply(tmp_path):
    with pytest.raises(DataError, match="--deltas must be one of auto, on, off, got 'yes'"):
        load_dataset("sensor:basicmotions", deltas="yes")
    with pytest.raises(DataError, match="--deltas applies to sequences, not to text"):
        load_dataset("text:fortunes", deltas="on", max_chars=2000)
    with pytest.raises(DataError, match="--deltas applies to one label per sequence"):
        load_dataset("sensor:basicmotions-stream", deltas="on")
    # auto on per-step labels and on text: nothing added, no error
    assert load_dataset("sensor:basicmotions-stream").channels == 6
    # auto at a given stride of 1 (load_dataset's default): no stack, no differences
    assert load_dataset("sensor:gunpoint").channels == 1
    assert load_dataset("sensor:gunpoint", stride=None).channels == 16
    basic = load_dataset("sensor:basicmotions", deltas="on")
    assert basic.channels == 12 and basic.spec()["deltas"] is True
    assert "deltas_rule" not in basic.spec()  # given, not chosen
