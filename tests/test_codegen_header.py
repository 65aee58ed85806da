"""The generated header says everything a caller needs (issue 16): a user-style main.c that
uses only the header (window length, classify, softmax, labels, version, the encoder) compiles
strictly for the host, a Cortex-M0+ and as C++, and computes the simulator's values."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from elman.firmware_codegen.api import codegen_run
from elman.firmware_codegen.generate import generate_c
from elman.firmware_codegen.host import STRICT_FLAGS, compile_program, run_program
from elman.layers.random_model import random_model
from elman.quantize.reader import read_ir
from elman.runtime.simulator import Simulator

from elman import __version__

USER_FLAGS = ("-Wall", "-Wextra", "-Werror")
M0PLUS = ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft")

# A firmware engineer's main: nothing but the header. Reads WINDOWS windows of raw floats from
# stdin (one window per line), classifies each, prints the answer, its name and probabilities.
USER_MAIN = r"""
#include <stdio.h>
#include "user_model.h"

#if USER_WINDOW_STEPS == 0
#error "expected a classifier trained on windows"
#endif

static float window[USER_WINDOW_STEPS * USER_INPUT_DIM];

int main(void)
{
    float probabilities[USER_OUTPUT_DIM];
    size_t i;
    int label;
    printf("%s %s %d %d %d %d %d\n", USER_VERSION, USER_MODEL_SHA256, USER_WINDOW_STEPS,
           USER_NUM_LAYERS, USER_STATE_SIZE, USER_STATE_BYTES, USER_NUM_LABELS);
    for (;;) {
        for (i = 0; i < USER_WINDOW_STEPS * USER_INPUT_DIM; ++i) {
            if (scanf("%f", &window[i]) != 1) {
                return user_classify(NULL, USER_WINDOW_STEPS, probabilities) == -1
                       && user_classify(window, 0, NULL) == -1 ? 0 : 3;
            }
        }
        label = user_classify(window, USER_WINDOW_STEPS, probabilities);
        if (label < 0) {
            return 2;
        }
        printf("%d %s", label, user_labels[label]);
        for (i = 0; i < USER_OUTPUT_DIM; ++i) {
            printf(" %.9g", (double)probabilities[i]);
        }
        printf("\n");
    }
}
"""


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")


def _expected(ir, raw: np.ndarray, profile: str = "tflm"):
    """What classify must answer: normalize in float32 as the C does, quantize, simulate."""
    normalized = ((raw.astype(np.float64) - ir.norm_mean) / ir.norm_std).astype(np.float32)
    y = Simulator(ir, profile).run(ir.input_quant.quantize(normalized)).y[:, -1]
    logits = ir.output_quant.dequantize(y).astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.argmax(y, axis=1), p / p.sum(axis=1, keepdims=True)


def _run_user_main(ir, raw: np.ndarray, profile: str = "tflm"):
    files = {**generate_c(ir, prefix="user", profile=profile), "main.c": USER_MAIN}
    exe = compile_program(files, ["main.c", "user_model.c", "user_io.c"], libraries=("-lm",))
    stdin = "\n".join(" ".join(f"{v:.9g}" for v in w.reshape(-1)) for w in raw).encode()
    lines = run_program(exe, stdin, []).stdout.decode().splitlines()
    first = lines[0].split()
    rows = [line.split(" ") for line in lines[1:]]
    labels = np.array([int(r[0]) for r in rows])
    names = [r[1] for r in rows]
    probabilities = np.array([[float(v) for v in r[2:]] for r in rows])
    return first, labels, names, probabilities


def test_user_main_classifies_like_the_simulator():
    ir = random_model(4, (9, 6), 5, seed=31, window_steps=12,
                      labels=("walk", "run", "sit", "stand", "fall"))
    rng = np.random.default_rng(5)
    raw = (rng.normal(0, 1.5, size=(60, 12, 4)) * ir.norm_std + ir.norm_mean).astype(np.float32)
    first, labels, names, probabilities = _run_user_main(ir, raw)
    assert first == [__version__, ir.source_sha256, "12", "2", "15", "15", "5"]
    want_labels, want_p = _expected(ir, raw)
    np.testing.assert_array_equal(labels, want_labels)
    assert len(set(labels.tolist())) > 1  # not a constant answer
    assert names == [ir.labels[k] for k in labels]
    np.testing.assert_allclose(probabilities, want_p, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(probabilities, axis=1), labels)


def test_header_states_the_window_and_the_padding_rule():
    window = generate_c(random_model(3, 4, 2, seed=1, window_steps=361), prefix="w")["w_model.h"]
    assert "#define W_WINDOW_STEPS 361 " in window
    assert "Padding rule: a shorter recording is not padded." in window
    assert '#define W_VERSION "' + __version__ + '"' in window
    streams = generate_c(random_model(3, 4, 2, seed=1, every_step=True), prefix="s")["s_model.h"]
    assert "#define S_WINDOW_STEPS 0 " in streams and "the model streams" in streams
    assert "int s_classify(const float *x, size_t steps, float *probabilities);" in streams


def test_labels_are_in_the_integer_only_build():
    """Class names (and a text model's vocabulary) link without the float helper file."""
    ir = random_model(3, 4, 3, seed=2, labels=("left", "right", "idle"))
    main = ('#include <stdio.h>\n#include "lab_model.h"\n'
            "int main(void) { size_t i; for (i = 0; i < LAB_NUM_LABELS; ++i) "
            'printf("%s\\n", lab_labels[i]); return 0; }\n')
    files = {**generate_c(ir, prefix="lab"), "main.c": main}
    assert "lab_labels" not in files["lab_io.c"]
    exe = compile_program(files, ["main.c", "lab_model.c"])  # no lab_io.c
    assert run_program(exe, b"", []).stdout.decode().splitlines() == ["left", "right", "idle"]


ENCODER_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "chars_model.h"

static void encode(const char *text, size_t length)
{
    uint16_t tokens[64];
    int32_t n = chars_encode(text, length, tokens, 64), i;
    printf("%d", (int)n);
    for (i = 0; i < n; ++i) printf(" %u", (unsigned)tokens[i]);
    printf("\n");
}

int main(void)
{
    char all[256];
    size_t length = 0, i;
    for (i = 0; i < CHARS_VOCAB_SIZE; ++i) { /* every vocabulary entry, in token order */
        memcpy(all + length, chars_labels[i], strlen(chars_labels[i]));
        length += strlen(chars_labels[i]);
    }
    encode(all, length);
    encode("a\xc3\xa9\"", 4);              /* a, e-acute, quote */
    encode("ab", 2);                       /* b: not in the vocabulary */
    encode("\xc3", 1);                     /* truncated UTF-8 */
    encode("\xc1\xa1", 2);                 /* overlong 'a' */
    encode("\xff", 1);                     /* not UTF-8 */
    encode("aaaa", 4);
    printf("%d %d\n", (int)chars_token_of(0xe9u), (int)chars_token_of(0x10ffffu));
    return 0;
}
"""


def test_text_encoder_maps_every_vocabulary_character():
    labels = ("a", "\"", "\\", "\n", "é")  # not in code point order
    ir = random_model(2, 3, 5, vocab_size=5, seed=7, labels=labels)
    files = {**generate_c(ir, prefix="chars"), "main.c": ENCODER_MAIN}
    exe = compile_program(files, ["main.c", "chars_model.c"])
    lines = run_program(exe, b"", []).stdout.decode().splitlines()
    assert lines == ["5 0 1 2 3 4", "3 0 4 1", "-1", "-1", "-1", "-1", "4 0 0 0 0", "4 -1"]


def test_encoder_stops_at_max_tokens():
    ir = random_model(2, 3, 4, vocab_size=4, seed=7, labels=("x", "y", "z", " "))
    main = ('#include <stdio.h>\n#include "mx_model.h"\n'
            'int main(void) { uint16_t t[3] = {9, 9, 9}; int32_t n = mx_encode("zyx zz", 6, t, 3);'
            ' printf("%d %u %u %u\\n", (int)n, t[0], t[1], t[2]); return 0; }\n')
    exe = compile_program({**generate_c(ir, prefix="mx"), "main.c": main}, ["main.c", "mx_model.c"])
    assert run_program(exe, b"", []).stdout.decode().split() == ["3", "2", "1", "0"]


CROSS_MAIN = r"""
#include <string.h>
#include "user_model.h"

/* the state's macros: USER_STATE_SIZE values, USER_STATE_BYTES bytes (int16 state: twice) */
typedef char state_size_is_the_array_length[
    sizeof(((user_state_t *)0)->h) / sizeof(((user_state_t *)0)->h[0]) == USER_STATE_SIZE ? 1 : -1];
typedef char state_bytes_are_bytes[sizeof(((user_state_t *)0)->h) == USER_STATE_BYTES ? 1 : -1];

volatile int answer;
volatile float certainty;
unsigned char saved[USER_STATE_BYTES]; /* e.g. a state kept across deep sleep */

int main(void)
{
    static float window[USER_WINDOW_STEPS * USER_INPUT_DIM];
    float probabilities[USER_OUTPUT_DIM];
    user_state_t state;
    size_t i;
    for (i = 0; i < USER_WINDOW_STEPS * USER_INPUT_DIM; ++i) {
        window[i] = (float)(i % 7u) * 0.25f;
    }
    user_reset(&state);
    memcpy(saved, state.h, USER_STATE_BYTES);
    answer = user_classify(window, USER_WINDOW_STEPS, probabilities);
    certainty = probabilities[answer];
    return user_labels[answer][0] == '\0' || saved[USER_STATE_BYTES - 1] != 0;
}
"""


@pytest.mark.parametrize("state_bits", [8, 16])
def test_state_macros_count_values_and_bytes(state_bits):
    """<P>_STATE_SIZE is the state's length in values, <P>_STATE_BYTES its size in bytes: equal
    for the int8 state, twice the values for the int16 state."""
    ir = random_model(4, (8, 5), 3, seed=4, window_steps=20, state_bits=state_bits)
    main = ('#include <stdio.h>\n#include "user_model.h"\nint main(void) { user_state_t s; '
            'printf("%d %d %d\\n", USER_STATE_SIZE, USER_STATE_BYTES, (int)sizeof s.h); '
            "return 0; }\n")
    exe = compile_program({**generate_c(ir, prefix="user"), "main.c": main},
                          ["main.c", "user_model.c"])
    size, nbytes, sizeof_h = (int(v) for v in run_program(exe, b"", []).stdout.split())
    assert size == 13
    assert nbytes == sizeof_h == size * state_bits // 8


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("state_bits", [8, 16])
def test_user_main_builds_for_cortex_m0plus(tmp_path, state_bits):
    ir = random_model(4, 8, 3, seed=4, window_steps=20, labels=("a", "b", "c"),
                      state_bits=state_bits)
    _write(tmp_path, {**generate_c(ir, prefix="user"), "main.c": CROSS_MAIN})
    elf = tmp_path / "user.elf"
    subprocess.run(["arm-none-eabi-gcc", *M0PLUS, *USER_FLAGS, *STRICT_FLAGS, "-O2",
                    "--specs=nosys.specs", "-I", str(tmp_path), str(tmp_path / "main.c"),
                    str(tmp_path / "user_model.c"), str(tmp_path / "user_io.c"), "-lm",
                    "-o", str(elf)], check=True, capture_output=True, text=True)
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True,
                             text=True).stdout
    assert " T user_classify" in symbols and " T user_softmax" in symbols


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("state_bits", [8, 16])
def test_user_main_as_cpp(tmp_path, state_bits):
    ir = random_model(4, 8, 3, seed=4, window_steps=20, labels=("a", "b", "c"),
                      state_bits=state_bits)
    _write(tmp_path, {**generate_c(ir, prefix="user"), "main.cpp": CROSS_MAIN})
    objs = []
    for unit in ("user_model.c", "user_io.c"):
        obj = tmp_path / f"{unit}.o"
        subprocess.run(["cc", *STRICT_FLAGS, "-O2", "-c", str(tmp_path / unit), "-o", str(obj)],
                       check=True)
        objs.append(str(obj))
    exe = tmp_path / "user"
    subprocess.run(["g++", "-std=c++11", *USER_FLAGS, "-Wpedantic", "-I", str(tmp_path),
                    str(tmp_path / "main.cpp"), *objs, "-lm", "-o", str(exe)], check=True)
    assert subprocess.run([str(exe)], check=False).returncode == 0


def test_real_run_header_window_equals_data_spec(bm_run, tmp_path):
    """BasicMotions: the header's window is the data spec's, and classify over the raw test
    windows answers what the simulator answers."""
    import json

    from elman.data.held_out import load_held_out

    codegen_run(bm_run, prefix="user", out_dir=tmp_path)
    spec = json.loads((bm_run / "data_spec.json").read_text())
    header = (tmp_path / "user_model.h").read_text()
    assert f"#define USER_WINDOW_STEPS {spec['input']['timesteps']} " in header
    ir = read_ir(bm_run / "model_int8.tflite")
    held = load_held_out(bm_run, limit=20)
    raw = (held.inputs.astype(np.float64) * ir.norm_std + ir.norm_mean).astype(np.float32)
    _, labels, names, probabilities = _run_user_main(ir, raw)
    want_labels, want_p = _expected(ir, raw)
    np.testing.assert_array_equal(labels, want_labels)
    assert names == [spec["classes"][k] for k in labels]
    np.testing.assert_allclose(probabilities, want_p, rtol=1e-5, atol=1e-7)
    assert (labels == held.targets).mean() >= 0.8  # a trained model, real answers


def test_real_text_run_encodes_the_validation_text(text_run, tmp_path):
    from elman.data.held_out import load_held_out

    codegen_run(text_run, prefix="chars", out_dir=tmp_path)
    held = load_held_out(text_run, limit=60)
    text = "".join(held.names[i] for i in held.inputs[0])
    main = ('#include <stdio.h>\n#include "chars_model.h"\nstatic const char text[] = '
            + _c_string(text) + ';\nint main(void) { uint16_t t[64]; int32_t n = chars_encode('
            'text, sizeof text - 1, t, 64), i; printf("%d", (int)n); '
            'for (i = 0; i < n; ++i) printf(" %u", t[i]); printf("\\n"); return 0; }\n')
    files = {p.name: p.read_text() for p in tmp_path.iterdir()} | {"main.c": main}
    exe = compile_program(files, ["main.c", "chars_model.c"])
    got = [int(v) for v in run_program(exe, b"", []).stdout.decode().split()]
    assert got == [60, *held.inputs[0].tolist()]


def _c_string(text: str) -> str:
    from elman.firmware_codegen.generate import c_string

    return c_string(text)
