"""``elman import``, ``elman quantize`` and ``elman inspect``: thin wrappers over the
quantize stage."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from elman import rundir
from elman.errors import ElmanError, ModelError


class StateWidth(StrEnum):
    """``--state``: the width of the activations and the recurrent state."""

    int8 = "int8"
    int16 = "int16"


def quantize(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with model.keras (elman train).")],
    eval_chars: Annotated[int | None, typer.Option(
        help="Text models: run only the first N validation characters through LiteRT "
             "(quicker; a prefix's perplexity, labelled as such). Default: the whole "
             "validation stream, the validation perplexity.")] = None,
    input_percentile: Annotated[float | None, typer.Option(
        help="Sensor models: calibrate x on the [100-p, p] percentile range of the training "
             "inputs (100 = min/max). Default: 99.9 with --state int8, 100 with int16.",
        show_default=False)] = None,
    state: Annotated[StateWidth, typer.Option(
        help="int8: full int8 (int8 activations and state); int16: TFLite's 16x8 mode "
             "(int16 activations and state, int8 weights, int64 biases), ~256x finer state.",
        case_sensitive=False)] = StateWidth.int8,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Convert model.keras to an int8 (or 16x8) one-step TFLite model and report float vs
    quantized."""
    from elman.quantize.api import quantize_run, summary_table

    if eval_chars is not None and eval_chars < 1:
        raise ElmanError(f"--eval-chars must be >= 1, got {eval_chars}")
    report = quantize_run(run_dir, progress=progress, eval_chars=eval_chars,
                          input_percentile=input_percentile, state=state.value)
    typer.echo(summary_table(report))
    typer.echo(f"wrote {Path(run_dir) / rundir.MODEL_TFLITE} and "
               f"{Path(run_dir) / rundir.QUANT_REPORT}")


def inspect(
    target: Annotated[Path, typer.Argument(
        help="A run directory, a .tflite step model, or an IR .json (from --json).")],
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print the IR as JSON (QuantizedModel.to_json) instead of text.")] = False,
) -> None:
    """Print the IR read from a step model: dimensions, scales, zero points, multipliers."""
    from elman.quantize.describe import describe_ir
    from elman.quantize.ir import QuantizedModel
    from elman.quantize.reader import read_ir

    path = rundir.require(target, rundir.MODEL_TFLITE) if target.is_dir() else target
    if not path.is_file():
        raise ElmanError(f"{path} does not exist or is not a file")
    if path.suffix == ".json":
        try:
            ir = QuantizedModel.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} is not an elman IR JSON file: {exc}") from None
    else:
        ir = read_ir(path)
    typer.echo(ir.to_json() if json_out else describe_ir(ir, str(path)), nl=not json_out)


def import_model(
    model: Annotated[Path, typer.Argument(help="A Keras 3 model file (.keras) trained elsewhere.")],
    run_dir: Annotated[Path, typer.Argument(help="New run directory to create.")],
    data: Annotated[str, typer.Option(
        help="The data the model was trained on: sensor:NAME | npz:PATH (x (N,T,C); y (N,), "
             "or (N,T) for a per-step model) | text:fortunes | text:PATH.")],
    normalize: Annotated[str, typer.Option(
        help="Input normalization to store: auto (the model's Normalization layer, else "
             "none) | layer | none (the model reads raw values) | from-data (per-channel "
             "mean/std of the training split).")] = "auto",
    max_chars: Annotated[int | None, typer.Option(
        help="Text: use the first N training characters of the corpus (quick runs).")] = None,
) -> None:
    """Bring a Keras model trained elsewhere into RUN_DIR (model.keras + data_spec.json).

    Accepted: Input -> [Normalization] -> [Masking] -> SimpleRNN(tanh) x 1-3 ->
    [Dropout] -> Dense (linear or softmax), the head at the last step or at every
    step (return_sequences=True, or TimeDistributed(Dense)); text: Input ->
    Embedding -> SimpleRNN x 1-3 -> Dense at every step. Then run `elman quantize
    RUN_DIR` (or `elman run --from quantize RUN_DIR`).
    """
    from elman.quantize.import_model import import_run

    spec = import_run(model, data, run_dir, normalize=normalize, max_chars=max_chars)
    keras_model = spec["imported"]["keras_model"]
    where = "every step" if keras_model["head_steps"] == "every" else "the last step"
    typer.echo(f"imported {model} -> {Path(run_dir) / rundir.MODEL_KERAS}: "
               f"{' -> '.join(keras_model['layers'])} ({spec['task']}, head at {where}, "
               f"{keras_model['head_activation']})")
    for note in keras_model["notes"]:
        typer.echo(f"  note: {note}")
    if spec["task"] == "classification":
        typer.echo(f"  data {spec['source']}: {spec['input']['channels']} channels, "
                   f"{spec['input']['timesteps']} steps, {len(spec['classes'])} classes; "
                   f"normalization: {spec['input']['normalization']['source']}")
    typer.echo(f"wrote {Path(run_dir) / rundir.DATA_SPEC}; next: elman quantize {run_dir}")
