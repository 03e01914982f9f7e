"""Connector benchmark: what the token drop saves, and what FocusFast hands the language model.

1. Training-step time of the paper-size ST-Connector (hidden 1024, 2 layers, 2 heads x 64,
   256 + 1 latents, FFN x4; CLIP-L-336 geometry: 144 tokens per frame) on one 60-frame segment
   (8,640 tokens), at drop rate 0.0 and 0.7, plus the rate the default schedule gives that segment
   in stage 1.5 (maximum 0.7, full rate at 125 frames). A step is forward + backward + AdamW
   update on frame features as a frozen vision tower would give them; the rates are timed
   interleaved in one run and the median is reported.
2. Visual tokens handed to the LLM for a 1-hour video at 1 FPS: dense (3,600 frames x 144 tokens)
   versus SALOVA (N_v routing tokens + K x 256 latents), counted on the assembled LLM input of a
   model with the paper's L = 256 and K = 5 (small towers and LLM, which do not change the count).

Run: ``python bench/connector.py [--repeats 15]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from transformers import CLIPVisionConfig

from salova.model import SalovaForCausalLM, TokenType, tiny_config
from salova.model.connector import token_drop_rate

SEGMENT_FRAMES = 60
STAGE_MAX_DROP = 0.7  # paper Table 5, stage 1.5
VIDEO_SECONDS = 3600
FPS = 1
AVERAGE_SEGMENT_SECONDS = 33  # SceneWalk's average segment length (DESIGN.md section 2)
PAPER_LATENTS = 256
PAPER_TOP_K = 5
DEFAULT_FULL_DROP_FRAMES = 125  # SalovaConfig.connector_full_drop_frames
TABLE_HEADER = ("setting", "rate", "kept", "step ms", "speed-up", "fwd+bwd ms", "speed-up")


def paper_connector_model(max_drop: float, full_drop_frames: int) -> SalovaForCausalLM:
    """A model whose connector has the paper's sizes; its towers are one layer deep (not timed)."""
    vision = CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=1,
        image_size=336,
        patch_size=14,
    )
    config = tiny_config(
        vision_config=vision,
        vision_feature_layer=-1,
        connector_hidden_size=1024,
        connector_num_heads=2,
        connector_head_dim=64,
        connector_num_latents=PAPER_LATENTS,
        connector_ff_mult=4,
        connector_max_frames=2160,
        connector_max_token_drop=max_drop,
        connector_full_drop_frames=full_drop_frames,
        connector_chunk_tokens=1_048_576,
        router_hidden_size=1024,
    )
    return SalovaForCausalLM(config)


def time_training_steps(repeats: int) -> dict[str, tuple[float, float, int]]:
    """Median step and forward+backward times (ms) and kept tokens, per drop setting."""
    settings = {
        "drop 0.0": paper_connector_model(0.0, DEFAULT_FULL_DROP_FRAMES),
        "drop 0.7": paper_connector_model(STAGE_MAX_DROP, SEGMENT_FRAMES),  # full rate reached at 60 frames
        "stage 1.5 schedule": paper_connector_model(STAGE_MAX_DROP, DEFAULT_FULL_DROP_FRAMES),
    }
    connectors = {name: model.connector.train() for name, model in settings.items()}
    optimizers = {name: torch.optim.AdamW(c.parameters(), lr=1e-4) for name, c in connectors.items()}
    features = torch.randn(SEGMENT_FRAMES, 144, 1024)
    counts = torch.tensor([SEGMENT_FRAMES])
    steps: dict[str, list[float]] = {name: [] for name in connectors}
    passes: dict[str, list[float]] = {name: [] for name in connectors}
    kept: dict[str, int] = {}
    for repeat in range(repeats + 2):  # two warm-up rounds
        for name, connector in connectors.items():
            start = time.perf_counter()
            out = connector(features, counts)
            loss = out.latents.square().mean() + out.routing_tokens.square().mean()
            loss.backward()
            backward_done = time.perf_counter()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
            done = time.perf_counter()
            kept[name] = int(out.kept_tokens[0])
            if repeat >= 2:
                steps[name].append((done - start) * 1000)
                passes[name].append((backward_done - start) * 1000)
    return {name: (statistics.median(steps[name]), statistics.median(passes[name]), kept[name]) for name in connectors}


def count_visual_tokens() -> tuple[int, int, int]:
    """Segments, SALOVA visual tokens and dense tokens for a 1-hour video at 1 FPS.

    The frames are random and the prompt is a placeholder between a few ids: only the counts matter,
    and they come from the same assembly the model uses for training and generation.
    """
    config = tiny_config(connector_num_latents=PAPER_LATENTS, focus_top_k=PAPER_TOP_K)
    model = SalovaForCausalLM(config).eval()
    frames = VIDEO_SECONDS * FPS
    per_segment = AVERAGE_SEGMENT_SECONDS * FPS
    lengths = [per_segment] * (frames // per_segment) + ([frames % per_segment] if frames % per_segment else [])
    size = config.vision_config.image_size
    question = torch.tensor([[1, 2, config.video_token_id, 3, 4, 5]])
    query = torch.randint(0, 250, (1, 12))
    with torch.no_grad():
        encodings = model.encode_segments(torch.randn(frames, 3, size, size), torch.tensor(lengths))
        scores = model.score_segments(encodings, query)
        selected = model.select_segments(encodings, scores)
        inputs = model.prepare_llm_inputs(question, None, encodings, selected)
    types = inputs.token_types[0]
    visual = int(((types == TokenType.FAST) | (types == TokenType.FOCUS)).sum())
    return len(lengths), visual, frames * 144


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed steps per setting (after 2 warm-ups)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch threads, torch {torch.__version__}"
    )

    tokens = SEGMENT_FRAMES * 144
    print(
        f"\nST-Connector training step, one {SEGMENT_FRAMES}-frame segment ({tokens} tokens), median of {args.repeats}:"
    )
    results = time_training_steps(args.repeats)
    schedule_rate = float(token_drop_rate(torch.tensor([SEGMENT_FRAMES]), STAGE_MAX_DROP, DEFAULT_FULL_DROP_FRAMES)[0])
    rates = {"drop 0.0": 0.0, "drop 0.7": STAGE_MAX_DROP, "stage 1.5 schedule": schedule_rate}
    base_step, base_pass, _ = results["drop 0.0"]
    print("{:20s} {:>5s} {:>6s} {:>9s} {:>9s} {:>11s} {:>9s}".format(*TABLE_HEADER))
    for name, (step, fwd_bwd, kept) in results.items():
        print(
            f"{name:20s} {rates[name]:5.3f} {kept:6d} {step:9.1f} {base_step / step:8.2f}x "
            f"{fwd_bwd:11.1f} {base_pass / fwd_bwd:8.2f}x"
        )

    segments, salova_tokens, dense_tokens = count_visual_tokens()
    print(f"\nVisual tokens handed to the LLM, {VIDEO_SECONDS // 60}-minute video at {FPS} FPS:")
    print(f"dense (144 per frame): {dense_tokens:,}")
    print(
        f"SALOVA ({segments} segments of <= {AVERAGE_SEGMENT_SECONDS} s, K = {PAPER_TOP_K}, L = {PAPER_LATENTS}): "
        f"{salova_tokens:,} = {segments} fast + {PAPER_TOP_K} x {PAPER_LATENTS} focus"
    )
    print(f"reduction: {dense_tokens / salova_tokens:.0f}x")


if __name__ == "__main__":
    main()
