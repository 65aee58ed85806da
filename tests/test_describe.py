"""`elman inspect` shows a stacked model layer by layer, with each profile's constants."""

from __future__ import annotations

from elman.layers.random_model import random_model
from elman.profiles import get_profile
from elman.quantize.describe import describe_ir
from elman.quantize.ir import QuantizedModel
from stacked_tflite import stacked_step_tflite
from typer.testing import CliRunner

from elman.cli import app


def test_every_layer_and_the_head_are_described():
    model = random_model(3, (7, 5, 4), 6, seed=4, every_step=True, activation="softmax",
                         window_steps=0)
    text = describe_ir(model, "deep.tflite")
    assert "dimensions: x 3 -> h1 7 -> h2 5 -> h3 4 -> y 6; 3 layer(s), state 16 bytes" in text
    assert "window: none (the model streams)" in text
    for line in ("layer 1: Elman, 7 units, reads x (3)", "layer 2: Elman, 5 units, reads h1 (7)",
                 "layer 3: Elman, 4 units, reads h2 (5)",
                 "head: dense, 6 outputs (softmax), answers at every step, reads h3"):
        assert line in text
    assert text.count("  FC(h): ") == 3 and text.count("  TANH: ") == 3
    # the derived constants are the profiles' own
    req = get_profile("tflm").fully_connected(model.layers[1].recurrent_fc)
    assert (f"requantize (tflm): scales [{req.scales.min():.6g} .. {req.scales.max():.6g}], "
            f"multipliers [{req.multipliers.min()}, {req.multipliers.max()}]") in text
    add = get_profile("tflite").add(model.layers[2].add)
    assert f"(tflite) left shift 20; multipliers a {add.input1_multiplier}" in text
    assert "signature: inputs x=0 h1=1 h2=2 h3=3; outputs h1=0 h2=1 h3=2 y=3" in text
    last = describe_ir(random_model(3, 4, 2, seed=1, window_steps=100))
    assert "window: 100 steps" in last and "answers at the last step of a window" in last


def test_inspect_cli_on_a_stacked_tflite(tmp_path):
    path = tmp_path / "deep.tflite"
    path.write_bytes(stacked_step_tflite(3, (7, 5), 4, seed=2, head_steps="every"))
    result = CliRunner().invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "layer 2: Elman, 5 units, reads h1 (7)" in result.output
    assert "answers at every step" in result.output
    as_json = CliRunner().invoke(app, ["inspect", "--json", str(path)])
    model = QuantizedModel.from_json(as_json.output)
    assert model.layer_units == (7, 5) and model.head.every_step
