"""`elman train` end to end on a tiny real text config: files, report layout, saved model."""

import json

import numpy as np
import pytest
from elman.data.spec import load_run_data
from typer.testing import CliRunner

from elman.cli import app

REPORT_KEYS = {
    "format", "task", "data", "config", "versions", "model", "epochs", "stop_reason",
    "metrics", "baseline", "size_curve", "clipping", "grad_norm_vs_distance", "throughput",
    "warnings", "provenance", "weight_grid",
}  # fmt: skip


@pytest.mark.parametrize("qat", [False, True])
def test_train_text_end_to_end(tmp_path, qat):
    """(--qat-weights: the saved weights are on the int8 grid, and the reported validation
    perplexity is still the saved model's.)"""
    pytest.importorskip("tensorflow")
    import keras

    run = tmp_path / "run"
    args = ["train", "--data", "text:fortunes", str(run), "--no-progress", "--units", "16",
            "--embedding", "8", "--batch", "4", "--bptt", "12", "--epochs", "2",
            "--max-chars", "4000", "--seed", "5"] + ["--qat-weights"] * qat  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "validation perplexity" in result.output and "kn5: perplexity" in result.output
    assert sorted(p.name for p in run.iterdir()) == [
        "data_spec.json", "grad_vs_distance.png", "model.keras", "provenance.json",
        "train_curves.png", "train_report.json",
    ]  # fmt: skip
    report = json.loads((run / "train_report.json").read_text())
    assert set(report) == REPORT_KEYS and report["warnings"] == []
    assert report["task"] == "language_model" and len(report["epochs"]) == 2
    assert set(report["baseline"]) == {"kn3", "kn5", "kn7"}
    assert report["config"]["seed"] == 5 and report["config"]["bptt"] == 12
    assert report["config"]["qat_weights"] is qat
    grid = report["weight_grid"]
    assert grid["qat_weights"] is qat
    if qat:  # the last fifth of the updates (and at least the last one) on the grid
        assert grid["max_off_grid_steps"] < 1e-3
        assert grid["updates_on_grid"] == report["throughput"]["updates"] - grid["from_update"]
        assert 1 <= grid["updates_on_grid"] <= report["throughput"]["updates"] * 0.2 + 1
    else:  # trained weights are anywhere between grid points
        assert grid["max_off_grid_steps"] > 0.4
    curve = report["grad_norm_vs_distance"]
    assert len(curve["distance"]) == len(curve["mean_norm"]) == 100
    t = report["throughput"]  # full windows of 4 x 12, one shorter window per epoch
    assert (t["updates"] - 2) * 48 < t["steps"] <= t["updates"] * 48

    data = load_run_data(run)
    model = keras.saving.load_model(run / "model.keras")
    assert [layer.name for layer in model.layers[1:]] == ["embedding", "rnn", "head"]
    rnn = model.get_layer("rnn")
    assert rnn.return_sequences and not rnn.stateful and rnn.activation.__name__ == "tanh"
    assert model.get_layer("head").units == len(data.vocab)
    # the saved model reproduces the reported validation perplexity (the whole validation
    # stream as one sequence, state carried), computed here independently in one Keras call
    ids = data.val_ids
    x, y = ids[None, :-1], ids[None, 1:]
    logits = model(x).numpy().astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
    logp -= logits.max(-1, keepdims=True)
    nll = -np.take_along_axis(logp, y[..., None], axis=-1).mean()
    assert np.exp(nll) == pytest.approx(report["metrics"]["val_perplexity"], rel=1e-4)
    # the n-gram baselines (fitted in a thread beside training) are those of the same split
    from elman.train.kneser_ney import KneserNey

    for order in (3, 5, 7):
        direct = KneserNey(data.train_ids, len(data.vocab), order).evaluate(data.val_ids)
        assert report["baseline"][f"kn{order}"]["val_perplexity"] == direct["val_perplexity"]
