"""Captioning instructions, one drawn at random per segment (paper, Appendix A.2).

The paper's captioner (VILA-1.5) was asked for a detailed description of each segment with
an instruction "randomly selected from the list" of its Table 4. The list below is written
in that spirit: each asks for a dense, visual description of one clip. The draw is seeded
by the build's seed, the video's id and the segment's index, so the same build gives the
same instruction to the same segment whatever the order, engine or number of workers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["CAPTION_INSTRUCTIONS", "draw_instruction", "draw_instructions"]

CAPTION_INSTRUCTIONS: tuple[str, ...] = (
    "Describe this video clip in detail.",
    "Give a detailed description of everything that happens in this video segment.",
    "Provide a thorough account of the scene: the people or objects, their appearance, what they do and where.",
    "Explain in detail what can be seen in this clip, including colours, positions and movements.",
    "Write a dense caption for this video segment, covering every visible element and action.",
    "Describe the setting, the subjects and the actions shown in this clip as fully as you can.",
    "What is happening in this video? Describe it comprehensively, from the background to the smallest detail.",
    "Narrate this video segment in detail, as if describing it to someone who cannot see it.",
    "Summarise the visual content of this clip in rich detail, including any text shown on screen.",
    "Give an elaborate description of this scene and how it changes over time.",
    "Characterise this video clip: describe the objects, their attributes, their motion and the environment.",
    "Describe the video in detail, noting what appears, where it is, and what moves.",
)
"""Default instructions for dense segment captioning."""


def draw_instruction(seed: int, video_id: str, segment: int, instructions: Sequence[str] = CAPTION_INSTRUCTIONS) -> str:
    """The instruction for segment ``segment`` of video ``video_id``.

    Args:
        seed: the build's seed.
        video_id: the video's stable id.
        segment: the segment's index in the video.
        instructions: the list to draw from (non-empty).

    Returns:
        One element of ``instructions``; the same arguments always give the same element.

    Raises:
        ValueError: ``instructions`` is empty.

    Example:
        >>> draw_instruction(0, "synth-0-00000", 3) == draw_instruction(0, "synth-0-00000", 3)
        True
    """
    if not instructions:
        raise ValueError("the instruction list is empty")
    # A string seed is hashed with SHA-512 by `random`, so the draw is stable across processes
    # (unlike `hash()`, which PYTHONHASHSEED salts).
    return random.Random(f"{seed}/{video_id}/{segment}").choice(list(instructions))


def draw_instructions(
    seed: int, video_id: str, num_segments: int, instructions: Sequence[str] = CAPTION_INSTRUCTIONS
) -> list[str]:
    """:func:`draw_instruction` for segments ``0 .. num_segments - 1``."""
    return [draw_instruction(seed, video_id, index, instructions) for index in range(num_segments)]
