"""`python -m mejax.convert` (torchvision r3d_18 weights -> init_from checkpoint) and
`python -m mejax.models summary`."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mejax import convert
from mejax.models import convert as convert_lib
from mejax.models import get_model
from mejax.models import summary as summary_lib

torch = pytest.importorskip("torch")
from benchmarks import torch_models  # noqa: E402  (needs torch)

ROOT = pathlib.Path(__file__).resolve().parents[1]
WIDTH = 1 / 8  # 8/16/32/64 channels: the torchvision layout and key set, at CPU-test cost


def _randomised(model):
  # Non-trivial BN statistics too, so eval-mode outputs depend on every imported array.
  gen = torch.Generator().manual_seed(0)
  with torch.no_grad():
    for name, tensor in model.state_dict().items():
      if tensor.is_floating_point():
        if name.endswith("running_var"):
          tensor.copy_(torch.rand(tensor.shape, generator=gen) + 0.5)
        else:
          tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
  return model.eval()


def test_converted_pth_matches_torch_and_initialises_r3d18(tmp_path):
  model = _randomised(torch_models.TorchR3D18(num_classes=400, width_multiplier=WIDTH))
  weights = tmp_path / "r3d_18_random.pth"
  torch.save(model.state_dict(), weights)
  out = tmp_path / "r3d18_ckpt"
  assert convert.main([str(weights), "--out", str(out), "--width_multiplier", str(WIDTH)]) == 0
  variables, info = convert.load(out)
  assert info["num_classes"] == 400 and info["source"] == "r3d_18_random.pth"

  clips = np.random.default_rng(0).normal(size=(2, 8, 32, 32, 3)).astype(np.float32)
  with torch.no_grad():
    expected = model(torch.from_numpy(clips).permute(0, 4, 1, 2, 3)).numpy()
  flax_model = get_model("r3d18", num_classes=400, width_multiplier=WIDTH)
  got = flax_model.apply(variables, jnp.asarray(clips), train=False)
  np.testing.assert_allclose(np.asarray(got), expected, atol=1e-4, rtol=1e-4)

  # The same checkpoint initialises a 3-class R3D-18 (head left fresh) and a ConvLSTM backbone.
  three = get_model("r3d18", num_classes=3, width_multiplier=WIDTH)
  abstract = jax.eval_shape(lambda: three.init(jax.random.key(0), clips[:1], train=False))
  leaves, notes = convert_lib.pretrained_leaves(abstract, variables)
  assert ("params", "stem", "conv", "kernel") in leaves
  assert not any(k[1] == "fc" for k in leaves) and any("fc" in n for n in notes)
  ae = get_model("convlstm_ae", num_classes=3, width_multiplier=WIDTH)
  abstract = jax.eval_shape(lambda: ae.init(jax.random.key(0), clips[:1], train=False))
  leaves, _ = convert_lib.pretrained_leaves(abstract, variables)
  assert ("batch_stats", "backbone", "layer4", "block1", "bn2", "var") in leaves


def test_convert_refuses_another_architecture_naming_keys(tmp_path, capsys):
  model = torch_models.TorchR3D18(num_classes=400, width_multiplier=WIDTH)
  state = model.state_dict()
  state.pop("layer2.0.downsample.0.weight")
  state["layer1.0.conv1.0.weight"] = state["layer1.0.conv1.0.weight"][:, :, :1]
  np.savez(tmp_path / "other.npz", **{k: v.numpy() for k, v in state.items()})
  assert convert.main([str(tmp_path / "other.npz"), "--out", str(tmp_path / "o"),
                       "--width_multiplier", str(WIDTH)]) == 2
  assert "missing keys ['layer2.0.downsample.0.weight']" in capsys.readouterr().err
  state = model.state_dict()
  state["layer1.0.conv1.0.weight"] = state["layer1.0.conv1.0.weight"][:, :, :1]
  np.savez(tmp_path / "shape.npz", **{k: v.numpy() for k, v in state.items()})
  assert convert.main([str(tmp_path / "shape.npz"), "--out", str(tmp_path / "s"),
                       "--width_multiplier", str(WIDTH)]) == 2
  assert "layer1.0.conv1.0.weight: got (8, 8, 1, 3, 3)" in capsys.readouterr().err
  assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()


def test_summary_reproduces_r3d18_table_without_allocating():
  result = summary_lib.summarize(get_model("r3d18", num_classes=400), (1, 12, 64, 64, 3))
  assert result["total_params"] == 33_371_472
  shapes = {layer["path"]: layer["output_shape"] for layer in result["layers"]}
  assert shapes["stem"] == (1, 12, 32, 32, 64)
  assert shapes["layer2"] == (1, 6, 16, 16, 128)
  assert shapes["layer4"] == (1, 2, 4, 4, 512)
  assert sum(layer["params"] for layer in result["layers"]) == result["total_params"]


def test_summary_command_prints_json():
  result = subprocess.run([sys.executable, "-m", "mejax.models", "summary", "--config",
                           "configs/convlstm.py", "--json"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-2000:]
  out = json.loads(result.stdout)
  assert out["model"] == "convlstm_ae" and out["total_params"] == 37_602_902
  assert out["input_shape"] == [1, 12, 64, 64, 3]


def test_init_state_puts_imported_weights_in_every_fold(tmp_path):
  import optax
  from mejax import steps
  torch_model = _randomised(torch_models.TorchR3D18(num_classes=400, width_multiplier=WIDTH))
  torch.save(torch_model.state_dict(), tmp_path / "w.pth")
  assert convert.main([str(tmp_path / "w.pth"), "--out", str(tmp_path / "ckpt"),
                       "--width_multiplier", str(WIDTH)]) == 0
  loaded, _ = convert.load(tmp_path / "ckpt")
  model = get_model("convlstm_ae", num_classes=3, width_multiplier=WIDTH)
  sample = jnp.zeros((1, 4, 32, 32, 3))
  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), sample, train=False))
  leaves, _ = convert_lib.pretrained_leaves(abstract, loaded)
  keys = jax.random.split(jax.random.key(1), 2)
  state = jax.jit(lambda k, p: steps.init_state(model, optax.adam(1e-3), k, sample, False, p))(
      keys, leaves)
  stem = np.asarray(loaded["params"]["stem"]["conv"]["kernel"])
  for fold in range(2):
    np.testing.assert_array_equal(state.params["backbone"]["stem"]["conv"]["kernel"][fold], stem)
    np.testing.assert_array_equal(state.batch_stats["backbone"]["layer1"]["block0"]["bn1"]["var"]
                                  [fold], loaded["batch_stats"]["layer1"]["block0"]["bn1"]["var"])
  head = state.params["head"]
  assert not np.array_equal(jax.tree_util.tree_leaves(head)[0][0],
                            jax.tree_util.tree_leaves(head)[0][1])  # the rest stays per fold


def test_init_from_a_directory_that_is_not_a_checkpoint_says_so(tmp_path):
  with pytest.raises(FileNotFoundError, match="mejax_weights.json.*python -m mejax.convert"):
    convert.load(tmp_path)
