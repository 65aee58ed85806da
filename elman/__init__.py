"""elman: vanilla (Elman) RNNs from training to bit-exact int8 C for microcontrollers.

The stages live in sibling packages that install as subpackages of ``elman``:
``elman.data`` (data/), ``elman.train`` (train/), ``elman.quantize`` (quantize/),
``elman.runtime`` (runtime/) and ``elman.firmware_codegen`` (firmware_codegen/).
"""

__version__ = "0.1.0"
