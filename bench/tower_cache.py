"""Tower-cache benchmark: what ``tower_cache_mb`` saves in a training step of the synthetic preset.

A stage 2 micro-batch of the shipped synthetic checkpoint (64 px CLIP tower, connector, router,
SmolLM2-135M with its LoRA adapter): ``--samples`` questions, each about a video of ``--segments``
scenes of ``--frames`` frames, all of which the vision tower encodes for the router. A step is
forward + backward + AdamW update of the stage's trainable parts (connector, router, projector,
the adapter), once with the tower run on every frame and once with the tower's features kept
(``FrameFeatureCache``, filled by one step first, as after a training run's first epoch). The two
are timed interleaved in one run; the medians and their ratio are printed, and the tower's share
of the uncached step.

Run: ``python bench/tower_cache.py [--repeats 5] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from salova.infer.models import shipped_checkpoint
from salova.model import FrameFeatureCache
from salova.train.config import LoraConfig
from salova.train.data import Example, RecordCollator
from salova.train.loop import salova_step
from salova.train.weights import load_trained, prepare_for_stage

TRAINABLE = ("connector", "router", "projector", "language_model")  # synthetic-stage2.yaml
TOP_K = 3


def examples(samples: int, segments: int, frames: int, size: int, seed: int) -> list[Example]:
    """Questions about random videos (the step's cost does not depend on the pixels)."""
    rng = np.random.default_rng(seed)
    batch = []
    for _ in range(samples):
        labels = np.zeros((1, segments), dtype=np.int64)
        labels[0, rng.integers(segments)] = 1
        batch.append(
            Example(
                frames=[rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8) for _ in range(segments)],
                conversation=[
                    {"role": "user", "content": "What colour is the star? A. red B. blue C. green D. grey"},
                    {"role": "assistant", "content": "blue"},
                ],
                queries=["What colour is the star?"],
                labels=labels,
                timestamps=[(float(i * frames), float((i + 1) * frames)) for i in range(segments)],
            )
        )
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=4, help="questions per micro-batch (synthetic-stage2.yaml: 4)")
    parser.add_argument("--segments", type=int, default=23, help="scenes per video (the training corpus: 23)")
    parser.add_argument("--frames", type=int, default=13, help="frames per scene (1 FPS, 13 s scenes)")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps of each kind")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    folder = shipped_checkpoint()
    if folder is None:
        raise SystemExit("error: the shipped synthetic checkpoint is not installed")
    stage_model = load_trained(folder)
    prepare_for_stage(stage_model, TRAINABLE, LoraConfig())
    model = stage_model.model.train()
    tower = model.vision_tower
    size = tower.image_size
    inputs = RecordCollator(stage_model.processor, timestamps=model.config.focusfast_timestamps)(
        examples(args.samples, args.segments, args.frames, size, seed=0)
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    step_fn = salova_step(TOP_K)
    cache = FrameFeatureCache(2**30)

    def step(cached: bool) -> float:
        tower.feature_cache = cache if cached else None
        started = time.perf_counter()
        out = step_fn(model, inputs)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return time.perf_counter() - started

    def tower_seconds() -> float:
        tower.feature_cache = None
        started = time.perf_counter()
        tower(inputs["pixel_values"])
        return time.perf_counter() - started

    step(cached=False)  # warm-up
    step(cached=True)  # fills the cache
    plain, kept, towers = [], [], []
    for _ in range(args.repeats):
        plain.append(step(cached=False))
        kept.append(step(cached=True))
        towers.append(tower_seconds())
    frames = int(inputs["pixel_values"].shape[0])
    plain_s, kept_s, tower_s = (statistics.median(v) for v in (plain, kept, towers))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch threads")
    print(
        f"micro-batch: {args.samples} questions x {args.segments} scenes x {args.frames} frames = {frames} frames "
        f"of {size} px; {args.repeats} timed steps of each kind (medians)"
    )
    print(f"{'step':<34}{'seconds':>9}")
    print(f"{'tower on every frame':<34}{plain_s:>9.3f}")
    print(f"{'tower features kept':<34}{kept_s:>9.3f}")
    print(f"{'  the tower alone (forward)':<34}{tower_s:>9.3f}")
    print(f"speed-up: {plain_s / kept_s:.2f}x; the tower's share of the uncached step: {tower_s / plain_s:.0%}")
    print(f"kept: {len(cache)} frames, {cache.bytes / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
