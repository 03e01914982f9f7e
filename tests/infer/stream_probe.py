"""Peak memory of a streaming session, measured in its own process.

Reads a live stream from standard input with a tiny SALOVA model whose segment encodings are large
(256 latents of width 256: 256 KiB per segment, so holding every segment of a 2-hour stream would
show in the resident set), answers one question at the given stream times and prints one JSON object:
``peak_rss_kib`` (``VmHWM``), ``segments_seen`` and the answers.

    salova synth-stream ... | python stream_probe.py --at 600 --at 7190 [--budget 24] [--window 8]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from salova.infer import AssistantConfig, VideoAssistant
from salova.infer.models import tiny_processor
from salova.infer.salova_pipeline import SalovaPipeline
from salova.infer.stream import StreamConfig, StreamSession
from salova.model import SalovaForCausalLM, tiny_config

QUESTION = "Which word is written on screen?"
WIDE = {"connector_num_latents": 256, "connector_hidden_size": 256, "router_hidden_size": 256,
        "router_intermediate_size": 256}  # fmt: skip


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--at", type=float, action="append", default=[])
    parser.add_argument("--window", type=int, default=StreamConfig.window)
    parser.add_argument("--budget", type=int, default=StreamConfig.budget)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = tiny_config(**WIDE)
    pipeline = SalovaPipeline(SalovaForCausalLM(config), tiny_processor(config), "tiny-wide")
    with tempfile.TemporaryDirectory() as cache:
        assistant = VideoAssistant(pipeline, AssistantConfig(cache_dir=Path(cache), max_new_tokens=4, top_k=3))
        session = StreamSession(assistant, StreamConfig(window=args.window, budget=args.budget), [QUESTION])
        answers = [
            {
                "seen_until": answer.seen_until,
                "segments_seen": answer.segments_seen,
                "memory": len(answer.timeline),
                "read": [[s.start, s.end] for s in answer.segments],
            }
            for answer in session.answers("-", QUESTION, args.at)
        ]
    print(json.dumps({"peak_rss_kib": peak_rss_kib(), "segments_seen": session.memory.seen, "answers": answers}))


if __name__ == "__main__":
    main()
