"""The figures of ``report.html``: matplotlib (Agg) drawings returned as PNG data URIs.

Each function takes plain arrays and returns ``data:image/png;base64,...`` so
the report embeds every picture and needs no file or network beside itself.
PNG metadata is stripped (no tool name, no URL, no timestamp).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np

FLOAT_COLOR = "#1f77b4"
INT8_COLOR = "#d62728"
GRID = {"color": "#dddddd", "linewidth": 0.6}


def _figure(width: float = 7.0, height: float = 3.0, ncols: int = 1):
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.grid(True, **GRID)
        ax.set_axisbelow(True)
    return fig, axes


def _data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def training_curves(
    epochs: Sequence[int],
    series: dict[str, dict[str, Sequence[float]]],
) -> str:
    """One panel per quantity (``{"loss": {"train": [...], "validation": [...]}, ...}``)."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = _figure(width=3.6 * len(series), height=2.8, ncols=len(series))
    for ax, (quantity, curves) in zip(axes, series.items(), strict=True):
        for name, values in curves.items():
            ax.plot(epochs[: len(values)], values, marker="o", markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(quantity)
        ax.legend(fontsize=8)
    return _data_uri(fig)


def gradient_vs_distance(distance: Sequence[float], norm: Sequence[float]) -> str:
    """The vanishing-gradient curve: ||dL_T/dh_k|| against T - k, log scale."""
    fig, (ax,) = _figure(height=2.8)
    norm = np.asarray(norm, dtype=np.float64)
    positive = norm > 0
    ax.semilogy(np.asarray(distance)[positive], norm[positive], color=FLOAT_COLOR)
    ax.set_xlabel("distance T − k (steps)")
    ax.set_ylabel("‖∂L_T / ∂h_k‖")
    return _data_uri(fig)


def clipping(norms: Sequence[float], threshold: float | None) -> str:
    """Pre-clip global gradient norm of every update, with the clipping threshold."""
    fig, (ax,) = _figure(height=2.8)
    norms = np.asarray(norms, dtype=np.float64)
    updates = np.arange(1, len(norms) + 1)
    if threshold:
        clipped = norms > threshold
        ax.scatter(updates[~clipped], norms[~clipped], s=4, color=FLOAT_COLOR,
                   label="not clipped")
        ax.scatter(updates[clipped], norms[clipped], s=4, color=INT8_COLOR, label="clipped")
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1,
                   label=f"threshold {threshold:g}")
    else:
        ax.scatter(updates, norms, s=4, color=FLOAT_COLOR, label="no clipping")
    if np.all(norms > 0):
        ax.set_yscale("log")
    ax.set_xlabel("update")
    ax.set_ylabel("pre-clip ‖g‖")
    ax.legend(fontsize=8, markerscale=3)
    return _data_uri(fig)


def clipping_by_epoch(epochs: Sequence[int], mean_norm: Sequence[float],
                      fraction_clipped: Sequence[float], threshold: float | None) -> str:
    """Mean pre-clip gradient norm per epoch against the threshold, and the share clipped."""
    from matplotlib.ticker import MaxNLocator

    fig, (ax_norm, ax_frac) = _figure(width=7.2, height=2.6, ncols=2)
    ax_norm.plot(epochs, mean_norm, marker="o", markersize=3, color=FLOAT_COLOR,
                 label="mean pre-clip ‖g‖")
    if threshold:
        ax_norm.axhline(threshold, color="black", linestyle="--", linewidth=1,
                        label=f"threshold {threshold:g}")
    ax_norm.set_xlabel("epoch")
    ax_norm.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_frac.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_norm.set_title("gradient norm")
    ax_norm.legend(fontsize=8)
    ax_frac.plot(epochs, [100 * f for f in fraction_clipped], marker="o", markersize=3,
                 color=INT8_COLOR)
    ax_frac.set_ylim(-3, 103)
    ax_frac.set_xlabel("epoch")
    ax_frac.set_title("updates clipped (%)")
    return _data_uri(fig)


def hidden_traces(float_h: np.ndarray, int8_h: np.ndarray, units: Sequence[int]) -> str:
    """Float and int8 (dequantized) hidden state of a few units along one sequence."""
    n = len(units)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.4 * ncols, 2.2 * nrows), dpi=110, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    steps = np.arange(float_h.shape[0])
    for ax, unit in zip(axes, units, strict=False):
        ax.grid(True, **GRID)
        ax.plot(steps, float_h[:, unit], color=FLOAT_COLOR, linewidth=1.2, label="float")
        ax.step(steps, int8_h[:, unit], where="mid", color=INT8_COLOR, linewidth=0.9,
                label="int8")
        ax.set_title(f"unit {unit}", fontsize=9)
        ax.set_ylim(-1.05, 1.05)
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7)
    fig.supxlabel("step", fontsize=9)
    return _data_uri(fig)


def error_by_step(steps: Sequence[float], curves: dict[str, Sequence[float]], xlabel: str,
                  log_x: bool = False) -> str:
    """|float - int8| of the hidden state (float units) against the step position."""
    fig, (ax,) = _figure(height=2.8)
    for name, values in curves.items():
        ax.plot(steps[: len(values)], values, label=name, linewidth=1)
    if len(curves) > 1 and all(np.all(np.asarray(v) > 0) for v in curves.values()):
        ax.set_yscale("log")  # mean and max differ by orders of magnitude
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("|h_float − h_int8|")
    ax.legend(fontsize=8)
    return _data_uri(fig)


def confusion_matrix(matrix: np.ndarray, labels: Sequence[str]) -> str:
    """Counts, true class in rows, predicted class in columns."""
    matrix = np.asarray(matrix)
    size = 1.2 + 0.55 * len(labels)
    fig, (ax,) = _figure(width=size + 1.0, height=size)
    ax.grid(False)
    ax.imshow(matrix, cmap="Blues")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = matrix.max() if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=8,
                color="white" if v > top / 2 else "black")
    return _data_uri(fig)


def size_curve(ngram_points: Sequence[tuple[float, float]],
               ngram_frontier: Sequence[tuple[float, float]],
               models: Sequence[tuple[str, float, float]]) -> str:
    """Perplexity against bytes (log scale): n-gram points, their frontier, labelled models."""
    fig, (ax,) = _figure(width=7.0, height=3.6)
    if ngram_points:
        b, p = zip(*ngram_points, strict=True)
        ax.scatter(b, p, s=10, color="#999999", label="pruned Kneser–Ney (order, cut-off)")
    if ngram_frontier:
        b, p = zip(*ngram_frontier, strict=True)
        ax.plot(b, p, color="#555555", linewidth=1, label="smallest n-gram at each perplexity")
    for i, (label, size, ppl) in enumerate(models):
        ax.scatter([size], [ppl], s=40, marker="D", color=f"C{i}", zorder=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("bytes")
    ax.set_ylabel("validation perplexity")
    ax.legend(fontsize=7)
    return _data_uri(fig)
