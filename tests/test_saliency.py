"""Saliency of a trained model, checked against where synthetic_me's faces move.

synthetic_me knows every clip's motion: the action-unit (AU) regions its renderer displaced.
A smoke-preset model trained on 4 LOSO folds must put its gradient-x-input saliency inside the
moving pixels far beyond their share of the frame, and inside the AU regions clearly more than
the same network untrained does (the untrained figure is the share that input motion alone
explains).
"""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mejax import analyze
from mejax import config_files
from mejax import runs
from mejax import saliency
from mejax import train
from mejax.synthetic import generate
from mejax.synthetic import motion

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_mask_and_mass_ratio_by_hand():
  clips = np.zeros((1, 3, 10, 10, 1), np.uint8)
  clips[0, 1:, 2:4, 2:7] = 200                       # 10 of 100 pixels change
  mask = saliency.motion_mask(clips, top_fraction=0.1)
  assert mask.sum() == 10 and mask[0, 2:4, 2:7].all()
  inside = np.zeros((1, 3, 10, 10), np.float32)
  inside[0, :, 2:4, 2:7] = 1.0
  assert saliency.mass_ratio(inside, mask)[0] == pytest.approx(10.0)  # all mass in 10 % of area
  assert saliency.mass_ratio(np.ones_like(inside), mask)[0] == pytest.approx(1.0)
  assert np.isnan(saliency.mass_ratio(np.zeros_like(inside), mask)[0])


def au_masks(run, clips, rows, top_fraction=0.1):
  """bool [N, S, S]: the top_fraction of pixels the clip's AUs move most (from the renderer's
  displacement field at the view's size)."""
  plans = {p.sample_id: p for p in generate.plan_dataset(generate.PRESETS["micro"])}
  size = run.input_shape[1]
  out = []
  for i in rows:
    plan = plans[clips.sample_id[i]]
    field = motion.au_motion_field(plan.identity, plan.expression.aus, size=size,
                                   intensities=plan.expression.intensities)
    magnitude = np.linalg.norm(field, axis=-1).ravel()
    mask = np.zeros(magnitude.size, bool)
    mask[np.argsort(-magnitude)[:int(round(top_fraction * magnitude.size))]] = True
    out.append(mask.reshape(size, size))
  return np.stack(out)


@pytest.mark.slow
def test_a_trained_model_looks_where_the_face_moves(micro_data_dir, tmp_path):
  config = config_files.load(REPO / "configs/convlstm.py", "smoke")
  config.data.data_dir = micro_data_dir
  config.train.only_folds = (0, 1, 2, 3)
  config.mesh.num_devices = 1
  config.progress = False
  train.train_and_evaluate(config, str(tmp_path / "smoke4"))
  run = runs.load(tmp_path / "smoke4")
  clips, view = run.data()
  predictions, _ = analyze.recompute(run, view)
  folds = np.asarray(predictions.fold)

  def ratios(variables_of):
    motion_ratio, au_ratio = [], []
    for fold in run.fold_names:
      rows = predictions.index[folds == fold]
      run.variables[fold] = variables_of(fold)
      logits, _ = run.apply(fold, view[rows])
      maps = saliency.maps(run, fold, view[rows], logits.argmax(1), "grad_x_input")
      motion_ratio += saliency.mass_ratio(maps, saliency.motion_mask(view[rows])).tolist()
      au_ratio += saliency.mass_ratio(maps, au_masks(run, clips, rows)).tolist()
    return float(np.nanmedian(motion_ratio)), float(np.nanmedian(au_ratio))

  trained = {fold: run.variables[fold] for fold in run.fold_names}
  motion_trained, au_trained = ratios(trained.get)
  fresh = run.model.init(jax.random.key(1), jnp.zeros((1,) + run.input_shape), train=False)
  untrained = dict(fresh, constants={})
  run.__dict__.pop("_saliency_programs", None)
  motion_untrained, au_untrained = ratios(lambda fold: untrained)
  print(f"saliency-in-motion ratio (median over {len(predictions.index)} test clips, gradient x "
        f"input): trained {motion_trained:.2f}, untrained {motion_untrained:.2f}; inside the AU "
        f"regions: trained {au_trained:.2f}, untrained {au_untrained:.2f}")
  assert motion_trained > 2.0
  assert au_trained > 1.25 * au_untrained
