"""Text corpora (real fortunes), data_spec.json round trips and npz splits."""

import json

import numpy as np
from elman.data import text_corpus
from elman.data.datasets import load_dataset
from elman.data.spec import load_run_data

from elman.files import dumps_json


def test_fortunes_split_is_by_quotation_and_deterministic():
    train, val = text_corpus.fortunes_split()
    train_q = set(train.split("%\n")) - {""}
    val_q = set(val.split("%\n")) - {""}
    assert not train_q & val_q
    assert 0.07 < len(val) / (len(train) + len(val)) < 0.13
    assert "\x08" not in train and "\x07" not in train
    assert (train, val) == text_corpus.fortunes_split()


def test_overstrike_and_controls_are_cleaned():
    assert text_corpus.clean_text("_\x08A b\x07c\r\n\td") == "A bc\n\td"


def test_text_spec_round_trip(tmp_path):
    data = load_dataset("text:fortunes", max_chars=5000)
    assert data.task == "language_model" and len(data.train_ids) == 5000
    assert data.train_ids.dtype == np.int32
    (tmp_path / "data_spec.json").write_text(dumps_json(data.spec()))
    again = load_run_data(tmp_path)
    np.testing.assert_array_equal(again.train_ids, data.train_ids)
    np.testing.assert_array_equal(again.val_ids, data.val_ids)
    assert again.vocab == data.vocab
    assert data.decode(data.train_ids[:20]) == text_corpus.fortunes_split()[0][:20]


def test_classification_spec_round_trip_uses_stored_statistics(tmp_path):
    data = load_dataset("sensor:basicmotions")
    spec = data.spec()
    (tmp_path / "data_spec.json").write_text(dumps_json(spec))
    again = load_run_data(tmp_path)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.x_test, data.x_test)
    np.testing.assert_array_equal(again.y_test, data.y_test)
    # the stored numbers are what load_run_data applies
    spec["input"]["normalization"]["mean"] = [
        m + 1.0 for m in spec["input"]["normalization"]["mean"]
    ]
    (tmp_path / "data_spec.json").write_text(json.dumps(spec))
    shifted = load_run_data(tmp_path)
    expected = data.x_train - (1.0 / data.std).astype(np.float32)
    np.testing.assert_allclose(shifted.x_train, expected, atol=1e-5)


def test_npz_without_test_split(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 7, 3))
    y = np.arange(20) % 2 + 5
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert data.x_train.shape == (16, 7, 3) and data.x_test.shape == (4, 7, 3)
    assert data.classes == ["5", "6"] and set(data.y_train.tolist()) <= {0, 1}
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "data_spec.json").write_text(dumps_json(data.spec()))
    np.testing.assert_array_equal(load_run_data(tmp_path / "run").x_test, data.x_test)


def test_changed_source_file_is_refused(tmp_path):
    import pytest

    from elman.errors import DataError

    x = np.random.default_rng(2).normal(size=(10, 4, 2))
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10) % 2)
    data = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    (tmp_path / "data_spec.json").write_text(dumps_json(data.spec()))
    np.savez(tmp_path / "d.npz", x=x + 1, y=np.arange(10) % 2)
    with pytest.raises(DataError, match="d.npz changed since training"):
        load_run_data(tmp_path)


def test_relative_user_path_reloads_from_another_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    text = "".join(f"paragraph {i} about things\n\n" for i in range(40))
    (tmp_path / "data" / "t.txt").write_text(text)
    monkeypatch.chdir(tmp_path / "data")
    data = load_dataset("text:t.txt")
    (tmp_path / "data_spec.json").write_text(dumps_json(data.spec()))
    monkeypatch.chdir(tmp_path)
    again = load_run_data(tmp_path)
    assert again.source == "text:t.txt"
    np.testing.assert_array_equal(again.train_ids, data.train_ids)
    assert len(data.val_ids) > 0 and data.spec()["split"] == "paragraph-crc32"
