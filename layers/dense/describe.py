"""The dense head in ``elman inspect``."""

from __future__ import annotations

from elman.quantize.describe import fc_lines
from elman.quantize.ir import DenseHead


def describe(head: DenseHead, reads: str) -> list[str]:
    when = "every step" if head.every_step else "the last step of a window"
    lines = [f"head: dense, {head.output_dim} outputs ({head.activation}), answers at {when}, "
             f"reads {reads}"]
    lines += fc_lines("FC(head)", head.fc)
    if head.activation == "softmax":
        lines.append("      softmax: applied in float outside the integer step "
                     "(<prefix>_softmax in <prefix>_io.c); argmax is the same")
    return lines
