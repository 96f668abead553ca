"""Calibration probes: is the class signal in the motion and not in any single frame?

Two leave-one-subject-out (LOSO) logistic-regression probes on small grey images:
  apex_frame_logreg_uar: the apex frame alone. Must stay near chance (UAR <= 0.50 for 3 classes on
    the micro config): identity, pose and lighting dominate a single frame.
  difference_logreg_uar: the apex - onset difference image. Must be clearly above chance: it is a
    cheap proxy for what a spatio-temporal model can learn from onset..apex frames.
Both standardise features with statistics of the training subjects only and report the UAR
(balanced accuracy) of the predictions pooled over all folds.

  python -m mejax.synthetic.calibration --config micro   # prints both figures for a preset
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Sequence

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mejax import cli
from mejax.synthetic import generate


def _grey_small(frame: np.ndarray, size: int) -> np.ndarray:
  frame = np.asarray(frame, np.float32)
  if frame.ndim == 3 and frame.shape[-1] == 3:
    frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
  frame = frame.reshape(frame.shape[0], frame.shape[1])
  return cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)


def loso_logreg_uar(features: np.ndarray, labels: Sequence[int], subjects: Sequence,
                    C: float = 1.0) -> float:
  """UAR of pooled LOSO predictions of a standardised multinomial logistic regression."""
  features = np.asarray(features, np.float64).reshape(len(features), -1)
  labels, subjects = np.asarray(labels), np.asarray(subjects)
  predictions = np.empty_like(labels)
  # One BLAS thread: these small problems run >10x slower when the thread pools oversubscribe.
  with threadpool_limits(1):
    for subject in np.unique(subjects):
      test = subjects == subject
      scaler = StandardScaler().fit(features[~test])
      model = LogisticRegression(C=C, max_iter=3000)
      model.fit(scaler.transform(features[~test]), labels[~test])
      predictions[test] = model.predict(scaler.transform(features[test]))
  return float(balanced_accuracy_score(labels, predictions))


def apex_frame_logreg_uar(frames_list: Sequence[np.ndarray], apex_idx: Sequence[int],
                          labels: Sequence[int], subjects: Sequence, size: int = 32,
                          C: float = 1.0) -> float:
  """LOSO UAR of a logistic regression on single apex frames (grey, resized to size x size)."""
  features = np.stack([_grey_small(frames[a], size) for frames, a in zip(frames_list, apex_idx)])
  return loso_logreg_uar(features, labels, subjects, C)


def difference_logreg_uar(frames_list: Sequence[np.ndarray], onset_idx: Sequence[int],
                          apex_idx: Sequence[int], labels: Sequence[int], subjects: Sequence,
                          size: int = 32, C: float = 1.0) -> float:
  """LOSO UAR of a logistic regression on (apex - onset) grey difference images, downscaled."""
  features = np.stack([
      _grey_small(frames[a].astype(np.float32) - frames[o].astype(np.float32), size)
      for frames, o, a in zip(frames_list, onset_idx, apex_idx)])
  return loso_logreg_uar(features, labels, subjects, C)


def onset_apex_frames(config: generate.SyntheticConfig):
  """Renders only the onset and apex frame of every clip (fast); returns frames and metadata."""
  plans = generate.plan_dataset(config)
  frames = [generate.render_plan(p, config, [p.expression.onset, p.expression.apex])
            for p in plans]
  labels = np.array([generate.class_index(p) for p in plans])
  subjects = np.array([p.subject for p in plans])
  return frames, labels, subjects


def calibration_report(config: generate.SyntheticConfig, size: int = 32) -> dict:
  """Both probes on a config, computed from its onset and apex frames."""
  start = time.perf_counter()
  frames, labels, subjects = onset_apex_frames(config)
  onsets, apexes = np.zeros(len(frames), int), np.ones(len(frames), int)
  return {
      "clips": len(frames),
      "class_counts": {name: int((labels == i).sum())
                       for i, name in enumerate(generate.CLASS_NAMES)},
      "apex_frame_uar": apex_frame_logreg_uar(frames, apexes, labels, subjects, size),
      "difference_uar": difference_logreg_uar(frames, onsets, apexes, labels, subjects, size),
      "seconds": round(time.perf_counter() - start, 1),
  }


def main():
  parser = cli.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="micro", choices=sorted(generate.PRESETS))
  parser.add_argument("--difficulty", type=float, default=None)
  parser.add_argument("--seed", type=int, default=None)
  args = parser.parse_args()
  config = generate.PRESETS[args.config]
  if args.difficulty is not None:
    config = dataclasses.replace(config, difficulty=args.difficulty)
  if args.seed is not None:
    config = dataclasses.replace(config, seed=args.seed)
  print(json.dumps(calibration_report(config), indent=2))


if __name__ == "__main__":
  main()
