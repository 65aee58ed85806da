"""The strict .tflite validation (as strict as LiteRT) and interpreter failures as one line."""

import importlib
import inspect
import re
import shutil
import struct

import numpy as np
import pytest
import tflite
from elman.quantize.flatbuffer_verify import decode_tflite, validate_tflite
from elman.quantize.reader import read_ir
from elman.quantize.tflite_schema import TABLES
from elman.runtime.interpreters import check_model_loads, litert_step, tflm_step
from tflite_fuzz import GRAPH_EDITS, _edit, force_seal
from typer.testing import CliRunner

from elman import rundir
from elman.cli import app
from elman.errors import ModelError

_PREPEND = {"Int8": "b", "Uint8": "B", "Bool": "?", "Int16": "h", "Uint16": "H", "Int32": "i",
            "Uint32": "I", "Int64": "q", "Uint64": "Q", "Float32": "f", "Float64": "d"}


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _adders(module, table: str) -> dict:
    return {name[len(table) + 3:]: fn for name, fn in vars(module).items()
            if name.startswith(f"{table}Add") and callable(fn)}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_schema_matches_the_converter_s_schema(table):
    """Every field of every table (slot, scalar width, default) as in TensorFlow's generated
    schema module, none missing; the tflite package knows no field the schema lacks."""
    from tensorflow.lite.python import schema_py_generated

    adders = _adders(schema_py_generated, table)
    fields = {_camel(f.name): f for f in TABLES[table]}
    assert set(adders) == set(fields), table
    for camel, f in fields.items():
        source = inspect.getsource(adders[camel])
        kind, slot, default = re.search(r"Prepend(\w+)Slot\((\d+), .*, (\S+)\)$",
                                        source.strip()).groups()
        assert int(slot) == f.slot, (table, f.name)
        if f.is_scalar:
            assert _PREPEND[kind] == f.kind, (table, f.name)
            assert type(f.default)(int(default)) == f.default, (table, f.name)
        else:
            assert kind == "UOffsetTRelative", (table, f.name)
    try:
        older = importlib.import_module(f"tflite.{table}")
    except ImportError:
        return
    assert set(_adders(older, table)) <= set(fields), table


@pytest.mark.parametrize("run_fixture", ["bm_run", "text_run"])
def test_decoded_values_equal_the_tflite_accessors(run_fixture, request):
    data = (request.getfixturevalue(run_fixture) / rundir.MODEL_TFLITE).read_bytes()
    tree = decode_tflite(data)
    model = tflite.Model.GetRootAsModel(data, 0)
    assert tree["version"] == model.Version() == 3
    sg, ref = tree["subgraphs"][0], model.Subgraphs(0)
    assert list(sg["inputs"]) == list(ref.InputsAsNumpy())
    for i, t in enumerate(sg["tensors"]):
        r = ref.Tensors(i)
        assert (t["name"], t["type"], t["buffer"]) == (r.Name(), r.Type(), r.Buffer())
        np.testing.assert_array_equal(t["shape"], r.ShapeAsNumpy())
        np.testing.assert_array_equal(t["quantization"]["scale"],
                                      r.Quantization().ScaleAsNumpy())
        np.testing.assert_array_equal(t["quantization"]["zero_point"],
                                      r.Quantization().ZeroPointAsNumpy())
        buf = tree["buffers"][t["buffer"]]["data"]
        ref_buf = model.Buffers(r.Buffer())
        assert (buf is None) == ref_buf.DataIsNone()
        if buf is not None:
            np.testing.assert_array_equal(buf, ref_buf.DataAsNumpy())
    for k, op in enumerate(sg["operators"]):
        r = ref.Operators(k)
        assert op["opcode_index"] == r.OpcodeIndex()
        np.testing.assert_array_equal(op["inputs"], r.InputsAsNumpy())
        assert op["builtin_options_type"] == r.BuiltinOptionsType()
    names = [m["name"] for m in tree["metadata"]]
    assert names == [model.Metadata(i).Name() for i in range(model.MetadataLength())]


def _sealed(model: bytes, change) -> bytes:
    return force_seal(_edit(model, change))


@pytest.mark.parametrize("label", [label for label, _, valid in GRAPH_EDITS if not valid])
def test_a_resealed_malformed_graph_is_refused_in_one_line(bm_run, label):
    """The checksum matches, so the validation (or the graph analysis) must refuse it."""
    change = next(edit for name, edit, _ in GRAPH_EDITS if name == label)
    model = _sealed((bm_run / rundir.MODEL_TFLITE).read_bytes(), change)
    with pytest.raises(ModelError) as exc:
        read_ir(model)
    assert "\n" not in str(exc.value) or str(exc.value).startswith("the model is not an elman")


def test_fully_connected_without_inputs_is_an_error_line(bm_run, tmp_path):
    """Issue 12: this file gave `IndexError: tuple index out of range` in the reader."""
    change = next(edit for name, edit, _ in GRAPH_EDITS if name == "FULLY_CONNECTED with no inputs")
    run = tmp_path / "run"
    shutil.copytree(bm_run, run)
    (run / rundir.MODEL_TFLITE).write_bytes(
        _sealed((bm_run / rundir.MODEL_TFLITE).read_bytes(), change))
    result = CliRunner().invoke(app, ["inspect", str(run)])
    assert result.exit_code == 1 and result.exception is None or \
        isinstance(result.exception, SystemExit)
    assert result.output.startswith("error: ") and len(result.output.splitlines()) == 1
    assert "operator 0 (FULLY_CONNECTED) has 0 inputs" in result.output


def test_schema_version_other_than_3_is_refused(bm_run):
    """LiteRT refuses it (`ValueError` in verify after codegen had written C on main)."""
    change = next(edit for name, edit, _ in GRAPH_EDITS if name == "schema version 2")
    with pytest.raises(ModelError, match="schema version 2, interpreters read version 3"):
        read_ir(_sealed((bm_run / rundir.MODEL_TFLITE).read_bytes(), change))


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda b: b[:-200], "runs past the end of the file"),
    (lambda b: b[:4] + b"TFL2" + b[8:], "identifier is b'TFL2'"),
    (lambda b: struct.pack("<I", len(b) + 8) + b[4:], "runs past the end of the file"),
    (lambda b: struct.pack("<I", 2) + b[4:], "not 4-byte aligned"),
])
def test_structural_damage_is_named(bm_run, mutate, message):
    data = mutate((bm_run / rundir.MODEL_TFLITE).read_bytes())
    with pytest.raises(ModelError, match=message):
        validate_tflite(data)


def test_interpreters_report_a_damaged_model_in_one_line(bm_run):
    """LiteRT's `ValueError: The model is not a valid Flatbuffer buffer` and TFLite Micro's
    `struct.error` (issue 12) become one ModelError each."""
    model = (bm_run / rundir.MODEL_TFLITE).read_bytes()
    ir = read_ir(model)
    damaged = model[:len(model) // 2]
    with pytest.raises(ModelError, match=r"^LiteRT cannot load the model: \w+: .*") as exc:
        litert_step(damaged, ir)
    assert "\n" not in str(exc.value)
    with pytest.raises(ModelError, match=r"^the TFLite Micro interpreter cannot load the "
                                         r"model: \w+") as exc:
        tflm_step(damaged, ir)
    assert "\n" not in str(exc.value)
    check_model_loads(model, ir)  # the intact model loads and steps in both


def test_verify_checks_the_interpreters_before_generating_anything(bm_run, tmp_path,
                                                                    monkeypatch):
    """Were the reader ever to accept what LiteRT refuses, verify stops before any C."""
    import elman.quantize.flatbuffer as flatbuffer
    import elman.quantize.reader as reader

    change = next(edit for name, edit, _ in GRAPH_EDITS if name == "schema version 2")
    run = tmp_path / "run"
    shutil.copytree(bm_run, run, ignore=shutil.ignore_patterns("c", "verify_report.json"))
    (run / rundir.MODEL_TFLITE).write_bytes(
        _sealed((bm_run / rundir.MODEL_TFLITE).read_bytes(), change))
    (run / "provenance.json").unlink()  # no ledger: the file reaches the interpreters' check
    monkeypatch.setattr(reader, "check_integrity", lambda data, what: None)
    monkeypatch.setattr(flatbuffer, "validate_tflite", lambda data, what: None)
    compiled = []
    import elman.firmware_codegen.host as host

    monkeypatch.setattr(host, "compile_program", lambda *a, **k: compiled.append(a))
    result = CliRunner().invoke(app, ["verify", str(run), "--no-progress"])
    assert result.exit_code == 1, result.output
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert line.startswith("error: LiteRT cannot load the model: ValueError")
    assert "schema version 2" in line
    assert not compiled and not (run / rundir.VERIFY_REPORT).exists()


@pytest.mark.parametrize("stage", ["inspect", "codegen", "verify", "mcu"])
def test_a_directory_in_place_of_the_model_is_an_error_line(bm_run, tmp_path, stage):
    run = tmp_path / "run"
    shutil.copytree(bm_run, run, ignore=shutil.ignore_patterns("c", "*_report.json"))
    (run / rundir.MODEL_TFLITE).unlink()
    (run / rundir.MODEL_TFLITE).mkdir()
    result = CliRunner().invoke(app, [stage, str(run)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    (line,) = [s for s in result.output.splitlines() if s.strip()]
    assert line.startswith("error: ") and "is not a file" in line
