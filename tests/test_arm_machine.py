"""The Cortex-M build + emulator infrastructure on a hand-written int8 matrix-vector product."""

from __future__ import annotations

import numpy as np
import pytest
from elman.firmware_codegen.arm.build import build_image
from elman.firmware_codegen.arm.machine import Machine, _thumb_instruction_count
from elman.firmware_codegen.arm.toolchain import INSTALL_HINT, compile_flags, find_toolchain

from elman.errors import ToolchainError

MATVEC_C = r"""
#include <stdint.h>
void matvec(const int8_t *w, const int8_t *x, int32_t *out, int rows, int cols)
{
    int r, c;
    for (r = 0; r < rows; ++r) {
        int32_t acc = 0;
        for (c = 0; c < cols; ++c) {
            acc += (int32_t)w[r * cols + c] * (int32_t)x[c];
        }
        out[r] = acc;
    }
}
const int8_t table[256] = {1, 2, 3};
int32_t counter;
"""
HARNESS_C = r"""
#include <stdint.h>
int8_t armharness_w[48 * 40];
int8_t armharness_x[40];
int32_t armharness_out[48];
"""


@pytest.fixture(scope="module", params=["cortex-m0plus", "cortex-m4"])
def matvec_image(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    return build_image({"matvec.c": MATVEC_C}, out, cpu=request.param, opt="O2",
                       harness=HARNESS_C, entry_points=("matvec", "table", "counter"))


def _run(machine: Machine, w: np.ndarray, x: np.ndarray):
    machine.write("armharness_w", w.tobytes())
    machine.write("armharness_x", x.tobytes())
    res = machine.call("matvec", machine.address("armharness_w"), machine.address("armharness_x"),
                       machine.address("armharness_out"), w.shape[0], w.shape[1])
    out = np.frombuffer(machine.read("armharness_out", 4 * w.shape[0]), np.int32)
    return out, res


def test_emulated_matvec_is_exact_and_counted_deterministically(matvec_image):
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, (48, 40), dtype=np.int8)
    x = rng.integers(-128, 128, 40, dtype=np.int8)
    machine = Machine(matvec_image)
    out, first = _run(machine, w, x)
    np.testing.assert_array_equal(out, w.astype(np.int32) @ x.astype(np.int32))
    _, second = _run(Machine(matvec_image), w, x)
    assert first.instructions == second.instructions
    assert first.by_function == {"matvec": first.instructions}
    # a plain C int8 matvec costs 4 to 9 instructions per MAC on these cores
    assert 4 * 48 * 40 < first.instructions < 9 * 48 * 40
    assert 0 < machine.stack_high_water() < 64


def test_sizes_split_code_tables_and_state(matvec_image):
    s = matvec_image.sizes
    assert 20 < s.code < 200  # the one function (harness excluded)
    assert s.weights == 256  # the const table
    assert s.bss == 4  # the counter (the harness buffers are not the model's)
    assert s.flash == s.code + s.weights + s.data + s.other_flash
    assert s.ram == s.data + s.bss


def test_cortex_m0_rejects_thumb2_code(tmp_path):
    """The M0 model is a real ARMv6-M: code built for the M4 must fault on it."""
    image = build_image({"matvec.c": MATVEC_C}, tmp_path, cpu="cortex-m4", opt="O2",
                        harness=HARNESS_C, entry_points=("matvec",))
    m0 = Machine(type(image)(**{**image.__dict__, "cpu": "cortex-m0plus"}))
    w = np.ones((48, 40), np.int8)
    with pytest.raises(ToolchainError, match="faulted"):
        _run(m0, w, np.ones(40, np.int8))


def test_thumb_instruction_lengths():
    # movs r0,#1 (16-bit); smlad (32-bit, 0xfb2..); bx lr (16-bit)
    code = bytes.fromhex("0120") + bytes.fromhex("20fb0100") + bytes.fromhex("7047")
    assert _thumb_instruction_count(code) == 3


def test_missing_toolchain_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError) as exc:
        find_toolchain()
    assert INSTALL_HINT in str(exc.value)
    assert "apt-get install -y --no-install-recommends gcc-arm-none-eabi" in INSTALL_HINT


def test_unknown_cpu_is_a_clear_error():
    with pytest.raises(ToolchainError, match=r"cortex-m0plus \(Cortex-M0\+\), cortex-m4 "):
        compile_flags("cortex-m3", "O2")


def test_uncounted_machine_computes_the_same_and_counts_nothing(matvec_image):
    """`elman verify` emulates without the instruction-counting hook (~10x faster)."""
    rng = np.random.default_rng(2)
    w = rng.integers(-128, 128, (48, 40), dtype=np.int8)
    x = rng.integers(-128, 128, 40, dtype=np.int8)
    counted, res = _run(Machine(matvec_image), w, x)
    fast, quiet = _run(Machine(matvec_image, count_instructions=False), w, x)
    np.testing.assert_array_equal(fast, counted)
    assert res.instructions > 0 and quiet.instructions == 0 and quiet.by_function == {}


def test_uncounted_call_that_never_returns_is_stopped(tmp_path, monkeypatch):
    import elman.firmware_codegen.arm.machine as machine

    spin = "void spin(void) { volatile int go = 1; while (go) { } }\n"
    image = build_image({"spin.c": spin}, tmp_path, cpu="cortex-m4", opt="O2",
                        harness=HARNESS_C, entry_points=("spin",))
    monkeypatch.setattr(machine, "MAX_SECONDS_PER_CALL", 0.2)
    with pytest.raises(ToolchainError, match=r"spin did not return within 0.2 s"):
        Machine(image, count_instructions=False).call("spin")
