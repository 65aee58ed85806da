"""A readable text view of a :class:`~elman.quantize.ir.QuantizedRNN` (``elman inspect``)."""

from __future__ import annotations

import numpy as np
from elman.profiles import get_profile
from elman.quantize.ir import FullyConnected, QuantizedRNN, QuantParams


def _q(q: QuantParams) -> str:
    return f"scale {q.scale:.9g}, zero point {q.zero_point}"


def _range(a: np.ndarray) -> str:
    return f"[{a.min()}, {a.max()}]" if a.size else "[]"


def _fc_lines(name: str, fc: FullyConnected) -> list[str]:
    s = fc.weight_scales.astype(np.float64)
    lines = [
        f"{name}: {fc.out_features} x {fc.in_features} int8 weights {_range(fc.weights)}, "
        f"per-channel scales [{s.min():.6g} .. {s.max():.6g}]",
        "    bias: " + (f"int32 {_range(fc.bias)}" if fc.has_bias else "none"),
        f"    input  {_q(fc.input)}",
        f"    output {_q(fc.output)}",
        *_requantize_lines(fc),
    ]
    return lines


def _requantize_lines(fc: FullyConnected) -> list[str]:
    tflm = get_profile("tflm").fully_connected(fc)
    return [f"    requantize: scales [{tflm.scales.min():.6g} .. {tflm.scales.max():.6g}]; "
            f"tflm multipliers {_range(tflm.multipliers)}, shifts {_range(tflm.shifts)}"]


def describe_ir(ir: QuantizedRNN, source: str = "") -> str:
    """Multi-line description: dimensions, every quantization, derived integer constants."""
    head = f"elman step model{(' ' + source) if source else ''}"
    lines = [head, "=" * len(head)]
    if ir.model_bytes:
        lines.append(f"file: {ir.model_bytes:,} bytes, sha256 {ir.source_sha256}")
    lines.append(f"task: {ir.task}")
    dims = f"x {ir.input_dim} -> h {ir.units}"
    if ir.head is not None:
        dims += f" -> y {ir.output_dim}"
    lines.append(f"dimensions: {dims}; {ir.macs_per_step:,} MACs per step")
    if ir.task == "language_model":
        preview = "".join(repr(t)[1:-1] for t in ir.labels[:40])
        lines.append(f"vocabulary ({ir.vocab_size} tokens): {preview}"
                     + (" ..." if len(ir.labels) > 40 else ""))
        if ir.embedding is not None:
            lines.append(f"embedding: {ir.embedding.shape[0]} x {ir.embedding.shape[1]} int8 "
                         f"{_range(ir.embedding)}, quantized with x's parameters")
    elif ir.labels:
        lines.append(f"classes ({len(ir.labels)}): {', '.join(ir.labels)}")
    if ir.norm_mean is not None and ir.norm_std is not None:
        pairs = ", ".join(f"{m:.6g}/{s:.6g}" for m, s in zip(ir.norm_mean, ir.norm_std,
                                                             strict=True))
        lines.append(f"input normalization (mean/std per channel): {pairs}")
    lines += [
        "",
        f"x input:  int8, {_q(ir.input_quant)}",
        f"h state:  int8, {_q(ir.state_quant)} (pinned: TANH's output feeds back unchanged)",
    ]
    if ir.output_quant is not None:
        lines.append(f"y output: int8, {_q(ir.output_quant)}")
    lines.append("")
    add = get_profile("tflm").add(ir.add)
    lines += _fc_lines("FC(x)", ir.input_fc)
    lines += _fc_lines("FC(h)", ir.recurrent_fc)
    lines += [
        f"ADD: a ({_q(ir.add.input1)}) + r ({_q(ir.add.input2)})",
        f"    output {_q(ir.add.output)}",
        f"    left shift {ir.add.left_shift}; multipliers a {add.input1_multiplier}, "
        f"r {add.input2_multiplier}, out {add.output_multiplier}",
        f"TANH: input {_q(ir.tanh.input)} -> output {_q(ir.tanh.output)}",
    ]
    if ir.head is not None:
        lines += _fc_lines("FC(head)", ir.head)
    sig = ir.signature
    lines += ["", f"signature: inputs x={sig.x_input} h={sig.h_input}; outputs h={sig.h_output}"
              + ("" if sig.y_output is None else f" y={sig.y_output}")]
    return "\n".join(lines)
