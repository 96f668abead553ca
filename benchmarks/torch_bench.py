"""Times a PyTorch train / eval step of the baseline models (`benchmarks.torch_models`).

The work is mejax's: the same model (`tests/test_torch_baseline.py` proves the outputs equal),
the same clip shape (mejax's (N, T, H, W, C) is (N, C, T, H, W) here), cross-entropy on logits
and Adam (lr 1e-3). The input and labels are fixed random tensors made once, so the figure is
compute only, no input pipeline. Times are the median over `steps` after `warmup` steps.

Importable without JAX. On GPU, `bf16=True` runs the step under
`torch.autocast('cuda', dtype=torch.bfloat16)` with float32 parameters (mejax's `dtype=bfloat16`
keeps float32 parameters too), and the clock is read after `torch.cuda.synchronize()`.

    python -m benchmarks.torch_bench --model convlstm_ae --width 0.0625 --batch 16 \
        --frames 12 --size 32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from typing import Any

import torch
from torch import nn

from benchmarks import torch_models

MODELS = ('r3d18', 'convlstm_ae')


def build_model(name: str, num_classes: int = 3, width_multiplier: float = 1.0,
                channels: int = 3, **kwargs: Any) -> nn.Module:
  """'r3d18' (R3D-18 with a `num_classes` head) or 'convlstm_ae' (the ConvLSTM autoencoder)."""
  if name == 'r3d18':
    return torch_models.TorchR3D18(num_classes=num_classes, width_multiplier=width_multiplier,
                                   in_channels=channels, **kwargs)
  if name == 'convlstm_ae':
    return torch_models.TorchConvLSTMAutoencoder(num_classes, width_multiplier=width_multiplier,
                                                 in_channels=channels, **kwargs)
  raise ValueError(f'Unknown model {name!r}; known: {MODELS}')


def _setup(model: nn.Module, batch_size: int, num_frames: int, size: int, channels: int,
           num_classes: int, threads: int | None, device: str, seed: int):
  torch.set_num_threads(threads or os.cpu_count() or 1)
  device = torch.device(device)
  generator = torch.Generator().manual_seed(seed)
  clips = torch.randn((batch_size, channels, num_frames, size, size), generator=generator)
  labels = torch.randint(0, num_classes, (batch_size,), generator=generator)
  return model.to(device), clips.to(device), labels.to(device), device


def _tune(model: nn.Module, clips: torch.Tensor, compile_model: bool):
  """PyTorch at its best ordinary settings (`tuned=True`): (model, clips, settings applied) with
  channels-last weights and clips, cuDNN's autotuner and torch.compile (`_timed_with_fallback`
  records a compile failure and times the eager model)."""
  torch.backends.cudnn.benchmark = True
  # Channels-last per weight: 3D convolutions' 5-D weights, and the ConvLSTM's 2D ones (4-D).
  for param in model.parameters():
    if param.dim() in (4, 5):
      param.data = param.data.contiguous(memory_format=(
          torch.channels_last_3d if param.dim() == 5 else torch.channels_last))
  clips = clips.contiguous(memory_format=torch.channels_last_3d)
  settings = {'channels_last_3d': True, 'cudnn_benchmark': True, 'torch_compile': 'off'}
  if compile_model:
    settings['torch_compile'] = 'on'
    model = torch.compile(model)
  return model, clips, settings


def _timed_with_fallback(make_step, model, clips, tuned, compile_model, steps, warmup, device):
  """Times make_step(model, clips); a torch.compile that fails falls back to the eager model."""
  settings = {}
  if tuned:
    eager = model
    model, clips, settings = _tune(model, clips, compile_model)
    if compile_model:
      try:
        return _timed(make_step(model, clips), steps, warmup, device), settings
      except Exception as e:  # noqa: BLE001  inductor/triton failures are many and varied
        settings['torch_compile'] = f'failed, eager used ({type(e).__name__}: {str(e)[:200]})'
        model = eager
  return _timed(make_step(model, clips), steps, warmup, device), settings


def _autocast(device: torch.device, bf16: bool):
  if not bf16:
    return contextlib.nullcontext()
  return torch.autocast(device.type, dtype=torch.bfloat16)


def _timed(step, steps: int, warmup: int, device: torch.device) -> list[float]:
  """Runs `step` warmup + steps times; the seconds of the last `steps` runs."""
  synchronize = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
  for _ in range(warmup):
    step()
  synchronize()
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step()
    synchronize()
    times.append(time.perf_counter() - start)
  return times


def _report(kind: str, model: nn.Module, times: list[float], batch_size: int,
            shape: tuple[int, ...], threads: int, device: torch.device, bf16: bool,
            warmup: int) -> dict[str, Any]:
  seconds = statistics.median(times)
  return {
      'framework': 'torch', 'torch_version': torch.__version__, 'kind': kind,
      'model': type(model).__name__, 'device': str(device), 'bf16': bf16,
      'threads': threads, 'batch_size': batch_size, 'input_shape': shape,
      'steps': len(times), 'warmup': warmup, 'seconds_per_step': seconds,
      'clips_per_second': batch_size / seconds, 'times': times,
  }


def time_train_step(model: nn.Module, batch_size: int, num_frames: int, size: int,
                    channels: int = 3, num_classes: int = 3, steps: int = 10, warmup: int = 3,
                    threads: int | None = None, device: str = 'cpu', bf16: bool = False,
                    seed: int = 0, tuned: bool = False,
                    compile_model: bool = True) -> dict[str, Any]:
  """Seconds per train step: forward (train mode) -> cross-entropy -> backward -> Adam step.

  `model` must output (N, num_classes) logits. Returns a dict with `seconds_per_step` (median),
  `clips_per_second`, the per-step `times` and the settings. `tuned`: the best ordinary
  settings above (torch.compile only with `compile_model`).
  """
  model, clips, labels, device = _setup(model, batch_size, num_frames, size, channels,
                                        num_classes, threads, device, seed)
  model.train()
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  loss_fn = nn.CrossEntropyLoss()

  def make_step(net, inputs):
    def step():
      optimizer.zero_grad(set_to_none=True)
      with _autocast(device, bf16):
        logits = net(inputs)
      loss = loss_fn(logits.float(), labels)
      loss.backward()
      optimizer.step()
    return step

  times, settings = _timed_with_fallback(make_step, model, clips, tuned, compile_model, steps,
                                         warmup, device)
  return dict(_report('train', model, times, batch_size, tuple(clips.shape),
                      torch.get_num_threads(), device, bf16, warmup), **settings)


def time_eval_step(model: nn.Module, batch_size: int, num_frames: int, size: int,
                   channels: int = 3, num_classes: int = 3, steps: int = 10, warmup: int = 3,
                   threads: int | None = None, device: str = 'cpu', bf16: bool = False,
                   seed: int = 0, tuned: bool = False,
                   compile_model: bool = True) -> dict[str, Any]:
  """Seconds per eval step: forward in eval mode (running BN statistics) under `no_grad`."""
  model, clips, _, device = _setup(model, batch_size, num_frames, size, channels, num_classes,
                                   threads, device, seed)
  model.eval()

  def make_step(net, inputs):
    def step():
      with torch.no_grad(), _autocast(device, bf16):
        net(inputs)
    return step

  times, settings = _timed_with_fallback(make_step, model, clips, tuned, compile_model, steps,
                                         warmup, device)
  return dict(_report('eval', model, times, batch_size, tuple(clips.shape),
                      torch.get_num_threads(), device, bf16, warmup), **settings)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--model', choices=MODELS, default='convlstm_ae')
  parser.add_argument('--width', type=float, default=1.0, help='width_multiplier')
  parser.add_argument('--classes', type=int, default=3)
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--frames', type=int, default=12)
  parser.add_argument('--size', type=int, default=64)
  parser.add_argument('--channels', type=int, default=3)
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--threads', type=int, default=None)
  parser.add_argument('--device', default='cpu')
  parser.add_argument('--bf16', action='store_true')
  parser.add_argument('--eval', action='store_true', help='time the eval step instead')
  args = parser.parse_args(argv)
  model = build_model(args.model, args.classes, args.width, args.channels)
  timer = time_eval_step if args.eval else time_train_step
  result = timer(model, args.batch, args.frames, args.size, channels=args.channels,
                 num_classes=args.classes, steps=args.steps, warmup=args.warmup,
                 threads=args.threads, device=args.device, bf16=args.bf16)
  print(json.dumps(result))


if __name__ == '__main__':
  main()
