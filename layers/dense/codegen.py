"""The dense head for the C generator: its view and templates (``templates/step.c.j2``:
``<prefix>_head``, 4 outputs at a time; ``templates/weights.h.j2``: its constants)."""

from __future__ import annotations

from elman.firmware_codegen.fully_connected import CFullyConnected
from elman.quantize.ir import DenseHead


class CDenseHead:
    step_template = "dense/step.c.j2"
    weights_template = "dense/weights.h.j2"

    def __init__(self, head: DenseHead, prefix: str, profile: str, reads):
        self.head = head
        if head.fc.input.bits == 16:  # the int16 state (16x8)
            self.step_template, self.weights_template = "dense/step16.c.j2", "dense/weights16.h.j2"
        self.fc = CFullyConnected("head", "head W_y", head.fc, profile)
        self.fcs = (self.fc,)
        self.output_dim = head.output_dim
        self.activation = head.activation
        self.every_step = head.every_step
        self.input_P = reads.P  # the layer it reads: <input_P>_UNITS


View = CDenseHead
