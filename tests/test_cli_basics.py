from typer.testing import CliRunner

from elman import __version__
from elman.cli import app


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"elman {__version__}"


def test_every_stage_is_registered():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ["train", "quantize", "inspect", "codegen", "verify", "mcu", "run"]:
        assert name in result.output
