"""The step's RAM: the state plus one more hidden vector plus the output (issue 5).

No int32 array as long as a layer: the units are computed 4 at a time, so the only
vector-sized scratch is the kernel's copy of the vectors a layer reads (its own h, and the
layer below's new state; int16 on DSP cores: 2 bytes a unit; int32 on the Cortex-M0+'s assembly
kernel, 4 bytes a unit plus one word, the correction of its unsigned weights; int8 on the
portable C path: 1 byte a unit). Checked on the generated text and by the
stack measured on emulated cores (painted stack, deepest use of any step call).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from elman.firmware_codegen.arm.emulate import run_emulated
from elman.firmware_codegen.generate import generate_c
from elman.layers.random_model import random_model
from elman.runtime.simulator import Simulator

INPUT_DIM, CLASSES = 6, 4
FRAME_ALLOWANCE = 224  # bytes: saved registers, call frames, 4 + 4 int32 sums (measured ~190)
# bytes of h's copy per unit (DSP cores: int16; the ARMv6-M assembly kernel: int32, plus one
# word per copy; portable C: int8)
BYTES_PER_UNIT = {"cortex-m4": 2, "cortex-m0plus": 4}
EXTRA_WORDS = {"cortex-m4": 0, "cortex-m0plus": 1}
ARRAY = re.compile(r"\b(int8_t|int16_t|int32_t|uint32_t|\w+_vector_t)\s+(\w+)\s*\[([^\]]*)\]")


def _stack(cpu: str, units: int) -> int:
    ir = random_model(INPUT_DIM, units, CLASSES, seed=units)
    x = np.random.default_rng(units).integers(-128, 128, (1, 1, INPUT_DIM), dtype=np.int8)
    run = run_emulated(ir, x, cpu=cpu, opt="O2")
    expected = Simulator(ir).run(x)
    np.testing.assert_array_equal(run.outputs.h, expected.h)
    np.testing.assert_array_equal(run.outputs.y, expected.y)
    return run.stack_bytes


@pytest.mark.parametrize("cpu", sorted(BYTES_PER_UNIT))
def test_step_stack_is_one_hidden_vector_plus_a_fixed_frame(cpu):
    per_unit = BYTES_PER_UNIT[cpu]
    small, large = _stack(cpu, 64), _stack(cpu, 128)
    extra = 4 * EXTRA_WORDS[cpu]
    input_copy = per_unit * 4 * -(-INPUT_DIM // 4) + extra
    assert large <= per_unit * 128 + extra + input_copy + FRAME_ALLOWANCE
    # growth with the units is the copy of h only (an int32 array would add 4 bytes a unit)
    assert per_unit * 64 <= large - small <= per_unit * 64 + 32


@pytest.mark.parametrize("units", [128, 130, (128, 66, 7)])
def test_generated_step_declares_no_unit_sized_array_but_the_copies_of_h(units):
    ir = random_model(INPUT_DIM, units, CLASSES, seed=3, vocab_size=0)
    text = generate_c(ir, prefix="net")["net_model.c"]
    step = text[text.index("/* ---- the layers"):]  # the layers', the head's, the step's code
    arrays = ARRAY.findall(step)
    assert arrays, "the pattern must see the step's local arrays"
    layers = len(ir.layers)
    copies = {f"NET_VECTOR_LENGTH(NET_LAYER{n}_UNITS)" for n in range(1, layers + 1)}
    for ctype, name, size in arrays:
        if size.strip().isdigit():
            assert int(size) <= 4, f"{ctype} {name}[{size}]"
        else:
            # the only non-literal sizes: the kernel's copies of a layer's h and of x
            assert size in copies | {"NET_VECTOR_LENGTH(NET_INPUT_DIM)"}, f"{ctype} {name}[{size}]"
            assert ctype == "net_vector_t"
    # each layer's own h, the head's and (from layer 2) the copy of the layer below
    assert sum(size in copies for _, _, size in arrays) == 2 * layers
