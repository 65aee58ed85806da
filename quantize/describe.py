"""A readable text view of a :class:`~elman.quantize.ir.QuantizedModel` (``elman inspect``).

Dimensions, every layer in step order with every quantization (each kind's own
lines: ``elman.layers.<kind>.describe``), and the integer constants each
arithmetic profile derives from them (``elman.profiles``).
"""

from __future__ import annotations

import numpy as np
from elman.layers import kind_module
from elman.profiles import PROFILE_NAMES, get_profile
from elman.quantize.ir import FullyConnected, QuantizedModel, QuantParams


def quant(q: QuantParams) -> str:
    return f"scale {q.scale:.9g}, zero point {q.zero_point}"


def _range(a: np.ndarray) -> str:
    return f"[{a.min()}, {a.max()}]" if a.size else "[]"


def fc_lines(name: str, fc: FullyConnected) -> list[str]:
    s = fc.weight_scales.astype(np.float64)
    lines = [
        f"  {name}: {fc.out_features} x {fc.in_features} int8 weights {_range(fc.weights)}, "
        f"per-channel scales [{s.min():.6g} .. {s.max():.6g}]",
        "      bias: " + (f"{fc.bias.dtype} {_range(fc.bias)}" if fc.has_bias else "none"),
        f"      input  {quant(fc.input)}",
        f"      output {quant(fc.output)}",
    ]
    for name in PROFILE_NAMES:
        req = get_profile(name).fully_connected(fc)
        lines.append(f"      requantize ({name}): scales [{req.scales.min():.6g} .. "
                     f"{req.scales.max():.6g}], multipliers {_range(req.multipliers)}, "
                     f"shifts {_range(req.shifts)}")
    return lines


def describe_ir(ir: QuantizedModel, source: str = "") -> str:
    """Multi-line description: dimensions, every layer and quantization, derived constants."""
    head = f"elman step model{(' ' + source) if source else ''}"
    lines = [head, "=" * len(head)]
    if ir.model_bytes:
        lines.append(f"file: {ir.model_bytes:,} bytes, sha256 {ir.source_sha256}")
    lines.append(f"task: {ir.task}")
    dims = f"x {ir.input_dim} -> " + " -> ".join(f"h{i} {u}" for i, u in
                                                 enumerate(ir.layer_units, start=1))
    if ir.head is not None:
        dims += f" -> y {ir.output_dim}"
    lines.append(f"dimensions: {dims}; {len(ir.layers)} layer(s), state "
                 f"{ir.state_bytes * ir.state_bits // 8} bytes; {ir.macs_per_step:,} MACs per "
                 "step")
    lines.append("window: " + (f"{ir.window_steps} steps (what the classifier was trained on)"
                               if ir.window_steps else "none (the model streams)"))
    if ir.input_stride > 1:
        lines.append(f"input stride: one step per {ir.input_stride} samples of the recording ("
                     + {"mean": "their mean)", "sample": "the first of them)",
                        "stack": f"all of them side by side: {ir.input_dim // ir.input_stride} "
                                 f"channels x {ir.input_stride})"}[ir.stride_mode])
    if ir.input_deltas:
        lines.append("input differences: each raw sample's channels, then their first "
                     "differences (made on the device, before the stride)")
    if ir.task == "language_model":
        preview = "".join(repr(t)[1:-1] for t in ir.labels[:40])
        lines.append(f"vocabulary ({ir.vocab_size} tokens): {preview}"
                     + (" ..." if len(ir.labels) > 40 else ""))
        if ir.embedding is not None:
            lines.append(f"embedding: {ir.embedding.shape[0]} x {ir.embedding.shape[1]} "
                         f"{ir.embedding.dtype} "
                         f"{_range(ir.embedding)}, quantized with x's parameters")
    elif ir.labels:
        lines.append(f"classes ({len(ir.labels)}): {', '.join(ir.labels)}")
    if ir.norm_mean is not None and ir.norm_std is not None:
        pairs = ", ".join(f"{m:.6g}/{s:.6g}" for m, s in zip(ir.norm_mean, ir.norm_std,
                                                             strict=True))
        lines.append(f"input normalization (mean/std per channel): {pairs}")
    lines += [
        "",
        f"x input:  int{ir.input_quant.bits}, {quant(ir.input_quant)}",
        f"h state:  int{ir.state_quant.bits}, {quant(ir.state_quant)} in every layer (pinned: "
        "TANH's output feeds back unchanged)",
    ]
    if ir.output_quant is not None:
        lines.append(f"y output: int{ir.output_quant.bits}, {quant(ir.output_quant)}")
    for number, layer in enumerate(ir.layers, start=1):
        lines.append("")
        lines += kind_module(layer.kind, "describe").describe(
            layer, number, "x" if number == 1 else f"h{number - 1}")
    if ir.head is not None:
        lines.append("")
        lines += kind_module(ir.head.kind, "describe").describe(ir.head,
                                                                f"h{len(ir.layers)}")
    sig = ir.signature
    h_in = " ".join(f"h{i}={p}" for i, p in enumerate(sig.h_inputs, start=1))
    h_out = " ".join(f"h{i}={p}" for i, p in enumerate(sig.h_outputs, start=1))
    lines += ["", f"signature: inputs x={sig.x_input} {h_in}; outputs {h_out}"
              + ("" if sig.y_output is None else f" y={sig.y_output}")]
    return "\n".join(lines)
