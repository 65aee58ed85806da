"""``elman train``: a thin wrapper over :func:`elman.train.api.train_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from elman.data.sequences import DEFAULT_DELTAS, DEFAULT_STRIDE_MODE
from elman.train.config import BUDGETS, PER_STEP_BPTT, TASK_DEFAULTS, TEXT_RECIPES, TrainConfig

_C, _T = TASK_DEFAULTS["classification"], TASK_DEFAULTS["language_model"]


def _d(key: str) -> str:
    return f"Default: {_C[key]} (sensor/npz), {_T[key]} (text)."


def train(
    run_dir: Annotated[Path, typer.Argument(help="Run directory (created if missing).")],
    data: Annotated[
        str,
        typer.Option(
            help="sensor:basicmotions | sensor:gunpoint | sensor:pickupgesturewiimotez | "
            "ts:PATH (a UEA/UCR .ts file) | npz:PATH (x (N,T,C) or (N,T), y (N,); optional "
            "lengths, classes, x_test/y_test) | csv:PATH (one row per sample: channel "
            "columns, a label and a sequence id column) | text:fortunes | text:PATH (UTF-8)."
        ),
    ] = "sensor:basicmotions",
    units: Annotated[int | None, typer.Option(help=f"Hidden units. {_d('units')}")] = None,
    layers: Annotated[
        int, typer.Option(help="Stacked SimpleRNN layers (1-3), each of --units units.")
    ] = 1,
    embedding: Annotated[
        int | None, typer.Option(help=f"Embedding size (text). Default: {_T['embedding']}.")
    ] = None,
    lr: Annotated[float | None, typer.Option(help=f"Peak learning rate (Adam). {_d('lr')}")] = None,
    batch: Annotated[
        int | None,
        typer.Option(help=f"Sequences per update / parallel text streams. {_d('batch')}"),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help=f"Epochs. Default: {_C['epochs']} (sensor/npz); text trains --chars characters "
            "unless --epochs is given."
        ),
    ] = None,
    chars: Annotated[
        int | None,
        typer.Option(
            help="Text: training characters (the amount of work; the same on every machine). "
            f"Default: {TEXT_RECIPES['default']['chars']:,} (--budget default), "
            f"{TEXT_RECIPES['long']['chars']:,} (--budget long)."
        ),
    ] = None,
    budget: Annotated[
        str,
        typer.Option(
            help=f"Text recipe: {' | '.join(BUDGETS)} (a longer run that reaches a lower "
            "perplexity). Options given explicitly override the recipe."
        ),
    ] = "default",
    bptt: Annotated[
        int | None,
        typer.Option(
            help="Truncated-BPTT window in steps; state is carried between windows. "
            f"Default: full sequence (sensor/npz), {PER_STEP_BPTT} (per-step labels), "
            f"{_T['bptt']} (text)."
        ),
    ] = None,
    clip: Annotated[
        float, typer.Option(help="Global gradient-norm clipping threshold; 0 disables.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed (weights, shuffling).")] = 0,
    minutes: Annotated[
        float | None,
        typer.Option(
            help="Wall-clock budget in minutes; the LR schedule follows the clock and training "
            "stops at it or after --epochs / --chars, whichever comes first. Results then "
            "depend on the machine's speed. Default: 0 (no limit: reproducible runs)."
        ),
    ] = None,
    max_chars: Annotated[
        int | None, typer.Option(help="Text: train on the first N characters only (quick runs).")
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(help="Sequences: keep the last N samples of longer sequences (else a "
                     "sequence over 10x the median length is an error)."),
    ] = None,
    stride: Annotated[
        int | None,
        typer.Option(help="Sequences: read them at 1/k of their sampling rate (one step per k "
                     "samples, see --stride-mode). Default: 1, or for a median length over 128 "
                     "samples the stride that brings it to at most 40 steps (a stack: 20)."),
    ] = None,
    stride_mode: Annotated[
        str,
        typer.Option(help="With a stride k: auto (stack where a step holds at most 16 "
                     "values and every class has 10 training sequences, at the stride of 20 "
                     "steps; else mean) | mean (a step is the mean of its k samples) | "
                     "sample (every k-th sample) | stack (a step is its k samples side by "
                     "side: k x channels inputs). The device must do the same (the C header "
                     "says which; <prefix>_classify does it)."),
    ] = DEFAULT_STRIDE_MODE,
    deltas: Annotated[
        str,
        typer.Option(help="Sequences: follow each sample with its first difference, per "
                     "channel (x(t) - x(t-1), 0 at the first sample; 2 x channels inputs, "
                     "before the stride): auto (where a step is a stack of samples that "
                     "holds at most 16 values with them) | on | off. The "
                     "device must do the same (the C header says so; <prefix>_classify "
                     "does it)."),
    ] = DEFAULT_DELTAS,
    schedule: Annotated[
        str, typer.Option(help="Learning rate: cosine (linear warmup, cosine decay) | constant.")
    ] = "cosine",
    recurrent_init: Annotated[
        str, typer.Option(help="Recurrent matrix init: orthogonal | identity | glorot.")
    ] = "orthogonal",
    recurrent_scale: Annotated[
        float, typer.Option(help="Gain of the orthogonal / identity recurrent init.")
    ] = 1.0,
    loss_steps: Annotated[
        int | None,
        typer.Option(
            help="Sensor/npz: the loss averages the predictions of the last N steps "
            "(the saved model answers at the last step). Default: half the sequence."
        ),
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(help=f"Decoupled weight decay (AdamW); 0 = Adam. {_d('weight_decay')}"),
    ] = None,
    dropout_embedding: Annotated[
        float | None,
        typer.Option(
            help=f"Text: dropout rate on the embedded characters. Default: "
            f"{_T['dropout_embedding']:g}."
        ),
    ] = None,
    dropout_head: Annotated[
        float | None,
        typer.Option(help=f"Dropout rate on the head's input (hidden states). "
                     f"{_d('dropout_head')}"),
    ] = None,
    noise: Annotated[
        float | None,
        typer.Option(help="Sensor/npz: std of Gaussian noise added to normalized training "
                     f"inputs. Default: {_C['noise']}."),
    ] = None,
    updates_per_class: Annotated[
        int | None,
        typer.Option(help="Sensor/npz without --epochs: the epochs rise until training makes "
                     f"at least this many updates per class. Default: {_C['updates_per_class']}."),
    ] = None,
    min_updates: Annotated[
        int | None,
        typer.Option(help="Sensor/npz without --epochs: ... and at least this many updates in "
                     f"all. Default: {_C['min_updates']}."),
    ] = None,
    diagnostics: Annotated[
        bool, typer.Option(help="Record per-update gradient norms and the distance curve.")
    ] = True,
    baseline: Annotated[
        bool, typer.Option(help="Text: fit Kneser-Ney n-gram baselines (orders 3, 5, 7).")
    ] = True,
    qat_weights: Annotated[
        bool,
        typer.Option(help="Train the last fifth of the updates with the weights on the int8 "
                     "grid (per output channel, as the converter quantizes them; "
                     "straight-through gradients): the saved model's weights are exactly its "
                     "int8 weights, so quantizing loses only activations and state (use it "
                     "with quantize --state int16; `elman run --state int16` turns it on)."),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Progress bars on stderr.")] = True,
) -> None:
    """Train an Elman RNN on DATA; write model.keras, data_spec.json, train_report.json, plots.

    Sensor/npz: sequence classification; full BPTT over each sequence (or --bptt
    windows with carried state); the loss averages the class predictions of the
    last --loss-steps steps; the saved model answers at the last step.

    Per-step labels (npz y of shape (N, T), sensor:basicmotions-stream): streaming
    detection; each stream is read in --bptt windows with the state carried, the
    loss covers every step, and the saved model answers at every step.

    Text: next-character prediction; the text is cut into --batch parallel streams
    read in --bptt windows, hidden state carried between windows (gradient
    stopped) and reset every epoch; training runs for --chars characters (the
    recipe of --budget), the same work on every machine. Validation perplexity:
    the whole validation stream as one sequence, state carried across it.
    """
    from elman.train.api import train_run

    config = TrainConfig(
        units=units,
        layers=layers,
        embedding=embedding,
        lr=lr,
        batch=batch,
        epochs=epochs,
        chars=chars,
        budget=budget,
        bptt=bptt,
        clip=clip,
        seed=seed,
        minutes=minutes,
        max_chars=max_chars,
        max_length=max_length,
        stride=stride,
        stride_mode=stride_mode,
        deltas=deltas,
        schedule=schedule,
        recurrent_init=recurrent_init,
        recurrent_scale=recurrent_scale,
        loss_steps=loss_steps,
        weight_decay=weight_decay,
        dropout_embedding=dropout_embedding,
        dropout_head=dropout_head,
        noise=noise,
        updates_per_class=updates_per_class,
        min_updates=min_updates,
        diagnostics=diagnostics,
        baseline=baseline,
        qat_weights=qat_weights,
    )
    report = train_run(data, run_dir, config, progress=progress)
    typer.echo(summary(report, run_dir))


def summary(report: dict, run_dir: Path) -> str:
    m, t = report["metrics"], report["throughput"]
    lines = [
        f"trained {report['data']} -> {run_dir}/model.keras "
        f"({report['model']['parameters']} parameters, {t['train_seconds']:.1f} s, "
        f"{t['steps_per_second']:.0f} {t['unit']}/s)"
    ]
    if "test_switch_delay" in m:
        d = m["test_switch_delay"]
        median = "-" if d["median_steps"] is None else f"{d['median_steps']:.1f}"
        lines.append(f"test per-step accuracy {m['test_per_step_accuracy']:.3f}, median switch "
                     f"delay {median} steps ({d['missed']} of {d['changes']} changes missed)")
    elif "test_accuracy" in m:
        lines.append(f"test accuracy {m['test_accuracy']:.3f}")
    elif "val_perplexity" in m:
        lines.append(
            f"validation perplexity {m['val_perplexity']:.3f} ({m['val_bits_per_char']:.3f} bpc; "
            "the whole validation stream, state carried)"
        )
        int8_bytes = report["model"]["int8_bytes"]
        for name, b in sorted(report.get("baseline", {}).items()):
            lines.append(
                f"  {name}: perplexity {b['val_perplexity']:.3f}, {b['entries']:,} n-grams, "
                f"{b['bytes']:,} bytes (RNN int8 ~{int8_bytes:,} bytes)"
            )
        smallest = _smallest_ngram(report.get("size_curve"), m["val_perplexity"])
        if smallest:
            lines.append(
                f"  smallest pruned n-gram at least as good: order {smallest['order']}, cut-off "
                f"{smallest['cutoff']}, perplexity {smallest['val_perplexity']:.3f}, "
                f"{smallest['bytes']:,} bytes ({smallest['bytes'] / int8_bytes:.0f}x the RNN int8)"
            )
    c = report["clipping"]
    if c["fraction_clipped"] is not None:
        lines.append(
            f"clipped {c['clipped_updates']}/{c['updates']} updates "
            f"(threshold {c['threshold']:g}, median grad norm {c['grad_norm']['median']:.3g})"
        )
    lines += [f"warning: {w}" for w in report.get("warnings", [])]
    return "\n".join(lines)


def _smallest_ngram(curve: dict | None, perplexity: float) -> dict | None:
    from elman.report_size_curve import smallest_ngram_at

    return smallest_ngram_at(curve["points"], perplexity) if curve else None
