"""What the same model costs under TensorFlow Lite Micro, for the mcu report.

Measured here: the ``.tflite`` size (TFLM keeps it in flash) and the tensor
arena the ``tflite_micro`` Python interpreter allocates for it (its
``RecordingMicroAllocator``, printed by ``print_allocations()`` after one
``invoke()``). That interpreter is a 64-bit host build: its pointers and
structs are twice the size of a 32-bit MCU's, so the arena on a Cortex-M is
somewhat smaller than this number. Not measurable here: TFLM's framework code;
the report quotes TFLM's published figure, labelled as published.

The interpreter runs in a child process: its allocation report goes to the C
``stderr``, and a crash in it must not take the caller down.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

# tensorflow/lite/micro/examples/memory_footprint/README.md (tensorflow/tflite-micro):
# the interpreter framework without any kernel, on the "bluepill" board (STM32F103,
# Cortex-M3), measured there as the difference of two `size` results.
PUBLISHED_FRAMEWORK_CODE_BYTES = 9732
PUBLISHED_SOURCE = ("published, not measured here: tensorflow/tflite-micro "
                    "examples/memory_footprint/README.md, 9,732 bytes of framework code on the "
                    "Cortex-M3 'bluepill' board, without any kernel (FULLY_CONNECTED, ADD, "
                    "TANH kernels come on top)")

_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL = re.compile(r"Arena allocation tail (\d+) bytes")

_CHILD = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
it = runtime.Interpreter.from_bytes(data)
for i in range(64):
    try:
        d = it.get_input_details(i)
    except Exception:
        break
    it.set_input(np.zeros(d["shape"], d["dtype"]), i)
it.invoke()
sys.stderr.flush()
it.print_allocations()
"""


def tflm_footprint(model_path: Path | str, timeout_s: float = 120.0) -> dict[str, Any]:
    """The TFLM comparison block of the mcu report (measured and published numbers)."""
    model_path = Path(model_path)
    out: dict[str, Any] = {
        "tflite_bytes": model_path.stat().st_size,
        "tflite_bytes_source": "measured: size of model_int8.tflite (flash under TFLM)",
        "framework_code_bytes": PUBLISHED_FRAMEWORK_CODE_BYTES,
        "framework_code_source": PUBLISHED_SOURCE,
        "arena_bytes": None,
        "arena_source": None,
    }
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(model_path)],
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        out["arena_source"] = "not measured: the tflite_micro interpreter timed out"
        return out
    total = _TOTAL.search(proc.stderr)
    if proc.returncode != 0 or total is None:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        out["arena_source"] = f"not measured: the tflite_micro interpreter failed ({last})"
        return out
    head, tail = _HEAD.search(proc.stderr), _TAIL.search(proc.stderr)
    out["arena_bytes"] = int(total.group(1))
    out["arena_head_bytes"] = int(head.group(1)) if head else None
    out["arena_tail_bytes"] = int(tail.group(1)) if tail else None
    out["arena_source"] = ("measured: RecordingMicroAllocator of the tflite_micro Python "
                           "interpreter (64-bit host build; smaller on a 32-bit MCU)")
    return out
