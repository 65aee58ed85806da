"""Data shapes people have: unequal lengths, one channel, string labels, CSV, user .ts files."""

import json

import numpy as np
import pytest
from elman.data.datasets import load_dataset
from elman.data.spec import load_run_data
from elman.data.ts_datasets import archive_dir
from elman.data.ts_format import read_ts

from elman.errors import DataError
from elman.files import dumps_json


def _basicmotions():
    """Real BasicMotions series (train then test) as (N, 100, 6) and their labels."""
    d = archive_dir("BasicMotions")
    series, labels = [], []
    for split in ("TRAIN", "TEST"):
        ts = read_ts(d / f"BasicMotions_{split}.ts")
        series += [s.T for s in ts.series]
        labels += ts.labels
    return np.stack(series), np.array(labels)


def _reload(tmp_path, data):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    (run / "data_spec.json").write_text(dumps_json(data.spec()))
    return load_run_data(run)


def test_npz_univariate_2d_x_is_one_channel(tmp_path):
    gp = load_dataset("sensor:gunpoint")
    raw = gp.x_train[:, :, 0] * gp.std[0] + gp.mean[0]  # back to (N, T) raw units
    np.savez(tmp_path / "u.npz", x=raw, y=gp.y_train + 1)
    data = load_dataset(f"npz:{tmp_path / 'u.npz'}")
    assert data.channels == 1 and data.x_train.shape[1:] == (150, 1)
    assert data.classes == ["1", "2"]


def test_npz_lengths_and_nan_end_padding_give_true_lengths(tmp_path):
    x, labels = _basicmotions()
    lengths = 30 + (np.arange(len(x)) * 7) % 71  # 30..100 steps
    padded = x.copy()
    for n, length in enumerate(lengths):
        padded[n, length:] = np.nan
    np.savez(tmp_path / "nan.npz", x=padded, y=labels)
    garbage = x.copy()
    garbage[:, -1] = 1e30  # after every end (lengths < 100 here): never read
    garbage[lengths == 100, -1] = x[lengths == 100, -1]
    np.savez(tmp_path / "len.npz", x=garbage, y=labels, lengths=lengths)
    a = load_dataset(f"npz:{tmp_path / 'nan.npz'}")
    b = load_dataset(f"npz:{tmp_path / 'len.npz'}")
    for data in (a, b):
        assert sorted(data.lengths_train.tolist() + data.lengths_test.tolist()) == sorted(
            lengths.tolist())
        assert not data.equal_length and data.spec()["padding"].startswith("end")
        # the statistics are those of the real samples only
        order = np.random.default_rng(0).permutation(len(x))
        train = np.sort(order[: len(x) - 16])
        real = np.concatenate([x[n, : lengths[n]] for n in train])
        np.testing.assert_allclose(data.mean, real.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(data.std, real.std(axis=0), rtol=1e-12)
        for row, n in zip(data.x_train, data.lengths_train, strict=True):
            assert not row[n:].any()  # zeros after the end
    np.testing.assert_array_equal(a.x_train, b.x_train)
    again = _reload(tmp_path, b)
    np.testing.assert_array_equal(again.lengths_test, b.lengths_test)
    np.testing.assert_array_equal(again.x_test, b.x_test)


def test_nan_inside_a_sequence_is_an_error_with_its_position(tmp_path):
    x, labels = _basicmotions()
    x[3, 50:] = np.nan
    x[3, 20, 2] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=labels)
    with pytest.raises(DataError, match=r"x contains NaN or inf \(first at \[3, 20, 2\]\), "
                                        r"inside sequence 3 \(its last real step is 49\)"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")


def test_string_labels_and_classes_array(tmp_path):
    x, labels = _basicmotions()
    np.savez(tmp_path / "s.npz", x=x, y=labels)
    data = load_dataset(f"npz:{tmp_path / 's.npz'}")
    assert data.classes == ["Badminton", "Running", "Standing", "Walking"]  # sorted
    order = ["Standing", "Walking", "Running", "Badminton"]
    np.savez(tmp_path / "c.npz", x=x, y=labels, classes=np.array(order))
    data = load_dataset(f"npz:{tmp_path / 'c.npz'}")
    assert data.classes == order
    assert [order[i] for i in data.y_train[:3]] == [str(v) for v in labels[np.sort(
        np.random.default_rng(0).permutation(80)[:64])][:3]]
    # integer labels index the classes array
    index = np.array([order.index(v) for v in labels])
    np.savez(tmp_path / "i.npz", x=x, y=index, classes=np.array(order))
    same = load_dataset(f"npz:{tmp_path / 'i.npz'}")
    np.testing.assert_array_equal(same.y_train, data.y_train)
    assert _reload(tmp_path, same).classes == order
    np.savez(tmp_path / "bad.npz", x=x, y=index + 1, classes=np.array(order))
    with pytest.raises(DataError, match=r"y\[\d+\] = 4 is outside 0..3"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}")
    np.savez(tmp_path / "unk.npz", x=x, y=labels, classes=np.array(order[:3]))
    with pytest.raises(DataError, match=r"labels \['Badminton'\] are not in 'classes'"):
        load_dataset(f"npz:{tmp_path / 'unk.npz'}")
    obj = np.array(list(labels), dtype=object)
    np.savez(tmp_path / "obj.npz", x=x, y=obj)
    with pytest.raises(DataError, match=r"np.array\(names, dtype=str\)"):
        load_dataset(f"npz:{tmp_path / 'obj.npz'}")


def test_uint64_labels_keep_their_values(tmp_path):
    x, labels = _basicmotions()
    big = np.array([2**64 - 1, 2**63, 7, 2**63 + 5], np.uint64)
    y = big[np.unique(labels, return_inverse=True)[1]]
    np.savez(tmp_path / "u.npz", x=x, y=y)
    data = load_dataset(f"npz:{tmp_path / 'u.npz'}")
    assert data.classes == ["7", str(2**63), str(2**63 + 5), str(2**64 - 1)]
    assert not any(c.startswith("-") for c in data.classes)


def test_float_labels_beyond_exact_integers_are_refused(tmp_path):
    x, _ = _basicmotions()
    np.savez(tmp_path / "f.npz", x=x, y=np.full(len(x), 1e20))
    with pytest.raises(DataError, match="not a whole number below 2\\*\\*53"):
        load_dataset(f"npz:{tmp_path / 'f.npz'}")


def test_huge_finite_value_makes_a_non_finite_std_refused_naming_the_channel(tmp_path):
    x, labels = _basicmotions()
    x[5, 10, 4] = 1e300
    np.savez(tmp_path / "big.npz", x=x, y=labels)
    with pytest.raises(DataError, match=r"channel 4: the training data's mean or standard "
                                        r"deviation is not a finite number \(values up to 1e\+300"):
        load_dataset(f"npz:{tmp_path / 'big.npz'}")


def test_a_far_longer_sequence_is_named_or_cut_with_max_length(tmp_path):
    x, labels = _basicmotions()
    lengths = np.full(len(x), 100)
    long = np.zeros((len(x), 2000, 6))
    long[:, :100] = x
    long[17] = np.tile(x[17], (20, 1))
    lengths[17] = 2000
    np.savez(tmp_path / "long.npz", x=long, y=labels, lengths=lengths)
    spec = f"npz:{tmp_path / 'long.npz'}"
    with pytest.raises(DataError, match=r"sequence x\[17\] has 2,000 steps, more than 10x the "
                                        r"median length 100.*--max-length"):
        load_dataset(spec)
    data = load_dataset(spec, max_length=150)
    assert data.timesteps == 150 and data.spec()["max_length"] == 150
    assert data.spec()["lengths"]["cut_to_max_length"] == 1
    again = _reload(tmp_path, data)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    # the last 150 samples of the long sequence are kept; the others are 100 long
    x_all = np.concatenate([again.x_train, again.x_test])
    lengths_all = np.concatenate([again.lengths_train, again.lengths_test])
    assert sorted(set(lengths_all.tolist())) == [100, 150]
    expected = (long[17, 1850:2000] - data.mean) / data.std
    row = x_all[lengths_all == 150][0]
    np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)


CSV = """trial,ax,ay,activity
a,1.0,2.0,walk
a,1.5,2.5,walk
a,1.25,2.0,walk
b,0.0,0.0,sit
b,0.1,0.0,sit
c,3,4,walk
c,3.5,4.5,walk
c,3.0,4.0,walk
c,2.5,4.0,walk
d,0.2,0.1,sit
d,0.0,0.2,sit
e,2,2,walk
e,2,3,walk
"""


def test_csv_one_row_per_sample(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(CSV.replace("trial", "sequence").replace("activity", "label"))
    data = load_dataset(f"csv:{path}")
    assert data.classes == ["sit", "walk"] and data.channels == 2
    lengths = sorted(data.lengths_train.tolist() + data.lengths_test.tolist())
    assert lengths == [2, 2, 2, 3, 4] and len(data.y_test) == 1
    assert data.spec()["columns"] == {"label": "label", "sequence": "sequence",
                                      "channels": ["ax", "ay"]}
    again = _reload(tmp_path, data)
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_csv_named_columns_and_split_column(tmp_path):
    path = tmp_path / "log.csv"
    rows = CSV.strip().splitlines()
    part = ["part"] + ["test" if r.startswith(("b", "c")) else "train" for r in rows[1:]]
    path.write_text("\n".join(f"{r};{p}" for r, p in zip(rows, part, strict=True))
                    .replace(",", ";") + "\n")
    spec = f"csv:{path}?label=activity&sequence=trial&split=part"
    data = load_dataset(spec)
    assert data.source == spec and len(data.y_test) == 2 and len(data.y_train) == 3
    assert data.lengths_test.tolist() == [2, 4]
    # sequence c: normalized with the training statistics, in file order
    raw = np.array([[3, 4], [3.5, 4.5], [3.0, 4.0], [2.5, 4.0]])
    np.testing.assert_allclose(data.x_test[1], (raw - data.mean) / data.std, rtol=1e-6)
    assert _reload(tmp_path, data).source == spec


@pytest.mark.parametrize("text, query, message", [
    ("seq,ax,label\na,1,x\na,,x\n", "", r"log.csv:3: column 'ax' is empty \(a missing value"),
    ("seq,ax,label\na,1,x\na,zz,x\n", "", r"log.csv:3: column 'ax' is 'zz', not a finite"),
    ("seq,ax,label\na,1,x\na,2,y\n", "", r"sequence 'a' has label 'x' on line 2 and 'y' on line 3"),
    ("seq,ax,activity\na,1,x\n", "", r"no label column \(named one of label, class"),
    ("seq,id,ax,label\na,1,1,x\n", "", r"several columns could be the sequence id \(seq, id\)"),
    ("seq,ax,label\na,1,x\n", "?colour=1", r"unknown option 'colour'"),
    ("seq,ax,label\na,1\n", "", r"log.csv:2: 2 fields, the header has 3"),
    ("", "", r"empty file"),
])
def test_csv_errors_name_line_and_column(tmp_path, text, query, message):
    (tmp_path / "log.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load_dataset(f"csv:{tmp_path / 'log.csv'}{query}")


def test_user_ts_file_with_and_without_a_test_file(tmp_path):
    d = archive_dir("JapaneseVowels")
    data = load_dataset(f"ts:{d / 'JapaneseVowels_TRAIN.ts'}")
    assert len(data.y_train) == 270 and len(data.y_test) == 370 and data.channels == 12
    assert not data.equal_length and data.timesteps == 29
    assert data.spec()["split"] == "JapaneseVowels_TRAIN.ts / JapaneseVowels_TEST.ts"
    single = tmp_path / "vowels.ts"
    single.write_bytes((d / "JapaneseVowels_TEST.ts").read_bytes())
    split = load_dataset(f"ts:{single}")
    assert len(split.y_train) == 296 and len(split.y_test) == 74
    assert _reload(tmp_path, split).source == f"ts:{single}"


TS_HEADER = """@problemName t
@univariate {univariate}
@dimensions {dimensions}
@equalLength {equal}
@seriesLength {length}
@classLabel true a b
@data
1,2,3:4,5,6:a
1,2:3,4:b
"""


@pytest.mark.parametrize("fields, message", [
    ({"dimensions": "six"}, r"@dimensions 'six' is not a whole number"),
    ({"dimensions": "3"}, r"@dimensions 3 but the series have 2 channels"),
    ({"univariate": "true"}, r"@univariate true but the series have 2 channels"),
    ({"equal": "true"}, r"@equalLength true but the series of line 9 has 2 steps and that of "
                        r"line 8 3"),
    ({"equal": "true", "length": "4"}, r"@seriesLength 4 but the series of line 8 has 3 steps"),
    ({"equal": "maybe"}, r"@equalLength 'maybe' is not true or false"),
])
def test_ts_header_is_checked_against_the_data(tmp_path, fields, message):
    values = {"univariate": "false", "dimensions": "2", "equal": "false", "length": "3", **fields}
    (tmp_path / "t.ts").write_text(TS_HEADER.format(**values))
    with pytest.raises(DataError, match="the header disagrees with the data: .*" + message):
        read_ts(tmp_path / "t.ts")


def test_several_header_problems_in_one_error(tmp_path):
    (tmp_path / "t.ts").write_text(TS_HEADER.format(univariate="true", dimensions="six",
                                                    equal="true", length="3"))
    with pytest.raises(DataError) as err:
        read_ts(tmp_path / "t.ts")
    assert str(err.value).count(";") == 3  # dimensions, univariate, equal and series length


def test_spec_with_lengths_round_trips_through_json(tmp_path):
    data = load_dataset("sensor:pickupgesturewiimotez")
    spec = json.loads(dumps_json(data.spec()))
    assert spec["lengths"] == {"min": 29, "max": 361, "median": 131.0}
    again = _reload(tmp_path, data)
    np.testing.assert_array_equal(again.lengths_train, data.lengths_train)


def test_held_out_same_length_subset_for_the_firmware_example(tmp_path):
    from elman.data.held_out import load_held_out

    data = load_dataset("sensor:pickupgesturewiimotez")
    (tmp_path / "data_spec.json").write_text(dumps_json(data.spec()))
    held = load_held_out(tmp_path)
    assert held.lengths.tolist() == data.lengths_test.tolist()
    assert held.inputs.shape[1] == data.lengths_test.max()  # trimmed to the longest
    some = held.same_length(8)
    length = int(some.lengths[0])
    assert (some.lengths == length).all() and some.inputs.shape[1] == length
    values, counts = np.unique(data.lengths_test, return_counts=True)
    assert length == values[counts == counts.max()].max()
    first = np.flatnonzero(data.lengths_test == length)[: len(some.lengths)]
    np.testing.assert_array_equal(some.inputs, data.x_test[first, :length])
    np.testing.assert_array_equal(some.targets, data.y_test[first])
    bm = load_dataset("sensor:basicmotions")
    (tmp_path / "data_spec.json").write_text(dumps_json(bm.spec()))
    np.testing.assert_array_equal(load_held_out(tmp_path).same_length(3).inputs, bm.x_test[:3])
