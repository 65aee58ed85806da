"""The IR -> dependency-free C99 sources (pure; no files written here).

``generate_c(ir, prefix=..., profile=...)`` renders the Jinja2 templates of
``templates/`` (package data, ``StrictUndefined``) over a view of the IR,
:class:`CModel`, whose properties give the C names and the integer arrays;
the templates only loop and format. Same IR, prefix and profile -> the same
bytes (no timestamps; the banner names the elman version, the profile and the
``.tflite``'s SHA-256).

Files: ``<prefix>_model.h`` (the API), ``<prefix>_model.c`` (the integer
step and its kernels), ``<prefix>_weights.h`` (const weights and tables,
included by the ``.c`` only) and ``<prefix>_io.c`` (float helpers outside the
step).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import jinja2
import numpy as np
from elman.firmware_codegen import tables
from elman.firmware_codegen.identifiers import validate_prefix
from elman.profiles import PROFILE_NAMES, get_profile
from elman.profiles.base import AddRescale
from elman.quantize.ir import FullyConnected, QuantizedRNN

from elman import __version__
from elman.errors import ElmanError, ModelError

INT32_MAX = 2**31 - 1
MAX_VOCAB = 2**16  # token ids are uint16_t in the C API
VALUES_PER_LINE = 16


def generate_c(
    ir: QuantizedRNN,
    *,
    prefix: str = "elman",
    profile: str = "tflm",
    source_sha256: str | None = None,
) -> dict[str, str]:
    """Render the C sources of ``ir``: file name -> text, deterministic."""
    validate_prefix(prefix)
    if profile not in PROFILE_NAMES:
        raise ElmanError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
    model = CModel(ir, prefix, profile, source_sha256 or ir.source_sha256 or "unknown")
    env = template_environment()
    return {
        f"{prefix}{suffix}": env.get_template(template).render(m=model)
        for suffix, template in (
            ("_model.h", "model.h.j2"),
            ("_model.c", "model.c.j2"),
            ("_weights.h", "weights.h.j2"),
            ("_io.c", "io.c.j2"),
        )
    }


@dataclass(frozen=True)
class CLayer:
    """One FULLY_CONNECTED as the C stores it (input zero point folded into the bias)."""

    name: str  # C name part: input / recurrent / head
    title: str
    fc: FullyConnected
    profile: str

    @property
    def out_features(self) -> int:
        return self.fc.out_features

    @property
    def in_features(self) -> int:
        return self.fc.in_features

    @property
    def input_zero_point(self) -> int:
        return int(self.fc.input.zero_point)

    @property
    def output_zero_point(self) -> int:
        return int(self.fc.output.zero_point)

    @property
    def weights(self) -> np.ndarray:
        return self.fc.weights.reshape(-1)

    # ---- the layout the matrix-vector kernel reads (kernels/matvec_s8.c.j2) ---------------
    @property
    def row_groups(self) -> int:
        return -(-self.out_features // 4)

    @property
    def col_words(self) -> int:
        return -(-self.in_features // 4)

    @property
    def rows_padded(self) -> int:
        return 4 * self.row_groups

    @property
    def cols_padded(self) -> int:
        return 4 * self.col_words

    @property
    def blocked_weights(self) -> np.ndarray:
        """int8 weights, zero-padded to multiples of 4, in 4x4 blocks: for each group of 4
        rows, for each 4 columns, 4 bytes of each of the 4 rows."""
        w = np.zeros((self.rows_padded, self.cols_padded), np.int8)
        w[: self.out_features, : self.in_features] = self.fc.weights
        blocks = w.reshape(self.row_groups, 4, self.col_words, 4).transpose(0, 2, 1, 3)
        return blocks.reshape(-1)

    @property
    def padded_bias(self) -> np.ndarray:
        """The folded bias, zero-padded to a multiple of 4 rows (the accumulators' start)."""
        out = np.zeros(self.rows_padded, np.int64)
        out[: self.out_features] = self.bias
        return out

    @functools.cached_property
    def bias(self) -> np.ndarray:
        """int32 bias - zp_in * sum(row), checked so that no accumulator can overflow int32."""
        w = self.fc.weights.astype(np.int64)
        bias = self.fc.bias.astype(np.int64) if self.fc.has_bias else np.zeros(len(w), np.int64)
        folded = bias - self.input_zero_point * w.sum(axis=1)
        worst = np.abs(folded) + 128 * np.abs(w).sum(axis=1)
        if worst.max(initial=0) > INT32_MAX:
            c = int(np.argmax(worst))
            raise ModelError(
                f"{self.title}: the int32 accumulator of output {c} can overflow "
                f"(|bias| {abs(int(folded[c]))} + max |dot| {int(worst[c] - abs(folded[c]))} "
                "exceeds 2^31 - 1); the model's bias is out of the range int8 kernels support"
            )
        return folded

    @functools.cached_property
    def requantization(self):
        req = get_profile(self.profile).fully_connected(self.fc)
        if req.shifts.size and req.shifts.max() > 30:
            raise ModelError(f"{self.title}: requantization scale "
                             f"{float(req.scales.max()):g} is 2^31 or more")
        return req

    @property
    def multipliers(self) -> np.ndarray:
        return self.requantization.multipliers

    @property
    def shifts(self) -> np.ndarray:
        return self.requantization.shifts

    @functools.cached_property
    def _double_scales(self) -> list[tuple[int, int]]:
        """Each float64 effective scale as (53-bit mantissa, exponent), 0 for tiny scales."""
        out = []
        for s in self.requantization.scales:
            fraction, exp = math.frexp(float(s))
            mantissa, exponent = int(fraction * 2**53), exp - 53
            if mantissa == 0 or exponent < -128:  # |acc| * s < 2^31 * 2^-75: rounds to 0
                mantissa, exponent = 0, 0
            if exponent > 127:
                raise ModelError(f"{self.title}: requantization scale {float(s):g} is too large")
            out.append((mantissa, exponent))
        return out

    @property
    def double_mantissas(self) -> list[tuple[int, int]]:
        """The tflite profile's {hi, lo} halves of each scale's 53-bit mantissa."""
        return [(m >> 32, m & 0xFFFFFFFF) for m, _ in self._double_scales]

    @property
    def double_exponents(self) -> np.ndarray:
        return np.array([e for _, e in self._double_scales], dtype=np.int64)


class CModel:
    """The view of a :class:`QuantizedRNN` that the templates render."""

    def __init__(self, ir: QuantizedRNN, prefix: str, profile: str, source_sha256: str):
        self.ir = ir
        self.p = prefix
        self.P = prefix.upper()
        self.profile = profile
        arithmetic = get_profile(profile)
        self.profile_description, self.profile_reference = arithmetic.title, arithmetic.reference
        self.source_sha256 = source_sha256
        self.elman_version = __version__
        self.input_fc = CLayer("input", "input layer W_x (with the RNN bias)", ir.input_fc, profile)
        self.recurrent_fc = CLayer("recurrent", "recurrent layer W_h", ir.recurrent_fc, profile)
        self.head = None if ir.head is None else CLayer("head", "head W_y", ir.head, profile)
        self.layers = [self.input_fc, self.recurrent_fc] + ([self.head] if self.head else [])
        self.add = _c_add(ir, profile)
        self._check_state_feedback()
        if ir.vocab_size > MAX_VOCAB:
            raise ModelError(f"vocabulary of {ir.vocab_size} tokens: the C token step takes a "
                             f"uint16_t token id, so at most {MAX_VOCAB}")

    def _check_state_feedback(self) -> None:
        ir = self.ir
        state, tanh_out = ir.state_quant, ir.tanh.output
        if (float(state.scale), int(state.zero_point)) != (
            float(tanh_out.scale), int(tanh_out.zero_point)
        ):
            raise ModelError(
                f"the state input is quantized ({state.scale}, {state.zero_point}) but TANH "
                f"outputs ({tanh_out.scale}, {tanh_out.zero_point}): h' cannot feed back as h"
            )

    # ---- dimensions and quantization ------------------------------------------------------
    task = property(lambda self: self.ir.task)
    input_dim = property(lambda self: self.ir.input_dim)
    units = property(lambda self: self.ir.units)
    output_dim = property(lambda self: self.ir.output_dim)
    vocab_size = property(lambda self: self.ir.vocab_size)
    macs_per_step = property(lambda self: self.ir.macs_per_step)
    labels = property(lambda self: list(self.ir.labels))
    is_text = property(lambda self: self.ir.embedding is not None)
    has_head = property(lambda self: self.ir.head is not None)
    has_normalization = property(lambda self: self.ir.norm_mean is not None)
    input_scale = property(lambda self: self.ir.input_quant.scale)
    input_zero_point = property(lambda self: int(self.ir.input_quant.zero_point))
    state_scale = property(lambda self: self.ir.state_quant.scale)
    state_zero_point = property(lambda self: int(self.ir.state_quant.zero_point))
    output_scale = property(lambda self: self.ir.head.output.scale)
    output_zero_point = property(lambda self: int(self.ir.head.output.zero_point))
    tanh_input_scale = property(lambda self: self.ir.tanh.input.scale)
    tanh_input_zero_point = property(lambda self: int(self.ir.tanh.input.zero_point))

    @property
    def norm_mean(self) -> np.ndarray:
        return self.ir.norm_mean

    @property
    def norm_std(self) -> np.ndarray:
        return self.ir.norm_std

    # ---- tables computed at generation time (from the simulator's primitives) ---------------
    @functools.cached_property
    def tanh_table(self) -> np.ndarray:
        return tables.tanh_table(self.ir, self.profile)

    @functools.cached_property
    def add_input_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """ADD's first-stage rescale of every int8 ``a`` and ``r`` (index value + 128)."""
        return self.add.input_table(1), self.add.input_table(2)

    @property
    def needs_left_shift(self) -> bool:
        """Whether any layer requantizes with a multiplier of 1 or more (a left shift)."""
        return any(int(layer.shifts.max(initial=0)) > 0 for layer in self.layers)

    @property
    def units_padded(self) -> int:
        return 4 * (-(-self.units // 4))

    @functools.cached_property
    def token_input(self) -> np.ndarray:
        return tables.token_input_table(self.ir, self.profile).reshape(-1)


def _c_add(ir: QuantizedRNN, profile: str) -> AddRescale:
    add = get_profile(profile).add(ir.add)
    if not add.below_one:
        raise ModelError("ADD: an input or output rescale is not below one; TFLite rejects "
                         "such an ADD, and so does elman")
    return add


# ---- Jinja2 environment and filters ---------------------------------------------------------
@functools.cache
def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("elman.firmware_codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
        lstrip_blocks=False,
        autoescape=False,
    )
    env.filters["c_array"] = c_int_array
    env.filters["c_float"] = c_float
    env.filters["c_float_array"] = lambda v: _lines([c_float(x) for x in v], 4)
    env.filters["c_string_array"] = lambda v: _lines([c_string(s) for s in v], 8)
    env.filters["c_pair_array"] = lambda v: _lines([f"{{{a}u, {b}u}}" for a, b in v], 4)
    return env


def _lines(items: Iterable[str], per_line: int) -> str:
    items = list(items)
    rows = [items[i:i + per_line] for i in range(0, len(items), per_line)]
    return "\n".join("    " + ", ".join(row) + "," for row in rows)


def c_int_array(values: np.ndarray) -> str:
    """Integers as the body of a C initializer, 16 per line (INT32_MIN spelled safely)."""
    return _lines((_c_int(int(v)) for v in np.asarray(values).reshape(-1)), VALUES_PER_LINE)


def _c_int(v: int) -> str:
    return "(-2147483647 - 1)" if v == -(2**31) else str(v)


def c_float(value: float) -> str:
    """A float32 as a C literal that reads back as exactly the same float32."""
    v = np.float32(value)
    if not np.isfinite(v):
        raise ModelError(f"non-finite float {value!r} in the model")
    return np.format_float_scientific(v, unique=True, trim="0") + "f"


def c_string(text: str) -> str:
    """A C string literal of ``text``'s UTF-8 bytes; non-printables as 3-digit octal escapes."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


EXAMPLE_STEPS = 16
EXAMPLE_SEED = 0


@dataclass(frozen=True)
class CExample:
    steps: int
    seed: int
    inputs: np.ndarray  # int8 (steps * input_dim,) or token ids (steps,)
    h: np.ndarray
    y: np.ndarray


def generate_example(ir: QuantizedRNN, *, prefix: str = "elman", profile: str = "tflm",
                     source_sha256: str | None = None) -> dict[str, str]:
    """``<prefix>_example.c``: a ``main`` that runs a fixed input sequence and checks the
    final state and outputs against the simulator's (exit status 0 when they agree)."""
    from elman.runtime.simulator import Simulator

    validate_prefix(prefix)
    model = CModel(ir, prefix, profile, source_sha256 or ir.source_sha256 or "unknown")
    rng = np.random.default_rng(EXAMPLE_SEED)
    sim = Simulator(ir, profile)
    if ir.embedding is not None:
        inputs = rng.integers(0, ir.vocab_size, size=(1, EXAMPLE_STEPS))
        out = sim.run_tokens(inputs)
    else:
        inputs = rng.integers(-128, 128, size=(1, EXAMPLE_STEPS, ir.input_dim), dtype=np.int8)
        out = sim.run(inputs)
    y = out.y[0, -1] if out.y is not None else np.zeros(0, np.int8)
    example = CExample(EXAMPLE_STEPS, EXAMPLE_SEED, inputs.reshape(-1), out.h[0, -1], y)
    text = template_environment().get_template("example.c.j2").render(m=model, ex=example)
    return {f"{prefix}_example.c": text}
