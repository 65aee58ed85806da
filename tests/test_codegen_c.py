"""Rules of the generated C: determinism, prefixes, no float/division in the step,
several models in one program, the sanitizer, the float helpers."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from elman.firmware_codegen.generate import generate_c, generate_example
from elman.firmware_codegen.host import (
    STRICT_FLAGS,
    compile_program,
    run_host_c,
    run_host_c_tokens,
    run_program,
)
from elman.firmware_codegen.identifiers import validate_prefix
from elman.layers.random_model import random_model
from elman.runtime.simulator import Simulator

from elman.errors import ElmanError

# What the integer step may call on a Cortex-M0 (no divide, no FPU): memory helpers the
# compiler itself emits and 64-bit multiply/shift helpers. No division, no float.
ARM_HELPERS_ALLOWED = {"memcpy", "memset", "__aeabi_lmul", "__aeabi_llsl", "__aeabi_llsr",
                       "__aeabi_lasr", "__aeabi_memcpy", "__aeabi_memset", "__aeabi_memclr",
                       "__aeabi_memcpy4", "__aeabi_memset4", "__aeabi_memclr4"}


def _compile_object(cc: list[str], source_files: dict[str, str], unit: str) -> list[str]:
    """Undefined symbols of one compiled translation unit."""
    nm = "arm-none-eabi-nm" if "arm-none-eabi" in cc[0] else "nm"
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in source_files.items():
            Path(tmp, name).write_text(text)
        obj = Path(tmp, "unit.o")
        subprocess.run([*cc, "-c", str(Path(tmp, unit)), "-o", str(obj)], check=True,
                       capture_output=True, text=True)
        out = subprocess.run([nm, "-u", str(obj)], check=True, capture_output=True, text=True)
    return sorted(line.split()[-1] for line in out.stdout.splitlines() if line.strip())


def test_generation_is_deterministic():
    ir = random_model(6, 33, 5, seed=3)
    first = generate_c(ir, prefix="det", profile="tflite")
    second = generate_c(random_model(6, 33, 5, seed=3), prefix="det", profile="tflite")
    assert first == second
    assert set(first) == {"det_model.h", "det_model.c", "det_weights.h", "det_io.c"}
    banner = first["det_model.c"]
    assert "elman 0.1.0" in banner and "Profile: tflite" in banner
    assert ir.source_sha256 in banner
    assert generate_c(ir, prefix="det", profile="tflm") != first


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_step_sources_include_only_stdint_and_stddef(profile):
    files = generate_c(random_model(6, 33, 5, seed=3), prefix="inc", profile=profile)
    system = set()
    for name in ("inc_model.h", "inc_model.c", "inc_weights.h"):
        lines = files[name].splitlines()
        for before, line in zip(["", *lines], lines, strict=False):
            if line.strip().startswith("#include <"):
                header = line.split("<")[1].split(">")[0]
                if header == "avr/pgmspace.h":  # AVR only: weights in program memory
                    assert before == "#if defined(__AVR__)", before
                    continue
                if header == "arm_mve.h":  # Helium only: the compiler's intrinsics, no library
                    assert before == "#define INC_MVE 1", before
                    continue
                system.add(header)
    assert system <= {"stdint.h", "stddef.h"}, system


@pytest.mark.parametrize("prefix", ["3d", "int", "while", "_x", "__x", "_X", "a-b", "é",
                                    "", "a b", "x_", "a__b", "size_t", "uint8_t", "NULL",
                                    "INT32_MAX", "main", "x" * 25])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(ElmanError, match="prefix"):
        validate_prefix(prefix)
    with pytest.raises(ElmanError, match="prefix"):
        generate_c(random_model(1, 1, 1), prefix=prefix)


@pytest.mark.parametrize("prefix", ["elman", "gesture", "kws2", "Model_A", "m"])
def test_good_prefixes_are_accepted(prefix):
    assert validate_prefix(prefix) == prefix


def test_unknown_profile_is_refused():
    with pytest.raises(ElmanError, match="profile"):
        generate_c(random_model(1, 1, 1), profile="cmsis")


def test_step_uses_no_float_and_no_division_host():
    """-mgeneral-regs-only makes GCC refuse any floating-point value in the unit."""
    files = generate_c(random_model(7, 19, 3, seed=1), prefix="nf")
    cc = ["cc", *STRICT_FLAGS, "-O2", "-mgeneral-regs-only"]
    undefined = _compile_object(cc, files, "nf_model.c")
    assert set(undefined) <= {"memcpy", "memset"}, undefined


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_step_uses_no_float_and_no_division_cortex_m0(profile):
    """On a Cortex-M0 (no divide instruction, no FPU) any division or float would call
    an __aeabi_* helper; only memory and 64-bit multiply/shift helpers may appear."""
    ir = random_model(5, (17, 9), 4, seed=2, vocab_size=9)
    files = generate_c(ir, prefix="m0", profile=profile)
    cc = ["arm-none-eabi-gcc", "-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft",
          *STRICT_FLAGS, "-O2", "-ffreestanding"]
    undefined = _compile_object(cc, files, "m0_model.c")
    assert set(undefined) <= ARM_HELPERS_ALLOWED, undefined
    # the float helpers do need float: proof that the check sees float when it is there
    io_undefined = _compile_object(cc, files, "m0_io.c")
    assert any(s.startswith("__aeabi_f") for s in io_undefined), io_undefined


TWO_MODELS_MAIN = r"""
#include <stdio.h>
#include "left_model.h"
#include "right_model.h"

int main(void)
{
    left_state_t a;
    right_state_t b;
    int8_t x_left[LEFT_INPUT_DIM], y_left[LEFT_OUTPUT_DIM], y_right[RIGHT_OUTPUT_DIM];
    int t, i;
    left_reset(&a);
    right_reset(&b);
    for (t = 0; t < 5; ++t) {
        for (i = 0; i < (int)LEFT_INPUT_DIM; ++i) {
            x_left[i] = (int8_t)(t * 37 + i * 11 - 100);
        }
        left_step(&a, x_left, y_left);
        if (right_step_token(&b, (uint16_t)(t % (int)RIGHT_VOCAB_SIZE), y_right) != 0) {
            return 2;
        }
    }
    for (i = 0; i < (int)LEFT_STATE_SIZE; ++i) printf("%d ", a.h[i]);
    printf("\n");
    for (i = 0; i < (int)RIGHT_STATE_SIZE; ++i) printf("%d ", b.h[i]);
    printf("\n%u %u\n", (unsigned)left_argmax(y_left), (unsigned)right_argmax(y_right));
    return right_step_token(&b, (uint16_t)RIGHT_VOCAB_SIZE, y_right) == -1 ? 0 : 3;
}
"""


def test_two_models_link_into_one_program():
    left = random_model(3, (8, 5), 4, seed=21)
    right = random_model(2, 6, 7, seed=22, vocab_size=7)
    files = {**generate_c(left, prefix="left", profile="tflm"),
             **generate_c(right, prefix="right", profile="tflite"), "main.c": TWO_MODELS_MAIN}
    exe = compile_program(files, ["main.c", "left_model.c", "left_io.c", "right_model.c",
                                  "right_io.c"], libraries=("-lm",))
    lines = run_program(exe, b"", []).stdout.decode().splitlines()
    x = np.array([[[t * 37 + i * 11 - 100 for i in range(3)] for t in range(5)]], np.int8)
    sim_left = Simulator(left, "tflm").run(x)
    sim_right = Simulator(right, "tflite").run_tokens(np.arange(5)[None, :] % 7)
    assert [int(v) for v in lines[0].split()] == sim_left.h[0, -1].tolist()
    assert [int(v) for v in lines[1].split()] == sim_right.h[0, -1].tolist()
    assert lines[2] == f"{np.argmax(sim_left.y[0, -1])} {np.argmax(sim_right.y[0, -1])}"


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_sanitizers_find_nothing(profile):
    """-fsanitize=undefined,address (abort on the first report) over extreme models."""
    for seed, units in ((1, 37), (2, (37, 20, 11))):
        ir = random_model(9, units, 5, seed=seed, extreme=True)
        x_q = np.random.default_rng(seed).integers(-128, 128, size=(2, 6, 9), dtype=np.int8)
        c = run_host_c(ir, x_q, profile=profile, sanitize=True)
        sim = Simulator(ir, profile).run(x_q)
        np.testing.assert_array_equal(c.h, sim.h)
        np.testing.assert_array_equal(c.y, sim.y)
    text = random_model(4, (11, 6), 13, seed=3, vocab_size=13, extreme=True)
    ids = np.random.default_rng(3).integers(0, 13, size=(2, 7))
    c = run_host_c_tokens(text, ids, profile=profile, sanitize=True)
    np.testing.assert_array_equal(c.h, Simulator(text, profile).run_tokens(ids).h)


@pytest.mark.parametrize("profile", ["tflm", "tflite"])
def test_example_program_checks_itself(profile):
    for ir in (random_model(3, 10, 4, seed=5), random_model(2, 5, 6, seed=6, vocab_size=6),
               random_model(3, (6, 7), 4, seed=7, every_step=True)):
        files = {**generate_c(ir, prefix="ex", profile=profile),
                 **generate_example(ir, prefix="ex", profile=profile)}
        exe = compile_program(files, ["ex_example.c", "ex_model.c"])
        out = run_program(exe, b"", []).stdout.decode()
        assert "ex: ok (0 mismatching values)" in out


IO_MAIN = r"""
#include <stdio.h>
#include "io_model.h"

int main(void)
{
    float x[IO_INPUT_DIM], y_real[IO_OUTPUT_DIM];
    int8_t q[IO_INPUT_DIM], y[IO_OUTPUT_DIM];
    int i, k;
    while (scanf("%f", &x[0]) == 1) {
        for (i = 1; i < (int)IO_INPUT_DIM; ++i) {
            if (scanf("%f", &x[i]) != 1) return 2;
        }
        io_quantize_input(x, q);
        for (i = 0; i < (int)IO_INPUT_DIM; ++i) printf("%d ", q[i]);
        printf("\n");
    }
    for (k = 0; k < 256; ++k) {
        for (i = 0; i < (int)IO_OUTPUT_DIM; ++i) y[i] = (int8_t)(k - 128);
        io_dequantize_output(y, y_real);
        printf("%.9g\n", (double)y_real[0]);
    }
    return 0;
}
"""


def test_float_helpers_quantize_like_elman():
    """<prefix>_quantize_input equals normalize + QuantParams.quantize (float64 in Python)
    on real-valued samples, and dequantize_output is scale * (q - zero_point)."""
    ir = random_model(4, 3, 2, seed=8)
    files = {**generate_c(ir, prefix="io"), "main.c": IO_MAIN}
    exe = compile_program(files, ["main.c", "io_model.c", "io_io.c"], libraries=("-lm",))
    rng = np.random.default_rng(0)
    raw = (rng.normal(0, 2, size=(2000, 4)) * (ir.norm_std * 3)).astype(np.float32)
    raw[:5] = [np.inf, -np.inf, 1e30, -1e30]
    stdin = "\n".join(" ".join(f"{v:.9g}" for v in row) for row in raw).encode()
    lines = run_program(exe, stdin, []).stdout.decode().splitlines()
    got = np.array([[int(v) for v in line.split()] for line in lines[:2000]])
    normalized = ((raw.astype(np.float64) - ir.norm_mean) / ir.norm_std).astype(np.float32)
    want = ir.input_quant.quantize(normalized)
    np.testing.assert_array_equal(got, want)
    deq = np.array([float(v) for v in lines[2000:]])
    q = ir.output_quant
    np.testing.assert_allclose(deq, q.scale * (np.arange(-128, 128) - q.zero_point), rtol=1e-6)


SOFTMAX_MAIN = r"""
#include <stdio.h>
#include "sm_model.h"

int main(void)
{
    int8_t y[SM_OUTPUT_DIM];
    float p[SM_OUTPUT_DIM];
    int i, k;
    for (k = 0; k < 64; ++k) {
        for (i = 0; i < (int)SM_OUTPUT_DIM; ++i) y[i] = (int8_t)((k * 53 + i * 97) % 256 - 128);
        sm_softmax(y, p);
        for (i = 0; i < (int)SM_OUTPUT_DIM; ++i) printf("%.9g ", (double)p[i]);
        printf("\n");
    }
    return 0;
}
"""


def test_softmax_head_gets_a_float_softmax_helper():
    """A softmax head is compiled as logits (the integer step is unchanged); every head gets
    <prefix>_softmax in the float helper file: the softmax of the dequantized logits."""
    ir = random_model(3, (6, 5), 7, seed=9, every_step=True, activation="softmax")
    files = {**generate_c(ir, prefix="sm"), "main.c": SOFTMAX_MAIN}
    assert "sm_softmax" in files["sm_model.h"] and "expf" in files["sm_io.c"]
    assert "expf" not in files["sm_model.c"]
    linear = generate_c(random_model(3, (6, 5), 7, seed=9, every_step=True), prefix="sm")
    assert linear["sm_model.c"] == files["sm_model.c"]
    assert linear["sm_io.c"] == files["sm_io.c"]  # probabilities of a linear head's logits too
    assert "The model's own\n * softmax head" in files["sm_model.h"]
    assert "The model's own" not in linear["sm_model.h"]
    exe = compile_program(files, ["main.c", "sm_model.c", "sm_io.c"], libraries=("-lm",))
    got = np.array([[float(v) for v in line.split()]
                    for line in run_program(exe, b"", []).stdout.decode().splitlines()])
    k, i = np.arange(64)[:, None], np.arange(7)[None, :]
    y = ((k * 53 + i * 97) % 256 - 128).astype(np.int8)
    logits = ir.output_quant.dequantize(y)
    want = np.exp(logits - logits.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_header_works_from_cpp(tmp_path):
    """The API header is valid C++ (extern "C"): a C++ main links against the C objects."""
    ir = random_model(3, 6, 2, seed=4)
    for name, text in generate_c(ir, prefix="cpp").items():
        (tmp_path / name).write_text(text)
    (tmp_path / "main.cpp").write_text(
        '#include "cpp_model.h"\n#include <cstdio>\n'
        "int main() { cpp_state_t s; int8_t x[CPP_INPUT_DIM] = {1, 2, 3}; int8_t y[2];\n"
        "  cpp_reset(&s); cpp_step(&s, x, y); std::printf(\"%d\\n\", (int)s.h[0]); return 0; }\n")
    objs = []
    for unit in ("cpp_model.c", "cpp_io.c"):
        obj = tmp_path / (unit + ".o")
        subprocess.run(["cc", *STRICT_FLAGS, "-O2", "-c", str(tmp_path / unit), "-o", str(obj)],
                       check=True)
        objs.append(str(obj))
    exe = tmp_path / "prog"
    subprocess.run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-I",
                    str(tmp_path), str(tmp_path / "main.cpp"), *objs, "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    sim = Simulator(ir, "tflm").run(np.array([[[1, 2, 3]]], np.int8))
    assert int(out) == int(sim.h[0, 0, 0])
