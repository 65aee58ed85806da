"""The checksum inside elman's .tflite: written by quantize, checked by every reader.

It must survive a re-serialization (another layout of the same values) and change
with every value the IR or an interpreter reads.
"""

import json
import shutil

import numpy as np
import pytest
from elman.quantize.flatbuffer_verify import decode_tflite
from elman.quantize.integrity import (
    CHECKSUM_NAME,
    canonical_bytes,
    check_integrity,
    digest_of,
    logical_model,
)
from elman.quantize.metadata import METADATA_NAME, add_metadata
from elman.quantize.reader import read_ir
from elman.quantize.testing import random_step_tflite
from tflite_fuzz import force_seal
from typer.testing import CliRunner

from elman import rundir
from elman.cli import app
from elman.errors import ModelError


def _edit(model: bytes, change) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    change(obj)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))


def _digest(model: bytes) -> str:
    return digest_of(decode_tflite(model), model)


def _stored(model: bytes) -> dict:
    tree = decode_tflite(model)
    (entry,) = [m for m in tree["metadata"] if m["name"] == CHECKSUM_NAME.encode()]
    return json.loads(tree["buffers"][entry["buffer"]]["data"].tobytes())


@pytest.fixture(scope="module")
def model() -> bytes:
    return random_step_tflite(6, 16, 4)


@pytest.fixture(scope="module")
def text_model() -> bytes:
    return random_step_tflite(8, 8, 11, task="language_model", vocab_size=11, x_range=3.0)


def test_quantize_writes_the_checksum_of_the_contents(model, text_model):
    for m in (model, text_model):
        stored = _stored(m)
        assert stored == {"algorithm": "sha256", "canonical_form": 1, "digest": _digest(m)}
        check_integrity(m)
        read_ir(m)


def _repack_with_defaults(model: bytes) -> bytes:
    """The same values in another layout: every default written out, the newer schema's
    fields included, every table, vtable and vector rebuilt."""
    import flatbuffers
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    builder = flatbuffers.Builder(1024)
    builder.ForceDefaults(True)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_the_checksum_survives_a_re_serialization(model):
    """Another layout of the same values keeps the digest, and the reader accepts it."""
    again = _repack_with_defaults(model)
    assert again != model and len(again) > len(model)
    assert _digest(again) == _digest(model)
    assert read_ir(again).to_dict() | {"source_sha256": "", "model_bytes": 0} == \
        read_ir(model).to_dict() | {"source_sha256": "", "model_bytes": 0}


def test_the_checksum_ignores_buffer_order(model):
    """Buffers are referenced by index; the digest covers the bytes a tensor refers to."""
    def reverse_buffers(m):
        n = len(m.buffers)
        order = [0] + list(range(n - 1, 0, -1))  # buffer 0 stays the empty sentinel
        new_index = {old: new for new, old in enumerate(order)}
        m.buffers = [m.buffers[i] for i in order]
        for t in m.subgraphs[0].tensors:
            t.buffer = new_index[t.buffer]
        for e in m.metadata:
            e.buffer = new_index[e.buffer]

    reordered = _edit(model, reverse_buffers)
    assert _digest(reordered) == _digest(model)
    np.testing.assert_array_equal(read_ir(reordered).layers[0].input_fc.weights,
                                  read_ir(model).layers[0].input_fc.weights)


def _tensor(m, name_part):
    return next(t for t in m.subgraphs[0].tensors if name_part in t.name.decode())


def _weights(m):
    fc = m.subgraphs[0].operators[0]
    return m.subgraphs[0].tensors[fc.inputs[1]]


def _set_item(array_of, index, value):
    def change(m):
        array = array_of(m)
        array[index] = value(array[index])
    return change


def _set(get, name, value):
    def change(m):
        setattr(get(m), name, value(getattr(get(m), name)) if callable(value) else value)
    return change


def _metadata(m, name):
    entry = next(e for e in m.metadata if e.name.decode() == name)
    return m.buffers[entry.buffer]


# every value the IR or an interpreter reads, changed one at a time
VALUE_EDITS = {
    "a weight byte": _set_item(lambda m: m.buffers[_weights(m).buffer].data, 3, lambda v: v ^ 4),
    "a weight scale": _set_item(lambda m: _weights(m).quantization.scale, 0,
                                lambda v: np.float32(v) * np.float32(1.0000001)),
    "a zero point": _set_item(lambda m: m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]]
                              .quantization.zeroPoint, 0, lambda v: v + 1),
    "the quantized dimension": _set(lambda m: _weights(m).quantization, "quantizedDimension", 1),
    "a tensor name": _set(_weights, "name", b"renamed"),
    "a tensor type": _set(_weights, "type", 3),
    "a tensor shape": _set(lambda m: m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]],
                           "shape", lambda s: np.array(s[::-1], np.int32)),
    "the variable flag": _set(_weights, "isVariable", True),
    "an operator input": _set(lambda m: m.subgraphs[0].operators[0], "inputs",
                              lambda v: np.array([v[1], v[0], *v[2:]], np.int32)),
    "an operator's opcode index": _set(lambda m: m.subgraphs[0].operators[3], "opcodeIndex",
                                       lambda v: 0 if v else 1),
    "an opcode version": _set(lambda m: m.operatorCodes[0], "version", 7),
    "a builtin option": _set(lambda m: m.subgraphs[0].operators[0].builtinOptions,
                             "fusedActivationFunction", 1),
    "keep_num_dims": _set(lambda m: m.subgraphs[0].operators[0].builtinOptions,
                          "keepNumDims", True),
    "the subgraph outputs": _set(lambda m: m.subgraphs[0], "outputs", lambda v: v[::-1]),
    "the schema version": _set(lambda m: m, "version", 4),
    "the description": _set(lambda m: m, "description", b"edited"),
    "a signature key": _set(lambda m: m.signatureDefs[0], "signatureKey", b"other"),
    "elman's metadata": _set(lambda m: _metadata(m, METADATA_NAME), "data",
                             lambda v: np.frombuffer(bytes(v) + b" ", np.uint8)),
    "the converter's metadata": _set(lambda m: _metadata(m, "min_runtime_version"), "data",
                                     lambda v: np.frombuffer(b"9.9.9", np.uint8)),
    "a metadata name": _set(lambda m: next(e for e in m.metadata if e.name == b"elman"),
                            "name", b"elmaN"),
}


@pytest.mark.parametrize("what", sorted(VALUE_EDITS))
def test_every_value_change_is_refused(model, what):
    edited = _edit(model, VALUE_EDITS[what])
    assert _digest(edited) != _digest(model), what
    with pytest.raises(ModelError, match="changed after `elman quantize` wrote it|not a valid"):
        read_ir(edited)


def test_the_embedding_table_of_a_text_model_is_covered(text_model):
    edited = _edit(text_model, _set_item(
        lambda m: _metadata(m, "elman.embedding").data, 5, lambda v: v ^ 1))
    with pytest.raises(ModelError, match="changed after `elman quantize` wrote it"):
        read_ir(edited)


def test_canonical_form_distinguishes_structure():
    """Tags and lengths make the encoding unambiguous: moving bytes between fields,
    an empty vector against an absent one, a bool against an int, all differ."""
    forms = [canonical_bytes(v) for v in (
        {"a": b"xy", "b": b""}, {"a": b"x", "b": b"y"}, {"a": b"xy"},
        [np.array([1], "<i4")], [np.array([1], "<i8")], [1], [True], [[1]], [b"\x01"],
    )]
    assert len(set(forms)) == len(forms)


def test_logical_model_replaces_buffer_indices_by_contents(model):
    tree = decode_tflite(model)
    logical = logical_model(tree, model)
    assert "buffers" not in logical
    weights = next(t for t in logical["subgraphs"][0]["tensors"] if t["data"] is not None
                   and len(t["data"]) == 16 * 16)
    assert "buffer" not in weights
    assert CHECKSUM_NAME.encode() not in [m["name"] for m in logical["metadata"]]


def test_a_model_without_checksum_is_refused_with_the_fix(model):
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    obj.metadata = [m for m in obj.metadata if m.name.decode() != CHECKSUM_NAME]
    unsealed = bytes(flatbuffer_utils.convert_object_to_bytearray(obj))
    with pytest.raises(ModelError, match=r"no integrity checksum.*rerun `elman quantize"):
        read_ir(unsealed)


def test_a_damaged_checksum_entry_is_refused(model):
    bad = add_metadata(model, {CHECKSUM_NAME: b'{"algorithm": "sha256", "digest": 5'})
    with pytest.raises(ModelError, match="entry is damaged"):
        read_ir(bad)
    other = add_metadata(model, {CHECKSUM_NAME: json.dumps(
        {"algorithm": "md5", "canonical_form": 1, "digest": "0"}).encode()})
    with pytest.raises(ModelError, match="'md5' of canonical form 1 is not the one"):
        read_ir(other)


def test_a_resealed_edit_is_a_new_model_not_a_damaged_one(model):
    """The checksum catches damage, not deliberate edits that recompute it (documented)."""
    edited = _edit(model, VALUE_EDITS["a weight byte"])
    resealed, original = read_ir(force_seal(edited)), read_ir(model)
    assert resealed.source_sha256 != original.source_sha256
    changed = [np.count_nonzero(a.weights != b.weights) for a, b in (
        (resealed.layers[0].input_fc, original.layers[0].input_fc),
        (resealed.layers[0].recurrent_fc, original.layers[0].recurrent_fc))]
    assert sorted(changed) == [0, 1]


def _flip_weight(run, tmp_path):
    """A copy of ``run`` whose .tflite has one weight bit flipped (the issue's failure)."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("c", "*_report.json"))
    data = bytearray((run / rundir.MODEL_TFLITE).read_bytes())
    ir = read_ir(bytes(data))
    weights = ir.layers[0].recurrent_fc.weights.tobytes()
    pos = bytes(data).find(weights)
    assert pos > 0 and bytes(data).count(weights) == 1
    data[pos + 5] ^= 0x10
    (copy / rundir.MODEL_TFLITE).write_bytes(bytes(data))
    return copy


def test_a_flipped_weight_is_refused_by_every_stage(bm_run, tmp_path):
    """Today's main certified such a file bit-exact in every stage (issue 12, finding 1)."""
    run = _flip_weight(bm_run, tmp_path)
    runner = CliRunner()
    # in its run directory, the ledger names the changed file first ...
    result = runner.invoke(app, ["codegen", str(run)])
    errors = [s for s in result.output.splitlines() if s.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    assert "model_int8.tflite changed since" in errors[0] and "elman quantize" in errors[0]
    # ... and the file's own checksum refuses it wherever it goes without its ledger
    (run / "provenance.json").unlink()
    for args in (["inspect", str(run)], ["codegen", str(run)],
                 ["verify", str(run), "--limit", "2", "--no-progress"],
                 ["mcu", str(run), "--cpu", "cortex-m4", "--opt", "O2"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        errors = [s for s in result.output.splitlines() if s.startswith("error:")]
        assert len(errors) == 1 and "changed after `elman quantize` wrote it" in errors[0], args
        assert "Traceback" not in result.output
    assert not (run / rundir.CODE_DIR).exists()
    assert not (run / rundir.VERIFY_REPORT).exists()
