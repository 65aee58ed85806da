"""Models users build: `model.fit` in the test, default Keras names, real data.

Each accepted shape goes `elman import` -> `elman quantize` -> `elman codegen` ->
`elman verify`, and every pair (LiteRT, TFLite Micro, the numpy engine, host C,
emulated Cortex-M0+ and M4, for both profiles) must be bit-exact on real held-out
data. Models are tiny and trained for a few epochs: the point is the shape.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from elman.data.datasets import load_raw
from typer.testing import CliRunner

from elman import rundir
from elman.cli import app

VERIFY_LIMIT = 6  # held-out sequences compared (text: steps, below)
TEXT_CHARS = 20_000
TEXT_VERIFY_STEPS = 400
EXPECTED_PAIRS = ("LiteRT BUILTIN_REF", "TFLite Micro", "simulator, numpy engine",
                  "generated C", "emulated Cortex-M0+", "emulated Cortex-M4")


def _keras():
    import keras

    keras.utils.set_random_seed(0)
    return keras


@pytest.fixture(scope="module")
def basicmotions():
    return load_raw("sensor", "basicmotions")


def _fit(model, x, y, *, softmax: bool, epochs: int = 3, batch: int = 8):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax))
    model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0)
    return model


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def run_pipeline(model_path, data: str, run, *import_options: str, limit: int = VERIFY_LIMIT
                 ) -> dict:
    """import -> quantize -> codegen -> verify; every verify pair must be bit-exact."""
    out = _invoke("import", model_path, run, "--data", data, *import_options)
    assert "imported" in out
    _invoke("quantize", "--no-progress", "--eval-chars", "2000", run)
    _invoke("codegen", run)
    _invoke("verify", "--no-progress", "--limit", str(limit), run)
    report = json.loads((run / rundir.VERIFY_REPORT).read_text())
    assert report["ok"] is True
    for pair in report["pairs"]:
        assert pair["mismatches"] == 0 and pair["first_mismatch"] is None, pair
        assert pair["compared"] > 0
    for profile in ("tflm", "tflite"):
        names = [p["b"] for p in report["pairs"] if p["profile"] == profile]
        for expected in EXPECTED_PAIRS:
            if expected == "LiteRT BUILTIN_REF" and profile == "tflm":
                continue
            if expected == "TFLite Micro" and profile == "tflite":
                continue
            assert any(n.startswith(expected) for n in names), (profile, expected, names)
    return report


def _quant_report(run) -> dict:
    return json.loads((run / rundir.QUANT_REPORT).read_text())


def test_softmax_head_from_data_normalization(basicmotions, tmp_path):
    keras = _keras()
    data = basicmotions.normalized()  # the user normalized with the training statistics
    model = keras.Sequential([keras.Input((None, 6)), keras.layers.SimpleRNN(12),
                              keras.layers.Dense(4, activation="softmax")])
    _fit(model, data.x_train, data.y_train, softmax=True)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    run_pipeline(tmp_path / "user.keras", "sensor:basicmotions", run, "--normalize", "from-data")
    spec = json.loads((run / rundir.DATA_SPEC).read_text())
    np.testing.assert_allclose(spec["input"]["normalization"]["mean"], data.mean)
    quant = _quant_report(run)
    assert quant["keras_model"]["head_activation"] == "softmax"
    assert any("softmax head" in n for n in quant["keras_model"]["notes"])
    from elman.report_html import render_report

    assert "Note: softmax head: compiled as logits (argmax unchanged)" in render_report(run)
    float_acc = quant["evaluation"]["metrics"]["float"]["accuracy"]
    keras_acc = float((np.asarray(model(data.x_test)).argmax(-1) == data.y_test).mean())
    assert float_acc == keras_acc


def test_dropout_on_raw_values(basicmotions, tmp_path):
    keras = _keras()
    L = keras.layers
    model = keras.Sequential([keras.Input((None, 6)),
                              L.SimpleRNN(12, dropout=0.1, recurrent_dropout=0.1),
                              L.Dropout(0.2), L.Dense(4)])
    _fit(model, basicmotions.x_train.astype(np.float32), basicmotions.y_train, softmax=False)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    # the model reads raw values: the stored normalization is the identity
    run_pipeline(tmp_path / "user.keras", "sensor:basicmotions", run, "--normalize", "none")
    spec = json.loads((run / rundir.DATA_SPEC).read_text())
    assert spec["input"]["normalization"]["mean"] == [0.0] * 6
    assert spec["input"]["normalization"]["std"] == [1.0] * 6
    notes = _quant_report(run)["keras_model"]["notes"]
    assert any("Dropout" in n and "identity" in n for n in notes)


def test_normalization_and_masking_layers_fold_into_the_stored_normalization(basicmotions,
                                                                            tmp_path):
    keras = _keras()
    L = keras.layers
    norm = L.Normalization()
    norm.adapt(basicmotions.x_train.astype(np.float32))
    model = keras.Sequential([keras.Input((None, 6)), norm, L.Masking(0.0), L.SimpleRNN(12),
                              L.Dense(4)])
    _fit(model, basicmotions.x_train.astype(np.float32), basicmotions.y_train, softmax=False)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    run_pipeline(tmp_path / "user.keras", "sensor:basicmotions", run)  # --normalize auto
    spec = json.loads((run / rundir.DATA_SPEC).read_text())
    np.testing.assert_allclose(spec["input"]["normalization"]["mean"],
                               np.asarray(norm.mean).reshape(-1), rtol=1e-6)
    np.testing.assert_allclose(spec["input"]["normalization"]["std"],
                               np.sqrt(np.asarray(norm.variance).reshape(-1)), rtol=1e-6)
    assert spec["imported"]["normalization"] == "layer"
    # the float reference of the quantize report is the Keras model itself
    keras_acc = float((np.asarray(model(basicmotions.x_test.astype(np.float32))).argmax(-1)
                       == basicmotions.y_test).mean())
    assert _quant_report(run)["evaluation"]["metrics"]["float"]["accuracy"] == keras_acc


def test_per_step_head_on_streams(tmp_path):
    """A streaming detector: TimeDistributed(Dense) at every step, per-step labels."""
    keras = _keras()
    L = keras.layers
    data = load_raw("sensor", "basicmotions-stream").normalized()
    model = keras.Sequential([keras.Input((None, 6)), L.SimpleRNN(12, return_sequences=True),
                              L.TimeDistributed(L.Dense(4, activation="softmax"))])
    # the user trains on 100-step windows of the streams (cheaper than 1000-step BPTT)
    _fit(model, data.x_train.reshape(-1, 100, 6), data.y_train.reshape(-1, 100), softmax=True,
         epochs=2, batch=40)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    report = run_pipeline(tmp_path / "user.keras", "sensor:basicmotions-stream", run,
                          "--normalize", "from-data", limit=1)
    spec = json.loads((run / rundir.DATA_SPEC).read_text())
    assert spec["per_step_labels"] is True and spec["input"]["timesteps"] == 1000
    quant = _quant_report(run)
    assert quant["keras_model"]["head_steps"] == "every"
    m = quant["evaluation"]["metrics"]
    keras_pred = np.asarray(model(data.x_test)).argmax(-1)
    assert m["float"]["per_step_accuracy"] == float((keras_pred == data.y_test).mean())
    assert m["float"]["switch_delay"]["changes"] == 8 * 9  # every boundary is a change
    floats = {f["profile"]: f["metrics"] for f in report["float_vs_int8"]}
    for metrics in floats.values():
        assert {"float_per_step_accuracy", "int8_per_step_accuracy",
                "int8_switch_delay_median"} <= set(metrics)
    # the summary `elman run` prints: per-step accuracy and switch delay of float, int8 and C
    from elman.report_sections import task_metric_rows

    _, rows = task_metric_rows(None, quant, report)
    names = [r[0] for r in rows]
    assert "per step accuracy [tflm]" in names and "switch delay median [tflite]" in names
    row = rows[names.index("per step accuracy [tflm]")]
    assert row[2] == row[3] == f"{floats['tflm']['int8_per_step_accuracy']:.3f}"


def test_text_model_with_embedding(tmp_path):
    keras = _keras()
    L = keras.layers
    text = load_raw("text", "fortunes", max_chars=TEXT_CHARS)
    vocab = text.vocab_size
    steps = 35
    n = (len(text.train_ids) - 1) // steps
    x = text.train_ids[: n * steps].reshape(n, steps)
    y = text.train_ids[1: n * steps + 1].reshape(n, steps)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), L.Embedding(vocab, 8),
                              L.SimpleRNN(24, return_sequences=True), L.Dense(vocab)])
    _fit(model, x, y, softmax=False, epochs=1, batch=32)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    report = run_pipeline(tmp_path / "user.keras", "text:fortunes", run, "--max-chars",
                          str(TEXT_CHARS), limit=TEXT_VERIFY_STEPS)
    assert report["model"]["task"] == "language_model"
    quant = _quant_report(run)
    assert quant["keras_model"]["head_steps"] == "every"
    m = quant["evaluation"]["metrics"]
    assert m["int8"]["bits_per_char"] - m["float"]["bits_per_char"] < 0.1


def test_two_stacked_layers_with_a_softmax_head(basicmotions, tmp_path):
    keras = _keras()
    L = keras.layers
    data = basicmotions.normalized()
    model = keras.Sequential([keras.Input((None, 6)), L.SimpleRNN(10, return_sequences=True),
                              L.SimpleRNN(8), L.Dense(4, activation="softmax")])
    _fit(model, data.x_train, data.y_train, softmax=True)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    report = run_pipeline(tmp_path / "user.keras", "sensor:basicmotions", run, "--normalize",
                          "from-data")
    assert report["model"]["layer_units"] == [10, 8]
    summary = _quant_report(run)["keras_model"]
    assert summary["recurrent_layers"] == 2 and summary["units"] == [10, 8]
    assert summary["layers"] == ["SimpleRNN(10)", "SimpleRNN(8)", "Dense(4)"]
    keras_acc = float((np.asarray(model(data.x_test)).argmax(-1) == data.y_test).mean())
    assert _quant_report(run)["evaluation"]["metrics"]["float"]["accuracy"] == keras_acc


def test_three_stacked_layers_with_a_dense_head_at_every_step(tmp_path):
    """return_sequences=True on the last SimpleRNN, then a plain Dense: one answer per step."""
    keras = _keras()
    L = keras.layers
    data = load_raw("sensor", "basicmotions-stream").normalized()
    model = keras.Sequential([keras.Input((None, 6)), L.SimpleRNN(8, return_sequences=True),
                              L.SimpleRNN(7, return_sequences=True), L.Dropout(0.1),
                              L.SimpleRNN(6, return_sequences=True), L.Dense(4)])
    _fit(model, data.x_train.reshape(-1, 100, 6), data.y_train.reshape(-1, 100), softmax=False,
         epochs=2, batch=40)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    report = run_pipeline(tmp_path / "user.keras", "sensor:basicmotions-stream", run,
                          "--normalize", "from-data", limit=1)
    assert report["model"]["layer_units"] == [8, 7, 6]
    quant = _quant_report(run)
    assert quant["keras_model"]["head_steps"] == "every"
    assert quant["keras_model"]["recurrent_layers"] == 3
    keras_pred = np.asarray(model(data.x_test)).argmax(-1)
    assert (quant["evaluation"]["metrics"]["float"]["per_step_accuracy"]
            == float((keras_pred == data.y_test).mean()))



def test_run_from_quantize_after_import(basicmotions, tmp_path):
    """After `elman import`, `elman run --from quantize` runs every later stage unchanged."""
    keras = _keras()
    L = keras.layers
    model = keras.Sequential([keras.Input((None, 6)), L.SimpleRNN(6), L.Dense(4)])
    _fit(model, basicmotions.x_train.astype(np.float32), basicmotions.y_train, softmax=False,
         epochs=1)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    _invoke("import", tmp_path / "user.keras", run, "--data", "sensor:basicmotions",
            "--normalize", "none")
    _invoke("run", "--from", "quantize", "--limit", "2", "--cpu", "cortex-m4", "--quiet", run)
    assert json.loads((run / rundir.VERIFY_REPORT).read_text())["ok"] is True
    mcu = json.loads((run / rundir.MCU_REPORT).read_text())
    assert mcu["all_bit_exact"] is True and mcu["builds"]
    assert (run / rundir.REPORT_HTML).is_file() and not (run / rundir.TRAIN_REPORT).exists()


# ---- bigger models, the whole held-out set (make test-all) --------------------------------

@pytest.mark.slow
def test_three_layers_of_32_with_normalization_dropout_and_softmax(basicmotions, tmp_path):
    keras = _keras()
    L = keras.layers
    x = basicmotions.x_train.astype(np.float32)
    norm = L.Normalization()
    norm.adapt(x)
    model = keras.Sequential([keras.Input((None, 6)), norm,
                              L.SimpleRNN(32, return_sequences=True, dropout=0.1),
                              L.SimpleRNN(32, return_sequences=True), L.Dropout(0.2),
                              L.SimpleRNN(32), L.Dense(4, activation="softmax")])
    _fit(model, x, basicmotions.y_train, softmax=True, epochs=30, batch=8)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    report = run_pipeline(tmp_path / "user.keras", "sensor:basicmotions", run, limit=10_000)
    assert report["model"]["layer_units"] == [32, 32, 32]
    assert all(p["compared"] > 0 for p in report["pairs"])
    keras_acc = float((np.asarray(model(basicmotions.x_test.astype(np.float32))).argmax(-1)
                       == basicmotions.y_test).mean())
    m = _quant_report(run)["evaluation"]["metrics"]
    assert m["float"]["accuracy"] == keras_acc
    assert abs(m["int8"]["accuracy"] - m["float"]["accuracy"]) <= 0.05  # 2 of 40 sequences


@pytest.mark.slow
def test_two_layers_of_32_streaming_on_every_stream(tmp_path):
    keras = _keras()
    L = keras.layers
    data = load_raw("sensor", "basicmotions-stream").normalized()
    model = keras.Sequential([keras.Input((None, 6)), L.SimpleRNN(32, return_sequences=True),
                              L.SimpleRNN(32, return_sequences=True),
                              L.TimeDistributed(L.Dense(4, activation="softmax"))])
    _fit(model, data.x_train.reshape(-1, 100, 6), data.y_train.reshape(-1, 100), softmax=True,
         epochs=10, batch=16)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    report = run_pipeline(tmp_path / "user.keras", "sensor:basicmotions-stream", run,
                          "--normalize", "from-data", limit=10_000)
    assert report["model"]["layer_units"] == [32, 32]
    assert all(p["compared"] >= 8 * 1000 for p in report["pairs"]
               if p["b"].startswith(("generated C", "emulated")))
    m = _quant_report(run)["evaluation"]["metrics"]
    assert abs(m["int8"]["per_step_accuracy"] - m["float"]["per_step_accuracy"]) <= 0.02


@pytest.mark.slow
def test_two_layer_text_model_with_embedding(tmp_path):
    keras = _keras()
    L = keras.layers
    chars = 100_000
    text = load_raw("text", "fortunes", max_chars=chars)
    steps = 50
    n = (len(text.train_ids) - 1) // steps
    x = text.train_ids[: n * steps].reshape(n, steps)
    y = text.train_ids[1: n * steps + 1].reshape(n, steps)
    model = keras.Sequential([keras.Input((None,), dtype="int32"),
                              L.Embedding(text.vocab_size, 16),
                              L.SimpleRNN(64, return_sequences=True),
                              L.SimpleRNN(64, return_sequences=True), L.Dense(text.vocab_size)])
    _fit(model, x, y, softmax=False, epochs=3, batch=32)
    model.save(tmp_path / "user.keras")
    run = tmp_path / "run"
    report = run_pipeline(tmp_path / "user.keras", "text:fortunes", run, "--max-chars",
                          str(chars), limit=3000)
    assert report["model"]["layer_units"] == [64, 64]
    m = _quant_report(run)["evaluation"]["metrics"]
    assert m["int8"]["bits_per_char"] - m["float"]["bits_per_char"] < 0.1
