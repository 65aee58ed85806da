"""The report's size curve: n-gram points, the RNN's points, the smallest n-gram at each."""

from elman.report_size_curve import (
    RNN_POINTS,
    SizePoint,
    rnn_points,
    size_curve_section,
    smallest_ngram_at,
)

POINTS = [
    {"order": 3, "cutoff": 1, "val_perplexity": 8.3, "bytes": 460_000, "entries": 1},
    {"order": 5, "cutoff": 5, "val_perplexity": 5.1, "bytes": 1_400_000, "entries": 1},
    {"order": 6, "cutoff": 3, "val_perplexity": 4.65, "bytes": 3_900_000, "entries": 1},
    {"order": 7, "cutoff": 3, "val_perplexity": 4.59, "bytes": 5_700_000, "entries": 1},
    {"order": 5, "cutoff": 1, "val_perplexity": 4.81, "bytes": 6_400_000, "entries": 1},
]
TRAIN = {"task": "language_model",
         "metrics": {"val_perplexity": 4.7},
         "model": {"units": 384, "float32_bytes": 815_652},
         "size_curve": {"pruning": "count cut-offs", "points": POINTS,
                        "frontier": POINTS[:4]}}
QUANT = {"model": {"units": 384, "parameter_bytes": {"total": 205_000}},
         "evaluation": {"whole_stream": True,
                        "metrics": {"float": {"perplexity": 4.7},
                                    "int8": {"perplexity": 4.72}}}}


def test_smallest_ngram_at_a_perplexity():
    assert smallest_ngram_at(POINTS, 4.7)["order"] == 6
    assert smallest_ngram_at(POINTS, 4.6)["order"] == 7
    assert smallest_ngram_at(POINTS, 5.0)["order"] == 6  # 5/1 is larger
    assert smallest_ngram_at(POINTS, 4.0) is None


def test_rnn_points_from_the_reports():
    points = rnn_points(TRAIN, QUANT, None)
    assert points == [
        SizePoint("RNN float32, 384 units", 815_652, 4.7, "float32 parameters"),
        SizePoint("RNN int8, 384 units", 205_000, 4.72,
                  "int8 weights and embedding, int32 biases (LiteRT's perplexity)")]
    # an int8 perplexity on a prefix of the stream is another number: no point
    prefix = {**QUANT, "evaluation": {**QUANT["evaluation"], "whole_stream": False}}
    assert [p.label for p in rnn_points(TRAIN, prefix, None)] == ["RNN float32, 384 units"]
    assert rnn_points(None, None, None) == []


def test_a_new_point_is_one_function(monkeypatch):
    def int16_point(train, quant, verify):
        return SizePoint("RNN int16 state", 210_000, 4.71, "test")

    monkeypatch.setattr("elman.report_size_curve.RNN_POINTS", [*RNN_POINTS, int16_point])
    assert [p.label for p in rnn_points(TRAIN, QUANT, None)][-1] == "RNN int16 state"


def test_section_table_compares_each_rnn_point_with_the_smallest_ngram():
    section = size_curve_section(TRAIN, QUANT, None)
    figure, table = section.blocks
    assert figure.kind == "figure" and figure.uri.startswith("data:image/png;base64,")
    rows = [[c.text for c in r.cells] for r in table.rows]
    assert rows[0][:3] == ["RNN float32, 384 units", "4.7", "815,652"]
    assert rows[0][4:] == ["order 6, cut-off 3 (perplexity 4.650)", "3,900,000", "4.8"]
    assert rows[1][4:] == ["order 6, cut-off 3 (perplexity 4.650)", "3,900,000", "19"]
    # no curve (classification, or trained without baselines): no section
    assert size_curve_section({"task": "classification"}, None, None) is None


def _int16_quant(whole_stream=True):
    """The quant report of `elman quantize --state int16` on a text run: the 16x8 model's
    evaluation, and the same float model's int8 state in ``state_comparison``."""
    rows = [{"state": "int8", "perplexity": 4.73, "parameter_bytes": 205_000,
             "whole_stream": whole_stream},
            {"state": "int16", "perplexity": 4.705, "parameter_bytes": 232_000,
             "whole_stream": whole_stream}]
    return {"model": {"units": 384, "parameter_bytes": {"total": 232_000}},
            "quantization": {"state_bits": 16},
            "evaluation": {"whole_stream": whole_stream,
                           "metrics": {"float": {"perplexity": 4.7},
                                       "int8": {"perplexity": 4.705}}},
            "state_comparison": {"rows": rows}}


def test_int16_state_run_has_the_16x8_point_beside_the_int8_state():
    points = rnn_points(TRAIN, _int16_quant(), None)
    assert points == [
        SizePoint("RNN float32, 384 units", 815_652, 4.7, "float32 parameters"),
        SizePoint("RNN int8, 384 units", 205_000, 4.73,
                  "int8 weights and embedding, int32 biases (LiteRT's perplexity)"),
        SizePoint("RNN 16x8 (int16 state), 384 units", 232_000, 4.705,
                  "int8 weights, int16 embedding, int64 biases (LiteRT's perplexity)")]
    rows = [[c.text for c in r.cells] for r in size_curve_section(TRAIN, _int16_quant(),
                                                                  None).blocks[1].rows]
    assert [r[0] for r in rows] == [p.label for p in points]
    # a prefix of the stream is another number: only the float point
    assert [p.label for p in rnn_points(TRAIN, _int16_quant(False), None)] == [
        "RNN float32, 384 units"]


def test_parameter_bytes_count_each_width_as_stored():
    """int8: int8 weights and embedding, int32 biases; 16x8: int8 weights, an int16
    embedding and int64 biases (what the generated C declares)."""
    from elman.layers.random_model import random_model
    from elman.quantize.api import model_summary

    for bits, bias_key, bias_width, emb_key, emb_width in (
            (8, "int32_biases", 4, "int8_embedding", 1),
            (16, "int64_biases", 8, "int16_embedding", 2)):
        ir = random_model(6, (20, 9), 30, seed=5, vocab_size=30, state_bits=bits)
        pb = model_summary(ir)["parameter_bytes"]
        biases = 20 + 9 + 30  # each layer's input FC and the head (the recurrent FC has none)
        weights = 20 * 6 + 20 * 20 + 9 * 20 + 9 * 9 + 30 * 9
        assert pb == {"int8_weights": weights, bias_key: biases * bias_width,
                      emb_key: 30 * 6 * emb_width,
                      "total": weights + biases * bias_width + 30 * 6 * emb_width}, bits
