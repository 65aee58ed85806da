"""bench/peers without the peers' source trees (those are not on PyPI; the bench itself
runs by hand): the skip lines and elman's own rows on a real run, the linker-map size
split, the arena bisection, TFLM's pins and the object closure's symbol lookups."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PEERS = Path(__file__).resolve().parents[1] / "bench" / "peers"
sys.path.insert(0, str(PEERS))

import image  # noqa: E402
import markdown  # noqa: E402
import run as peers_run  # noqa: E402
import sources  # noqa: E402
import tflm_build  # noqa: E402
from nnom_peer import quantize_input  # noqa: E402


def test_without_sources_every_peer_is_skipped_and_elman_is_measured(bm_run, tmp_path,
                                                                       capsys):
    out = tmp_path / "peers.json"
    rc = peers_run.main([str(bm_run), "--cpu", "cortex-m4", "--opt", "O2", "--sequences", "2",
                         "--work", str(tmp_path / "work"), "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    for name, flag in (("TFLM", "--tflm"), ("NNoM", "--nnom"), ("keras2c", "--keras2c")):
        assert f"{name}: skipped (no {flag} DIR given" in text
    report = json.loads(out.read_text())
    assert set(report["skipped"]) == {"TFLM", "NNoM", "keras2c"}
    every, last = report["rows"]
    assert (every["head"], last["head"]) == ("every step", "last step")
    for row in (every, last):
        assert row["peer"] == "elman" and row["cpu"] == "cortex-m4" and row["opt"] == "O2"
        assert row["check"]["mismatches"] == 0
        assert row["ram"] == sum(row["ram_split"].values())
        assert row["flash"] == sum(row["flash_split"].values())
    assert every["check"]["values"] == 2 * 100 * (16 + 4)
    assert last["check"]["values"] == 2 * (100 * 16 + 4)
    assert every["flash"] == last["flash"]
    assert 1000 < last["instructions_per_step"] < every["instructions_per_step"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PEERS, text=True,
                          capture_output=True, check=True).stdout.strip()
    assert report["elman"]["commit"] == head  # the numbers name the code that made them
    assert isinstance(report["elman"]["changed_files"], list)
    where = markdown.provenance(report)
    assert where.startswith(f"16 units: measured {report['date']} on 2 test sequences x 100")
    assert f"elman {head[:12]}" in where and "; not measured: NNoM, TFLM, keras2c; " in where
    assert report["toolchain"] in where
    md = markdown.o2_table(report, "cortex-m4").splitlines()
    assert md[0].startswith("| 16 units, Cortex-M4, −O2 | flash B | RAM B |")
    assert md[2].startswith(f"| elman (`tflm` profile) | **{every['flash']:,}** (")
    assert md[3].startswith("| elman (`tflm` profile) † |") and len(md) == 4


def test_a_peer_that_fails_keeps_every_row_measured_and_says_so(bm_run, tmp_path, capsys):
    # a keras2c environment whose Python fails: the converter's failure, after elman's rows
    keras2c = tmp_path / "keras2c"
    (keras2c / "include").mkdir(parents=True)
    (keras2c / "include" / "k2c_include.h").write_text("/* */\n")
    python = tmp_path / "envs" / "keras2c" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho 'no TensorFlow here' >&2\nexit 3\n")
    python.chmod(0o755)
    out = tmp_path / "peers.json"
    rc = peers_run.main([str(bm_run), "--cpu", "cortex-m4", "--opt", "O2", "--sequences", "1",
                         "--keras2c", str(keras2c), "--envs", str(tmp_path / "envs"),
                         "--work", str(tmp_path / "work"), "--json", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "error: keras2c: keras2c failed" in err and "no TensorFlow here" in err
    report = json.loads(out.read_text())
    assert list(report["failed"]) == ["keras2c"]
    assert [r["peer"] for r in report["rows"]] == ["elman", "elman"]
    assert not list(tmp_path.glob("*.part"))


def test_refresh_elman_replaces_only_elmans_rows(bm_run, tmp_path, capsys):
    out = tmp_path / "peers.json"
    argv = [str(bm_run), "--cpu", "cortex-m4", "--opt", "O2", "--sequences", "1"]
    assert peers_run.main([*argv, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    elman = report["rows"]
    peer = {**elman[0], "peer": "TFLM", "variant": "reference kernels", "flash": 48_908}
    report["rows"] = [*elman, peer]
    for row in elman:  # as if measured on older C
        row["instructions_per_step"] += 1000
    report["elman"] = {"commit": "0" * 40, "changed_files": []}
    out.write_text(json.dumps(report))
    assert peers_run.main([*argv, "--refresh-elman", str(out)]) == 0
    fresh = json.loads(out.read_text())
    assert fresh["rows"][-1] == peer  # the peer's row, untouched
    assert [(r["peer"], r["head"]) for r in fresh["rows"]] == [
        ("elman", "every step"), ("elman", "last step"), ("TFLM", "every step")]
    for new, old in zip(fresh["rows"][:2], elman, strict=True):
        assert new["instructions_per_step"] == old["instructions_per_step"] - 1000
        assert new["check"]["mismatches"] == 0
    assert fresh["elman"]["commit"] != "0" * 40 and fresh["elman_date"]
    assert fresh["peers_elman"]["commit"] == "0" * 40  # what the peers' rows ran with
    assert "the peers' with elman 000000000000" in markdown.provenance(fresh)
    # another number of test sequences is another measurement: refused
    capsys.readouterr()
    assert peers_run.main([str(bm_run), "--sequences", "2", "--refresh-elman", str(out)]) == 1
    assert "was measured on 1 test sequences" in capsys.readouterr().err


def test_a_missing_run_is_one_error_line(tmp_path, capsys):
    assert peers_run.main([str(tmp_path / "nothing"), "--json", str(tmp_path / "x.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "model_int8.tflite is missing" in err
    assert not (tmp_path / "x.json").exists()


C_SOURCE = """\
#include <string.h>
int counter = 3;
static char scratch[40];
const int table[4] = {1, 2, 3, 4};
int step(char *p, int n) { memcpy(scratch, p, (size_t)n); return table[n & 3] + counter++; }
"""
HARNESS = "char armharness_buffer[64];\n"


def test_the_map_split_adds_up_to_the_image_without_the_harness(tmp_path):
    (tmp_path / "step.c").write_text(C_SOURCE)
    (tmp_path / "armharness.c").write_text(HARNESS)
    flags = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"]
    objs = image.compile_c("arm-none-eabi-gcc", [*flags, "-O2", "-ffunction-sections",
                                                 "-fdata-sections"],
                           [tmp_path / "step.c", tmp_path / "armharness.c"], tmp_path)
    img = image.link(["arm-none-eabi-gcc", *flags], objs, tmp_path, cpu="cortex-m4",
                     opt="O2", entry_points=("step",))
    split = image.size_split(tmp_path / "image.map", img.elf,
                             lambda s: image.classify_runtime(s) or Path(s).name)
    assert set(split) == {"step.o", "libc/libm/libgcc"}
    s = img.sizes
    assert sum(p["flash"] for p in split.values()) == s.code + s.weights + s.data + s.other_flash
    assert sum(p["ram"] for p in split.values()) == s.data + s.bss
    assert split["step.o"]["ram"] == 4 + 40  # counter and scratch; the harness buffer is not
    assert split["libc/libm/libgcc"]["flash"] > 0  # memcpy


def test_instruction_limit_lets_one_long_call_finish_and_is_restored(tmp_path, monkeypatch):
    from elman.firmware_codegen.arm import machine
    from keras2c_peer import instruction_limit

    (tmp_path / "spin.c").write_text(
        "volatile int sink;\nint spin(int n) { for (int i = 0; i < n; i++) sink = i; "
        "return 7; }\n")
    flags = ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"]
    objs = image.compile_c("arm-none-eabi-gcc", [*flags, "-O2", "-ffunction-sections"],
                           [tmp_path / "spin.c"], tmp_path)
    img = image.link(["arm-none-eabi-gcc", *flags], objs, tmp_path, cpu="cortex-m0plus",
                     opt="O2", entry_points=("spin",))
    monkeypatch.setattr(machine, "MAX_INSTRUCTIONS_PER_CALL", 2_000)  # a small default
    m = machine.Machine(img)
    with pytest.raises(Exception, match="did not return within 2000 instructions"):
        m.call("spin", 1_000)
    with instruction_limit(100_000):
        res = machine.Machine(img).call("spin", 1_000)
    assert res.r0 == 7 and 2_000 < res.instructions < 100_000
    assert machine.MAX_INSTRUCTIONS_PER_CALL == 2_000
    with instruction_limit(10):  # never lowers the emulator's own limit
        assert machine.MAX_INSTRUCTIONS_PER_CALL == 2_000


def test_smallest_buffer_is_exact_and_refuses_a_predicate_that_never_holds():
    assert image.smallest_buffer(lambda n: n >= 2553, 1 << 18) == 2553
    assert image.smallest_buffer(lambda n: True, 100) == 0
    with pytest.raises(image.PeerBuildError):
        image.smallest_buffer(lambda n: False, 100)


def test_undefined_symbols_name_the_functions_that_define_them():
    ident = tflm_build.identifier
    assert ident("tflite::micro::GetEvalInput(TfLiteContext const*, TfLiteNode const*, int)") \
        == "GetEvalInput"
    assert ident("vtable for tflite::MicroAllocator") == "MicroAllocator"
    assert ident("arm_fully_connected_s8") == "arm_fully_connected_s8"
    assert ident("tflite::Foo<int>::Bar(int)") == "Bar"
    defines = tflm_build.defines_name
    assert defines("namespace x {\nconst T* GetEvalInput(const C* c,\n    int i) {\n",
                   "GetEvalInput")
    assert defines("TfLiteStatus\nEval(TfLiteContext* c) {\n", "Eval")
    assert not defines("  auto* t = GetEvalInput(c, n, 0);\n", "GetEvalInput")
    assert not defines("const T* GetEvalInput(const C* c, int i);\n", "GetEvalInput")
    assert not defines("// GetEvalInput(c) returns\n", "GetEvalInput")


def _git_tree(path: Path, marker: str) -> str:
    (path / marker).parent.mkdir(parents=True, exist_ok=True)
    (path / marker).write_text("x\n")
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", *env, *cmd], cwd=path, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True, text=True,
                          capture_output=True).stdout.strip()


def _fake_tflm(root: Path, pins: dict[str, str]) -> Path:
    make = root / "tflm" / sources.MAKE_DIR
    (make / "ext_libs").mkdir(parents=True)
    (make / "flatbuffers_download.sh").write_text(f'  ZIP_PREFIX="{pins["flatbuffers"]}"\n')
    (make / "third_party_downloads.inc").write_text(
        f'GEMMLOWP_URL := "https://github.com/google/gemmlowp/archive/{pins["gemmlowp"]}.zip"\n'
        f'RUY_URL="https://github.com/google/ruy/archive/{pins["ruy"]}.zip"\n')
    (make / "ext_libs/cmsis_nn_download.sh").write_text(f'ZIP_PREFIX_NN="{pins["CMSIS-NN"]}"\n')
    (make / "ext_libs/cmsis_download.sh").write_text(
        f'  ZIP_PREFIX="{pins["CMSIS_6"]}"\n  ZIP_PREFIX="{pins["Cortex_DFP"]}"\n')
    (make / "kissfft_download.sh").write_text(
        '  KISSFFT_URL="https://github.com/mborgerding/kissfft/archive/refs/tags/v130.zip"\n')
    (make / "pigweed_download.sh").write_text(f'  git checkout {pins["pigweed"]} >&2\n')
    return root / "tflm"


def test_third_party_trees_must_be_at_tflms_pins(tmp_path):
    names = ["flatbuffers", "gemmlowp", "ruy", "CMSIS-NN", "CMSIS_6", "Cortex_DFP", "kissfft",
             "pigweed"]
    deps = tmp_path / "deps"
    # TFLM's pins, read from its own scripts; the trees here are other commits
    wanted = {n: f"{i:040x}" for i, n in enumerate(names, start=1)}
    wanted["flatbuffers"] = "v25.9.23"
    tflm = _fake_tflm(tmp_path, wanted)
    pins = sources.tflm_pins(tflm)
    assert pins["CMSIS_6"].rev == wanted["CMSIS_6"] and pins["kissfft"].rev == "v130"
    assert pins["Cortex_DFP"].download_name == "cmsis/Cortex_DFP"
    commits = {n: _git_tree(deps / n, pins[n].marker) for n in names if n != "pigweed"}
    with pytest.raises(sources.PeerSourceError) as err:
        sources.tflm_third_party(tflm, deps)
    text = str(err.value)
    assert "pigweed: " in text and "is not a directory" in text  # missing, with its pin
    assert f"TFLM pins google/pigweed at {wanted['pigweed']}" in text
    assert f"gemmlowp: {deps / 'gemmlowp'} is at {commits['gemmlowp'][:12]}" in text
    assert "flatbuffers: " in text and "has no tag v25.9.23" in text
    # at the pinned commits, every tree is accepted
    _git_tree(deps / "pigweed", pins["pigweed"].marker)
    pinned = {n: subprocess.run(["git", "rev-parse", "HEAD"], cwd=deps / n, text=True,
                                capture_output=True, check=True).stdout.strip() for n in names}
    for name, tag in (("flatbuffers", "v25.9.23"), ("kissfft", "v130")):
        pinned[name] = tag
        subprocess.run(["git", "tag", tag], cwd=deps / name, check=True)
    tflm2 = _fake_tflm(tmp_path / "second", pinned)
    found = sources.tflm_third_party(tflm2, deps)
    assert {n: t.commit for n, (_p, t) in found.items()}["ruy"] == pinned["ruy"]


def test_nnom_input_quantization_rounds_half_away_and_saturates():
    x = np.array([0.5, -0.5, 0.25, -0.75, 100.0, -100.0, 1.0 / 32]) / 16
    np.testing.assert_array_equal(quantize_input(x, 5),
                                  np.array([1, -1, 1, -2, 127, -128, 0], np.int8))
    np.testing.assert_array_equal(quantize_input(np.array([3.0, -3.0]), -1),
                                  np.array([2, -2], np.int8))


def test_the_readme_tables_are_replaced_between_their_markers_only():
    text = ("intro\n<!-- peers-tables: bench/peers/markdown.py a.json -->\nold table\n"
            "old line\n<!-- /peers-tables -->\nafter\n")
    new = markdown.replace_in_readme(text, "| new |")
    assert new == ("intro\n<!-- peers-tables: bench/peers/markdown.py a.json -->\n| new |\n"
                   "<!-- /peers-tables -->\nafter\n")
    assert markdown.replace_in_readme(new, "| new |") == new
    with pytest.raises(ValueError, match="markers"):
        markdown.replace_in_readme("no markers here\n", "| new |")
