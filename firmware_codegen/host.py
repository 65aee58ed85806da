"""Compile the generated C for this machine and run it: the "generated C" of verification.

``run_host_c(ir, x_q)`` generates the C of ``ir``, compiles it with a small
harness (``templates/host_harness.c.j2``) under the strict warning set
``-std=c99 -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror`` (or with
``-fsanitize=undefined,address``), pipes the int8 inputs through stdin and
reads every step's state (every layer's ``h``) and ``y`` back from stdout. Compiled harnesses are
cached by the SHA-256 of their sources and flags, so one model compiles once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elman.firmware_codegen.generate import CModel, generate_c, template_environment
from elman.quantize.ir import QuantizedModel
from elman.runtime.outputs import StepOutputs

from elman.errors import DataError, ToolchainError

STRICT_FLAGS = (
    "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wconversion", "-Wshadow", "-Werror",
    "-Wdouble-promotion", "-Wpointer-arith", "-Wstrict-prototypes", "-Wmissing-prototypes",
    "-Wcast-qual",
)
SANITIZE_FLAGS = ("-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=undefined,address",
                  "-fno-sanitize-recover=all")
MODE_TOKENS = 1
MODE_HEAD_ON_LAST_STEP = 2
CACHE_ENV = "ELMAN_HOST_CACHE"


@dataclass(frozen=True)
class HostBuild:
    """A compiled harness: the executable and the generated sources it was built from."""

    executable: Path
    sources: dict[str, str]


def compiler() -> str:
    """The C compiler: ``$CC`` or ``cc``; a clear ToolchainError when there is none."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise ToolchainError(f"C compiler {cc!r} not found: install gcc (or set CC)")
    return cc


def build_host_harness(
    ir: QuantizedModel,
    *,
    profile: str = "tflm",
    prefix: str = "elman",
    sanitize: bool = False,
    opt: str = "-O2",
) -> HostBuild:
    """Generate and compile the C of ``ir`` plus the host harness (cached by content)."""
    sources = generate_c(ir, prefix=prefix, profile=profile)
    model = CModel(ir, prefix, profile, ir.source_sha256 or "unknown")
    harness = template_environment().get_template("host_harness.c.j2").render(m=model)
    files = dict(sources, **{"harness.c": harness})
    units = ["harness.c", f"{prefix}_model.c", f"{prefix}_io.c"]
    exe = compile_program(files, units, sanitize=sanitize, opt=opt, libraries=("-lm",))
    return HostBuild(exe, sources)


def run_host_c(
    ir: QuantizedModel,
    x_q: np.ndarray,
    *,
    profile: str = "tflm",
    prefix: str = "elman",
    sanitize: bool = False,
    head_on_last_step: bool = False,
):
    """Run the generated C over int8 inputs ``x_q`` (B, T, input_dim) -> StepOutputs.

    With ``head_on_last_step`` the C is called with ``y = NULL`` except on each
    sequence's last step (``y`` of the other steps comes back as zeros).
    """
    x_q = np.asarray(x_q)
    if x_q.ndim != 3 or x_q.shape[2] != ir.input_dim or x_q.dtype != ir.state_dtype:
        raise DataError(f"x_q must be {np.dtype(ir.state_dtype).name} (batch, steps, "
                        f"{ir.input_dim}), got {x_q.dtype} {x_q.shape}")
    mode = MODE_HEAD_ON_LAST_STEP if head_on_last_step else 0
    return _run(ir, x_q.shape[:2], mode, x_q.tobytes(), profile, prefix, sanitize)


def run_host_c_tokens(
    ir: QuantizedModel,
    ids: np.ndarray,
    *,
    profile: str = "tflm",
    prefix: str = "elman",
    sanitize: bool = False,
):
    """Run the generated C's token step over token ids (B, T) -> StepOutputs (text models)."""
    ids = np.asarray(ids)
    if ir.embedding is None:
        raise DataError("token inputs need a text model (this model has no embedding)")
    if ids.ndim != 2 or ids.size and (ids.min() < 0 or ids.max() >= ir.vocab_size):
        raise DataError(f"ids must be (batch, steps) token ids in [0, {ir.vocab_size})")
    data = ids.astype(np.uint16).tobytes()
    return _run(ir, ids.shape, MODE_TOKENS, data, profile, prefix, sanitize)


def bench_host_c(ir: QuantizedModel, x_q: np.ndarray, repeats: int, *, profile: str = "tflm",
                 prefix: str = "elman", opt: str = "-O2") -> float:
    """Nanoseconds per step of the compiled C (inputs preloaded, batch 1 streams)."""
    build = build_host_harness(ir, profile=profile, prefix=prefix, opt=opt)
    stdin = _header(0, x_q.shape[:2]) + np.asarray(x_q, ir.state_dtype).tobytes()
    proc = run_program(build.executable, stdin, ["bench", str(int(repeats))])
    return float(proc.stdout.split()[0])


# ---- internals -------------------------------------------------------------------------------
def _run(ir, batch_steps, mode, data, profile, prefix, sanitize):
    b, t = (int(v) for v in batch_steps)
    build = build_host_harness(ir, profile=profile, prefix=prefix, sanitize=sanitize)
    proc = run_program(build.executable, _header(mode, (b, t)) + data, [])
    width = ir.state_bytes + ir.output_dim
    out = np.frombuffer(proc.stdout, dtype=ir.state_dtype)
    if out.size != b * t * width:
        raise ToolchainError(f"host harness returned {out.size} values, expected {b * t * width}")
    out = out.reshape(b, t, width)
    h = out[:, :, : ir.state_bytes].copy()
    y = out[:, :, ir.state_bytes:].copy() if ir.head is not None else None
    return StepOutputs(h=h, y=y)


def _header(mode: int, batch_steps) -> bytes:
    return np.array([mode, *batch_steps], dtype=np.int32).tobytes()


def run_program(exe: Path, stdin: bytes, args: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(exe), *args], input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(
            f"the compiled model failed (exit {proc.returncode}):\n"
            + proc.stderr.decode(errors="replace")[-4000:]
        )
    return proc


def _cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root)
    return Path(tempfile.gettempdir()) / f"elman-host-c-{os.getuid()}"


def compile_program(files: dict[str, str], units: list[str], *, sanitize: bool = False,
                    opt: str = "-O2", extra_flags: tuple[str, ...] = (),
                    libraries: tuple[str, ...] = ()) -> Path:
    """Compile C ``files`` (name -> text; ``units`` are the translation units) into an
    executable with the strict flags, linked with ``libraries`` (e.g. ``-lm``); cached by
    the SHA-256 of sources, flags and compiler."""
    cc = compiler()
    flags = [*STRICT_FLAGS, *(SANITIZE_FLAGS if sanitize else (opt,)), *extra_flags]
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    digest.update("\0".join([cc, *flags, *units, *libraries]).encode())
    exe = _cache_dir() / digest.hexdigest()[:32] / "program"
    if not exe.exists():
        _compile(cc, flags, files, units, exe, libraries)
    return exe


def _compile(cc: str, flags: list[str], files: dict[str, str], units: list[str],
             exe: Path, libraries: tuple[str, ...] = ()) -> None:
    exe.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=exe.parent) as tmp:
        src = Path(tmp)
        for name, text in files.items():
            (src / name).write_text(text, encoding="utf-8")
        out = src / "program"
        cmd = [cc, *flags, "-I", str(src), *(str(src / u) for u in units), "-o", str(out),
               *libraries]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ToolchainError(f"compiling the generated C failed:\n{' '.join(cmd)}\n"
                                 f"{proc.stderr[-6000:]}")
        os.replace(out, exe)  # atomic: parallel test workers may race to the same cache entry
