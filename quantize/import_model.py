"""``elman import MODEL.keras --data SPEC RUN_DIR``: a model trained elsewhere becomes a run.

The model is read by structure (:mod:`elman.quantize.keras_model`) and refused
with every problem listed if elman cannot run it; the data named by ``SPEC``
(``sensor:...``, ``npz:PATH``, ``text:...``) is loaded and checked against the
model (channels or vocabulary, classes, per-step labels). Then ``RUN_DIR``
gets a copy of the model (``model.keras``) and a ``data_spec.json`` written
from the data (the files ``elman train`` writes; in a used run directory the
later stages' files made from the older ones are removed, as after training),
after which ``elman quantize``, ``codegen``, ``verify``, ``mcu``
and ``elman run --from quantize`` work as on a run elman trained.

The input normalization stored in the spec (every later stage normalizes with
it, and the C does too) is chosen by ``--normalize``:

- ``auto`` (default): the model's ``Normalization`` layer when it has one, else
  ``none``;
- ``layer``: the model's ``Normalization`` layer (its mean and
  ``max(sqrt(variance), 1e-7)``, exactly what Keras divides by);
- ``none``: the model was trained on the raw values (mean 0, std 1);
- ``from-data``: the model was trained on values normalized per channel with
  the training split's mean and standard deviation (as ``elman train`` does).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
from elman.quantize.keras_model import KerasElman, read_keras_file

from elman import provenance, rundir
from elman.errors import DataError, ElmanError, ModelError

NORMALIZE_CHOICES = ("auto", "layer", "none", "from-data")


def import_run(model_path: Path | str, data: str, run_dir: Path | str, *,
               normalize: str = "auto", max_chars: int | None = None) -> dict:
    """Write ``model.keras`` and ``data_spec.json`` into a new ``run_dir``; return the spec."""
    from elman.data.datasets import load_raw

    model_path, run_dir = Path(model_path), Path(run_dir)
    if normalize not in NORMALIZE_CHOICES:
        raise ElmanError(f"--normalize must be one of {', '.join(NORMALIZE_CHOICES)}, "
                         f"got {normalize!r}")
    if not model_path.is_file():
        raise ElmanError(f"{model_path} does not exist or is not a file")
    found = read_keras_file(model_path)
    # the outputs of `elman train`: a later stage's files made from older ones are removed
    stage_run = provenance.begin(run_dir, "train", rerun=[
        "import", "--data", data, "--normalize", normalize, str(model_path.resolve())])
    kind, sep, name = data.partition(":")
    if not sep or not name:
        raise DataError(f"data spec {data!r} must look like KIND:NAME (sensor:, text:, npz:)")
    raw = load_raw(kind, name, max_chars=max_chars)
    if found.task == "language_model":
        if normalize not in ("auto", "none"):
            raise ElmanError(f"--normalize {normalize} applies to sensor inputs; a text model "
                             "reads embedding rows")
        spec = _text_spec(found, raw, data)
        normalize = "none"
    else:
        spec, normalize = _classification_spec(found, raw, data, normalize)
    spec["imported"] = {
        "model": str(model_path.resolve()),
        "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "normalization": normalize,
        "keras_model": found.summary(),
    }
    with stage_run.outputs() as stage:
        shutil.copyfile(model_path, stage.path(rundir.MODEL_KERAS))
        stage.write_json(rundir.DATA_SPEC, spec)
    return spec


def _text_spec(found: KerasElman, raw, data: str) -> dict:
    if getattr(raw, "task", None) != "language_model":
        raise DataError(f"the model starts with an Embedding (a text model), but {data} is "
                        "not text (use text:fortunes or text:PATH)")
    m = found.model
    problems = []
    if m.vocab_size != raw.vocab_size:
        problems.append(f"the model's Embedding has {m.vocab_size} tokens, the text's "
                        f"vocabulary (every character, sorted by code point) has "
                        f"{raw.vocab_size}")
    if m.output_dim != raw.vocab_size:
        problems.append(f"the head has {m.output_dim} outputs, the vocabulary "
                        f"{raw.vocab_size} tokens")
    if problems:
        raise ModelError(f"{data} does not fit the model: " + "; ".join(problems))
    return raw.spec()


def _classification_spec(found: KerasElman, raw, data: str, normalize: str
                         ) -> tuple[dict, str]:
    if getattr(raw, "task", "classification") != "classification":
        raise DataError(f"the model takes sensor values, but {data} is text")
    m = found.model
    problems = []
    channels = raw.x_train.shape[2]
    if m.input_dim != channels:
        problems.append(f"the model takes {m.input_dim} input channels, the data has {channels}")
    if m.output_dim != len(raw.classes):
        problems.append(f"the head has {m.output_dim} outputs, the data has "
                        f"{len(raw.classes)} classes")
    if raw.y_train.ndim == 2 and m.head_steps == "last":
        problems.append("the data has one label per step, but the model answers only at the "
                        "last step (use return_sequences=True on the last SimpleRNN)")
    if problems:
        raise ModelError(f"{data} does not fit the model: " + "; ".join(problems))
    if normalize == "auto":
        normalize = "layer" if found.has_normalization else "none"
    if found.has_normalization and normalize != "layer":
        raise ElmanError(f"the model has a Normalization layer, which elman folds into the "
                         f"stored normalization: --normalize {normalize} would normalize twice "
                         "(use --normalize layer or auto)")
    if normalize == "layer":
        if not found.has_normalization:
            raise ElmanError("--normalize layer: the model has no Normalization layer")
        dataset = raw.normalized(found.norm_mean, found.norm_std)
    elif normalize == "none":
        dataset = raw.normalized(np.zeros(channels), np.ones(channels))
    else:
        dataset = raw.normalized()
    spec = dataset.spec()
    spec["input"]["normalization"]["source"] = {
        "layer": "the model's Normalization layer", "none": "none: the model reads raw values",
        "from-data": "the training split's per-channel mean and standard deviation"}[normalize]
    return spec, normalize
