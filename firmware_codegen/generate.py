"""The IR -> dependency-free C99 sources (pure; no files written here).

``generate_c(model, prefix=..., profile=...)`` renders the Jinja2 templates of
``templates/`` (package data, ``StrictUndefined``) over a view of the IR,
:class:`CModel`, whose properties give the C names and the integer arrays;
the templates only loop and format. The step runs the layers in order, each
rendered by its kind's partial (``elman.layers.<kind>/templates/``, loaded as
``<kind>/...``); the profile's own C comes from ``elman.profiles/templates/``
(loaded as ``profiles/<name>.c.j2``). Same IR, prefix and profile -> the same
bytes (no timestamps; the banner names the elman version, the profile and the
``.tflite``'s SHA-256).

Files: ``<prefix>_model.h`` (the API), ``<prefix>_model.c`` (the integer
step and its kernels), ``<prefix>_weights.h`` (const weights and tables,
included by the ``.c`` only) and ``<prefix>_io.c`` (float helpers outside the
step).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import jinja2
import numpy as np
from elman.firmware_codegen.identifiers import validate_prefix
from elman.layers import HEAD_KINDS, RECURRENT_KINDS, kind_module
from elman.profiles import PROFILE_NAMES, get_profile
from elman.quantize.ir import QuantizedModel

from elman import __version__
from elman.errors import ElmanError, ModelError

MAX_VOCAB = 2**16  # token ids are uint16_t in the C API
VALUES_PER_LINE = 16


def generate_c(
    ir: QuantizedModel,
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


class CModel:
    """The view of a :class:`QuantizedModel` that the templates render: each layer and the
    head as their kind's view (``elman.layers.<kind>.codegen.View``), in step order."""

    def __init__(self, model: QuantizedModel, prefix: str, profile: str, source_sha256: str):
        self.model = model
        self.p = prefix
        self.P = prefix.upper()
        self.profile = profile
        arithmetic = get_profile(profile)
        self.profile_description, self.profile_reference = arithmetic.title, arithmetic.reference
        self.source_sha256 = source_sha256
        self.elman_version = __version__
        self.layers = []
        for number, layer in enumerate(model.layers, start=1):
            below = self.layers[-1] if self.layers else None
            self.layers.append(kind_module(layer.kind, "codegen").View(
                layer, number, model, prefix, profile, below))
        self.top = self.layers[-1]  # the layer the head reads
        self.head = None if model.head is None else kind_module(
            model.head.kind, "codegen").View(model.head, prefix, profile, self.top)
        self.fully_connected = [fc for part in [*self.layers, *([self.head] if self.head else [])]
                                for fc in part.fcs]
        if model.vocab_size > MAX_VOCAB:
            raise ModelError(f"vocabulary of {model.vocab_size} tokens: the C token step takes "
                             f"a uint16_t token id, so at most {MAX_VOCAB}")

    # ---- dimensions and quantization ------------------------------------------------------
    int16 = property(lambda self: self.model.state_bits == 16)  # 16x8: int16 activations
    act_t = property(lambda self: "int16_t" if self.int16 else "int8_t")  # x, state, y
    act_name = property(lambda self: "int16" if self.int16 else "int8")
    act_min = property(lambda self: -32768 if self.int16 else -128)
    act_max = property(lambda self: 32767 if self.int16 else 127)
    task = property(lambda self: self.model.task)
    input_dim = property(lambda self: self.model.input_dim)
    layer_units = property(lambda self: list(self.model.layer_units))
    state_bytes = property(lambda self: self.model.state_bytes)
    output_dim = property(lambda self: self.model.output_dim)
    vocab_size = property(lambda self: self.model.vocab_size)
    macs_per_step = property(lambda self: self.model.macs_per_step)
    window_steps = property(lambda self: self.model.window_steps)
    input_stride = property(lambda self: self.model.input_stride)  # raw samples per step
    stride_mean = property(lambda self: self.model.stride_mode == "mean")
    stride_stack = property(lambda self: self.model.stride_mode == "stack"
                            and self.model.input_stride > 1)
    # each raw sample's channels followed by their first differences (made by the device)
    input_deltas = property(lambda self: self.model.input_deltas)
    # floats per raw sample as the model reads it: the raw channels, and with deltas their
    # differences (a stacked step holds input_stride of them)
    features = property(lambda self: self.input_dim // self.input_stride
                        if self.stride_stack else self.input_dim)
    # floats per raw sample of the recording
    raw_channels = property(lambda self: self.features // 2 if self.input_deltas
                            else self.features)
    head_every_step = property(lambda self: self.model.head_every_step)
    labels = property(lambda self: list(self.model.labels))
    is_text = property(lambda self: self.model.embedding is not None)
    has_head = property(lambda self: self.model.head is not None)
    has_normalization = property(lambda self: self.model.norm_mean is not None)
    input_scale = property(lambda self: self.model.input_quant.scale)
    input_zero_point = property(lambda self: int(self.model.input_quant.zero_point))
    state_scale = property(lambda self: self.model.state_quant.scale)
    state_zero_point = property(lambda self: int(self.model.state_quant.zero_point))
    output_scale = property(lambda self: self.model.output_quant.scale)
    output_zero_point = property(lambda self: int(self.model.output_quant.zero_point))

    @property
    def norm_mean(self) -> np.ndarray:
        return self.model.norm_mean

    @property
    def norm_std(self) -> np.ndarray:
        return self.model.norm_std

    @property
    def vocab_code_points(self) -> list[tuple[int, int]]:
        """A text model's (Unicode code point, token id) pairs sorted by code point (the C
        encoder's binary search table); empty when some token is not one character."""
        if not self.is_text or any(len(label) != 1 for label in self.labels):
            return []
        return sorted((ord(label), token) for token, label in enumerate(self.labels))

    @property
    def needs_left_shift(self) -> bool:
        """Whether any FULLY_CONNECTED requantizes with a multiplier of 1 or more."""
        return any(int(fc.shifts.max(initial=0)) > 0 for fc in self.fully_connected)

    @property
    def shifts_at_most_minus_2(self) -> bool:
        """Whether every FULLY_CONNECTED requantizes with a shift of -2 or less (a multiplier
        below 1/4): the tflm epilogue then rounds once (``<prefix>_scale_down``)."""
        return all(int(fc.shifts.max(initial=-2)) <= -2 for fc in self.fully_connected)

    @property
    def unaligned_vectors(self) -> bool:
        """Whether a vector the kernel copies (x, a layer's state) is not a multiple of 4."""
        return any(n % 4 for n in (self.input_dim, *self.layer_units))


# ---- Jinja2 environment and filters ---------------------------------------------------------
@functools.cache
def template_environment() -> jinja2.Environment:
    kinds = {kind: jinja2.PackageLoader(f"elman.layers.{kind}", "templates")
             for kind in RECURRENT_KINDS + HEAD_KINDS}
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([
            jinja2.PackageLoader("elman.firmware_codegen", "templates"),
            jinja2.PrefixLoader({"profiles": jinja2.PackageLoader("elman.profiles", "templates"),
                                 **kinds}),
        ]),
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
    env.filters["c_hex_array"] = lambda v: _lines(list(v), 4)
    env.filters["c_int64_array"] = lambda v: _lines(
        (f"INT64_C({int(x)})" for x in np.asarray(v).reshape(-1)), 4)
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


def generate_example(ir: QuantizedModel, *, prefix: str = "elman", profile: str = "tflm",
                     source_sha256: str | None = None) -> dict[str, str]:
    """``<prefix>_example.c``: a ``main`` that runs a fixed input sequence and checks the
    final state and outputs against the simulator's (exit status 0 when they agree)."""
    validate_prefix(prefix)
    text = render_example(ir, example_values(ir, profile), prefix=prefix, profile=profile,
                          source_sha256=source_sha256)
    return {f"{prefix}_example.c": text}


def example_values(ir: QuantizedModel, profile: str = "tflm") -> CExample:
    """The self-checks' fixed pseudo-random input and what the simulator computes for it."""
    from elman.runtime.simulator import Simulator

    rng = np.random.default_rng(EXAMPLE_SEED)
    sim = Simulator(ir, profile)
    if ir.embedding is not None:
        inputs = rng.integers(0, ir.vocab_size, size=(1, EXAMPLE_STEPS))
        out = sim.run_tokens(inputs)
    else:
        inputs = rng.integers(-128, 128, size=(1, EXAMPLE_STEPS, ir.input_dim), dtype=np.int8) \
            if ir.state_bits == 8 else \
            rng.integers(-32768, 32768, size=(1, EXAMPLE_STEPS, ir.input_dim), dtype=np.int16)
        out = sim.run(inputs)
    y = out.y[0, -1] if out.y is not None else np.zeros(0, ir.state_dtype)
    return CExample(EXAMPLE_STEPS, EXAMPLE_SEED, inputs.reshape(-1), out.h[0, -1], y)


def render_example(ir: QuantizedModel, example: CExample, *, prefix: str = "elman",
                   profile: str = "tflm", source_sha256: str | None = None) -> str:
    """The text of ``<prefix>_example.c`` for ``example``."""
    model = CModel(ir, prefix, profile, source_sha256 or ir.source_sha256 or "unknown")
    return template_environment().get_template("example.c.j2").render(m=model, ex=example)
