"""Reports and plots of a run: confusion matrices and training curves (PNG)."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_confusion(confusion: np.ndarray, class_names, path: pathlib.Path, title: str) -> None:
  """Row-normalised confusion matrix with the counts written in each cell."""
  confusion = np.asarray(confusion, dtype=np.float64)
  rows = confusion.sum(1, keepdims=True)
  normalised = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
  fig, ax = plt.subplots(figsize=(4.2, 3.8), dpi=120)
  image = ax.imshow(normalised, vmin=0, vmax=1, cmap="Blues")
  ax.set_xticks(range(len(class_names)), class_names, rotation=30)
  ax.set_yticks(range(len(class_names)), class_names)
  ax.set_xlabel("predicted")
  ax.set_ylabel("true")
  for i in range(len(class_names)):
    for j in range(len(class_names)):
      ax.text(j, i, f"{normalised[i, j]:.2f}\n({int(confusion[i, j])})", ha="center", va="center",
              fontsize=8, color="white" if normalised[i, j] > 0.5 else "black")
  ax.set_title(title, fontsize=9)
  fig.colorbar(image, ax=ax, fraction=0.046)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def plot_curves(history: list[dict], path: pathlib.Path, title: str) -> None:
  """Training loss / accuracy per epoch, validation loss and the test curves where recorded."""
  epochs = [h["epoch"] for h in history]
  fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=120)
  ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train loss (sampled batches)")
  if any("val_loss" in h for h in history):
    val = [(h["epoch"], h["val_loss"]) for h in history if "val_loss" in h]
    ax_loss.plot(*zip(*val), label="inner-validation loss")
  ax_loss.set_xlabel("epoch")
  ax_loss.legend(fontsize=8)
  ax_score.plot(epochs, [h["train_accuracy"] for h in history], label="train accuracy")
  for key, label in (("test_uar", "test UAR (pooled)"), ("test_uf1", "test UF1 (pooled)"),
                     ("test_accuracy", "test accuracy (pooled)")):
    points = [(h["epoch"], h[key]) for h in history if key in h]
    if points:
      ax_score.plot(*zip(*points), marker="o", markersize=3, label=label)
  ax_score.set_ylim(0, 1)
  ax_score.set_xlabel("epoch")
  ax_score.legend(fontsize=8)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)
