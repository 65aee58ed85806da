import pytest

from elman.files import staged_outputs


def test_staged_outputs_commit_together(tmp_path):
    run = tmp_path / "run"
    with staged_outputs(run) as stage:
        stage.write_text("a.txt", "A")
        stage.write_json("b.json", {"z": 1, "a": [1, 2]})
        assert not (run / "a.txt").exists()
    assert (run / "a.txt").read_text() == "A"
    assert (run / "b.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "z": 1\n}\n'
    assert sorted(p.name for p in run.iterdir()) == ["a.txt", "b.json"]


def test_staged_outputs_leave_nothing_on_error(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError), staged_outputs(run) as stage:
        stage.write_text("a.txt", "A")
        raise RuntimeError("boom")
    assert not run.exists()


def test_staged_outputs_keep_older_files_on_error(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_outputs(run) as stage:
        stage.write_text("keep.txt", "new")
        raise RuntimeError("boom")
    assert [p.name for p in run.iterdir()] == ["keep.txt"]
    assert (run / "keep.txt").read_text() == "old"
