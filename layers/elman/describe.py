"""The Elman layer in ``elman inspect``: its FULLY_CONNECTEDs, ADD and TANH, with each
profile's derived constants."""

from __future__ import annotations

from elman.profiles import PROFILE_NAMES, get_profile
from elman.quantize.describe import fc_lines, quant
from elman.quantize.ir import ElmanLayer


def describe(layer: ElmanLayer, number: int, reads: str) -> list[str]:
    lines = [f"layer {number}: Elman, {layer.units} units, reads {reads} ({layer.input_dim})"]
    lines += fc_lines("FC(x)", layer.input_fc)
    lines += fc_lines("FC(h)", layer.recurrent_fc)
    add = layer.add
    lines += [f"  ADD: a ({quant(add.input1)}) + r ({quant(add.input2)})",
              f"      output {quant(add.output)}"]
    for name in PROFILE_NAMES:
        rescale = get_profile(name).add(add)
        lines.append(f"      ({name}) left shift {rescale.left_shift}; multipliers "
                     f"a {rescale.input1_multiplier}, r {rescale.input2_multiplier}, "
                     f"out {rescale.output_multiplier}")
    lines.append(f"  TANH: input {quant(layer.tanh.input)} -> output {quant(layer.tanh.output)}")
    return lines
