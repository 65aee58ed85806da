"""data_spec.json: checked field by field, one clear error naming the field, never a KeyError."""

import json
import shutil

import pytest
from elman.data.datasets import load_dataset
from elman.data.spec import check_spec, load_run_data, read_spec
from typer.testing import CliRunner

from elman.cli import app
from elman.errors import DataError
from elman.files import dumps_json


@pytest.fixture(scope="module")
def bm_spec():
    return load_dataset("sensor:basicmotions").spec()


def _edit(spec, dotted, value):
    spec = json.loads(json.dumps(spec))
    *path, last = dotted.split(".")
    node = spec
    for key in path:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return spec


CLASSIFICATION_CASES = {
    "no format": ("format", KeyError, "unknown format None"),
    "no task": ("task", KeyError, "field 'task' must be one of"),
    "no source": ("source", KeyError, "field 'source' must be a data spec"),
    "no classes": ("classes", KeyError, "field 'classes' must be a list of at least 2"),
    "one class": ("classes", ["a"], "field 'classes' must be a list of at least 2"),
    "twice": ("classes", ["a", "a", "b", "c"], "names a class twice"),
    "no input": ("input", KeyError, r"field 'input' \(channels, timesteps, normalization\)"),
    "no channels": ("input.channels", KeyError, "'input.channels' must be a positive integer"),
    "no norm": ("input.normalization", KeyError, "'input.normalization' .* missing"),
    "short mean": ("input.normalization.mean", [0.0], "must be a list of 6 numbers"),
    "string std": ("input.normalization.std", ["1"] * 6, "std of channel 0 is '1'"),
    "zero std": ("input.normalization.std", [1, 1, 0, 1, 1, 1], "channel 2 is 0; it must be"),
    "files": ("files", ["x"], "field 'files' must map file names"),
    "zero stride": ("stride", 0, "field 'stride' must be a positive integer, got 0"),
    "float stride": ("stride", 2.0, "field 'stride' must be a positive integer, got 2.0"),
}


@pytest.mark.parametrize("case", sorted(CLASSIFICATION_CASES))
def test_classification_spec_fields_are_checked(bm_spec, case):
    dotted, value, message = CLASSIFICATION_CASES[case]
    with pytest.raises(DataError, match=message):
        check_spec(_edit(bm_spec, dotted, value), "data_spec.json")


def test_text_spec_fields_are_checked():
    spec = load_dataset("text:fortunes", max_chars=1000).spec()
    check_spec(spec, "s")
    for edit, message in [
        (("vocab", KeyError), "field 'vocab' must be a non-empty list of single characters"),
        (("vocab", ["ab", "c"]), "single characters"),
        (("vocab", ["a", "a"]), "lists a character twice"),
        (("max_chars", 5), "field 'max_chars' must be an integer >= 100"),
    ]:
        with pytest.raises(DataError, match=message):
            check_spec(_edit(spec, *edit), "s")


def test_not_an_object_a_directory_and_non_json_numbers(tmp_path, bm_spec):
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="a data spec is a JSON object, got list"):
        read_spec(tmp_path / "list.json")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(DataError, match="is a directory, not a data spec"):
        read_spec(tmp_path / "dir.json")
    # Python's json writes inf as Infinity, which is not JSON: refused, the token named
    text = json.dumps(_edit(bm_spec, "input.normalization.std", [float("inf")] * 6))
    assert "Infinity" in text
    (tmp_path / "inf.json").write_text(text)
    with pytest.raises(DataError, match="Infinity is not a JSON number"):
        read_spec(tmp_path / "inf.json")


def test_a_spec_for_other_data_is_refused(tmp_path, bm_spec):
    spec = _edit(bm_spec, "source", "sensor:gunpoint")
    spec = _edit(spec, "files", {})
    (tmp_path / "data_spec.json").write_text(dumps_json(spec))
    with pytest.raises(DataError, match="classes .* differ from"):
        load_run_data(tmp_path)


@pytest.mark.parametrize("stage", ["quantize", "verify", "codegen"])
def test_stages_give_one_error_line_for_a_partial_spec(bm_run, tmp_path, bm_spec, stage):
    run = tmp_path / "run"
    shutil.copytree(bm_run, run)
    # a hand-made run directory (no provenance ledger: files are taken as they are), as
    # after writing data_spec.json by hand for a model trained elsewhere
    (run / "provenance.json").unlink(missing_ok=True)
    (run / "data_spec.json").write_text(dumps_json(_edit(bm_spec, "input", KeyError)))
    args = [stage, str(run)] + (["--example"] if stage == "codegen" else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "error: " in result.output and "field 'input'" in result.output
    assert "Traceback" not in result.output and "KeyError" not in result.output
