"""The example firmware: a whole image for QEMU's ``mps2-an386`` (Cortex-M4).

``example_files`` renders ``main.c`` (the model over a few real held-out
samples embedded as int8, results printed over semihosting; its own vector
table and startup, no C library), ``example.ld`` and a ``Makefile``.
``codegen_run(..., example=True)`` writes them to ``<out_dir>/<prefix>_qemu/``.
``run_example`` builds and runs the image under ``qemu-system-arm``, and
``parse_example_output`` reads the printed values back for comparison with
the simulator.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elman.firmware_codegen.arm.toolchain import find_toolchain
from elman.quantize.ir import QuantizedModel

from elman.errors import ToolchainError

DEFAULT_SAMPLES = 4
QEMU_HINT = "apt-get install -y --no-install-recommends qemu-system-arm"


def example_dir(prefix: str) -> str:
    """The example's folder inside the C output directory."""
    return f"{prefix}_qemu"


@dataclass(frozen=True)
class ExampleSamples:
    """Real held-out inputs to embed: int8 (N, T, D), or token ids (N, T) for text."""

    inputs: np.ndarray
    labels: np.ndarray  # true class (classification) or the token after the window (text)
    tokens: bool


def example_samples(run_dir: Path | str, ir: QuantizedModel,
                    count: int = DEFAULT_SAMPLES, max_steps: int = 64) -> ExampleSamples:
    """The first ``count`` held-out samples of the run's own data, quantized as the model sees
    them (classification: the test split; text: windows of ``max_steps`` validation tokens).
    Sequences of unequal length: the first ``count`` of the most common length, so that
    every sample runs for its own number of steps."""
    from elman.data.held_out import load_held_out

    held = load_held_out(run_dir, window=max_steps).same_length(count)
    inputs = held.inputs if held.tokens else ir.input_quant.quantize(held.inputs)
    labels = held.targets
    if labels is not None and labels.ndim == 2:  # per-step labels: the example checks the last
        labels = labels[:, -1]
    return ExampleSamples(inputs=inputs, labels=labels, tokens=held.tokens)


def example_files(ir: QuantizedModel, samples: ExampleSamples, model_sources: list[str], *,
                  prefix: str = "elman", profile: str = "tflm",
                  model_dir: str = "..") -> dict[str, str]:
    """``main.c``, ``example.ld`` and ``Makefile`` (file name -> text; deterministic).
    ``main.c`` embeds what the simulator computes for each sample (``profile``) and ends by
    printing ``PASS`` or ``FAIL (n mismatching values)``."""
    import jinja2
    from elman.runtime.simulator import Simulator

    from elman import __version__

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("elman.firmware_codegen", "templates/example"),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    inputs = np.asarray(samples.inputs)
    simulator = Simulator(ir, profile)
    expected = simulator.run_tokens(inputs) if samples.tokens else simulator.run(inputs)
    context = {
        "p": prefix, "P": prefix.upper(), "profile": profile, "elman_version": __version__,
        "source_sha256": ir.source_sha256 or "unknown", "tokens": samples.tokens,
        "has_head": ir.head is not None, "steps": int(inputs.shape[1]),
        "samples": inputs.tolist(), "labels": [int(v) for v in samples.labels],
        "model_dir": model_dir, "model_sources": sorted(model_sources),
        "expected_h": expected.h[:, -1].tolist(),
        "expected_y": expected.y[:, -1].tolist() if expected.y is not None else [],
        "ctype": "int16_t" if ir.state_bits == 16 else "int8_t",  # x, state and y
    }
    return {name: env.get_template(f"{name}.j2").render(context)
            for name in ("main.c", "example.ld", "Makefile")}


def build_example(example_dir: Path | str) -> Path:
    """``make`` the example in ``example_dir``; returns the ELF."""
    find_toolchain()
    make = shutil.which("make")
    if make is None:
        raise ToolchainError("make was not found on PATH (apt-get install -y make)")
    proc = subprocess.run([make, "-s", "-C", str(example_dir)], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"building the example firmware failed:\n{proc.stderr.strip()}")
    return Path(example_dir) / "example.elf"


def run_example(elf: Path | str, timeout_s: float = 60.0) -> str:
    """Run the image under ``qemu-system-arm -M mps2-an386``; returns what it printed."""
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        raise ToolchainError(f"qemu-system-arm was not found on PATH; install it with: "
                             f"{QEMU_HINT}")
    cmd = [qemu, "-M", "mps2-an386", "-cpu", "cortex-m4", "-semihosting", "-nographic",
           "-monitor", "none", "-serial", "none", "-kernel", str(elf)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"the example firmware did not finish within {timeout_s:g} s "
                             "under QEMU") from None
    printed = proc.stdout + proc.stderr  # QEMU writes semihosting output to stderr
    if verdict(printed) is None:
        raise ToolchainError(f"the example firmware failed under QEMU (exit {proc.returncode}):"
                             f"\n{printed}".strip())
    return printed


_VERDICT = re.compile(r"^(PASS|FAIL \((\d+) mismatching values\))$")


def verdict(printed: str) -> int | None:
    """The example's last line: 0 for ``PASS``, n for ``FAIL (n mismatching values)``, None
    when it did not get there."""
    lines = [line.strip() for line in printed.splitlines() if line.strip()]
    m = _VERDICT.match(lines[-1]) if lines else None
    if m is None:
        return None
    return 0 if m.group(1) == "PASS" else int(m.group(2))


@dataclass(frozen=True)
class PrintedSample:
    label: int
    argmax: int | None
    y: np.ndarray | None  # int8 (int16) outputs after the last step, as int64
    h: np.ndarray  # int8 (int16) state after the last step, as int64


_LINE = re.compile(r"^sample (\d+) (label|h)((?: -?\d+)*)(?: argmax (-?\d+) y((?: -?\d+)*))?$")


def parse_example_output(text: str) -> list[PrintedSample]:
    """The per-sample values the example printed, in sample order."""
    found: dict[int, dict[str, object]] = {}
    for raw in text.splitlines():
        m = _LINE.match(raw.strip())
        if not m:
            continue
        entry = found.setdefault(int(m.group(1)), {})
        values = [int(v) for v in m.group(3).split()]
        if m.group(2) == "h":
            entry["h"] = np.array(values, np.int64)
        else:
            entry["label"] = values[0]
            if m.group(4) is not None:
                entry["argmax"] = int(m.group(4))
                entry["y"] = np.array([int(v) for v in m.group(5).split()], np.int64)
    return [PrintedSample(label=int(e["label"]), argmax=e.get("argmax"),  # type: ignore[arg-type]
                          y=e.get("y"), h=e["h"])  # type: ignore[arg-type]
            for _, e in sorted(found.items())]
