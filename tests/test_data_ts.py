"""The .ts parser and the built-in data sets, on the real archive files."""

import numpy as np
import pytest
from elman.data.datasets import load_dataset
from elman.data.ts_datasets import archive_dir
from elman.data.ts_format import read_ts

from elman.errors import DataError


def _raw_lines(path):
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    return [line for line in lines[start:] if line.strip()]


def test_basicmotions_files():
    d = archive_dir("BasicMotions")
    train = read_ts(d / "BasicMotions_TRAIN.ts")
    test = read_ts(d / "BasicMotions_TEST.ts")
    assert train.class_labels == ("Standing", "Running", "Walking", "Badminton")
    assert len(train.series) == 40 and len(test.series) == 40
    assert train.channels == 6 and set(train.lengths) == {100} and set(test.lengths) == {100}
    assert sorted(set(train.labels)) == sorted(train.class_labels)
    assert [train.labels.count(c) for c in train.class_labels] == [10, 10, 10, 10]
    # the values are exactly the text of the file: first and last number of line 1
    first = _raw_lines(d / "BasicMotions_TRAIN.ts")[0]
    channels = first.split(":")
    assert train.series[0][0, 0] == float(channels[0].split(",")[0])
    assert train.series[0][5, -1] == float(channels[5].split(",")[-1])
    assert train.labels[0] == channels[-1]


def test_univariate_and_unequal_length_files():
    gp = read_ts(archive_dir("GunPoint") / "GunPoint_TEST.ts")
    assert len(gp.series) == 150 and gp.channels == 1 and set(gp.lengths) == {150}
    assert set(gp.labels) == {"1", "2"}
    pick = read_ts(archive_dir("PickupGestureWiimoteZ") / "PickupGestureWiimoteZ_TRAIN.ts")
    assert len(pick.series) == 50 and len(set(pick.lengths)) > 1
    data = load_dataset("sensor:pickupgesturewiimotez")
    assert data.lengths_train.tolist() == pick.lengths
    # real samples first (normalized with the stored statistics), zeros after each end
    for s, row, n in zip(pick.series, data.x_train, data.lengths_train, strict=True):
        expected = ((s[0] - data.mean[0]) / data.std[0]).astype(np.float32)
        np.testing.assert_array_equal(row[:n, 0], expected)
        assert not row[n:].any()


def test_builtin_datasets_are_normalized_with_train_statistics():
    d = load_dataset("sensor:basicmotions")
    assert d.x_train.shape == (40, 100, 6) and d.x_test.shape == (40, 100, 6)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    assert d.classes == ["Standing", "Running", "Walking", "Badminton"]
    np.testing.assert_allclose(d.x_train.mean(axis=(0, 1)), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=(0, 1)), 1, atol=1e-5)
    assert np.bincount(d.y_test).tolist() == [10, 10, 10, 10]
    pick = load_dataset("sensor:PickupGestureWiimoteZ")
    assert pick.x_train.shape == (50, 361, 1) and len(pick.classes) == 10
    assert pick.spec()["padding"].startswith("end, with zeros")
    assert pick.spec()["lengths"] == {"min": 29, "max": 361, "median": 131.0}
    # the statistics are those of the real samples only, not of the padding
    real = np.concatenate([s[0] for s in read_ts(
        archive_dir("PickupGestureWiimoteZ") / "PickupGestureWiimoteZ_TRAIN.ts").series])
    np.testing.assert_allclose(pick.mean, [real.mean()], rtol=1e-12)
    np.testing.assert_allclose(pick.std, [real.std()], rtol=1e-12)


def test_missing_value_inside_a_series_is_an_error(tmp_path):
    p = tmp_path / "bad.ts"
    p.write_text("@problemName x\n@classLabel true a b\n@data\n1,2,3:a\n1,?,3:b\n")
    with pytest.raises(DataError, match=r"bad.ts:5: channel 0 has a missing value"):
        read_ts(p)


def test_trailing_missing_values_are_padding_and_channels_must_agree(tmp_path):
    p = tmp_path / "pad.ts"
    p.write_text("@classLabel true a b\n@data\n1,2,?,?:a\n1,2,3,4:b\n")
    data = read_ts(p)
    assert data.lengths == [2, 4]
    q = tmp_path / "ragged.ts"
    q.write_text("@classLabel true a\n@data\n1,2:1,2,3:a\n")
    with pytest.raises(DataError, match="channels have different lengths"):
        read_ts(q)


def test_undeclared_label_and_non_numbers_are_errors(tmp_path):
    p = tmp_path / "label.ts"
    p.write_text("@classLabel true a b\n@data\n1,2:c\n")
    with pytest.raises(DataError, match="class label 'c' not declared"):
        read_ts(p)
    q = tmp_path / "num.ts"
    q.write_text("@classLabel true a\n@data\n1,x:a\n")
    with pytest.raises(DataError, match="'x' is not a number"):
        read_ts(q)
