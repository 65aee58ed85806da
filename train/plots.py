"""PNG plots of a training run: learning curves and the vanishing-gradient curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(report: dict, grad_norms: np.ndarray, path: Path) -> None:
    plt = _pyplot()
    epochs = report["epochs"]
    e = [r["epoch"] for r in epochs]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(e, [r["train_loss"] for r in epochs], marker="o", label="train loss")
    for key, label in (("val_loss", "validation loss"), ("test_loss", "test loss")):
        rows = [r for r in epochs if key in r]  # text: long runs score every k-th epoch
        if rows:
            axes[0].plot([r["epoch"] for r in rows], [r[key] for r in rows], marker="o",
                         label=label)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy (nats)", title="loss")
    axes[0].legend()
    if report["task"] == "classification":
        axes[1].plot(e, [r["train_accuracy"] for r in epochs], marker="o", label="train")
        axes[1].plot(e, [r["test_accuracy"] for r in epochs], marker="o", label="test")
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1.02))
    else:
        rows = [r for r in epochs if "val_perplexity" in r]
        axes[1].plot([r["epoch"] for r in rows], [r["val_perplexity"] for r in rows],
                     marker="o", label="RNN")
        for name, b in sorted(report.get("baseline", {}).items()):
            axes[1].axhline(b["val_perplexity"], ls="--", color="gray")
            axes[1].annotate(name, (e[0], b["val_perplexity"]), fontsize=8)
        axes[1].set(xlabel="epoch", ylabel="perplexity", title="validation perplexity")
    axes[1].legend()
    if len(grad_norms):
        axes[2].semilogy(np.arange(1, len(grad_norms) + 1), grad_norms, lw=0.5)
        threshold = report["clipping"]["threshold"]
        if threshold > 0:
            axes[2].axhline(threshold, color="red", ls="--", label=f"clip {threshold:g}")
            axes[2].legend()
    axes[2].set(xlabel="update", ylabel="global gradient norm (pre-clip)", title="gradient norm")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_grad_vs_distance(curve: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    if curve:
        ax.semilogy(curve["distance"], curve["mean_norm"], label="mean")
        ax.semilogy(curve["distance"], curve["median_norm"], label="median", ls="--")
        ax.legend()
        ax.set_title(
            f"vanishing gradient ({curve['sequences']} held-out sequences, "
            f"x{curve['decay_per_step']:.3f}/step)"
        )
    ax.set(xlabel="distance T - k (steps)", ylabel="||dL_T / dh_k||")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
