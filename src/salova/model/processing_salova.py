"""Processor: raw segments and text in, :class:`SalovaForCausalLM` inputs out.

Input contract (what video ingest hands over): per video, a list of segments; per segment a
``numpy.ndarray`` of shape ``(num_frames, H, W, 3)``, dtype ``uint8``, RGB, already resized/cropped
to the vision tower's input size (``H = W = vision_config.image_size``, ingest's
``SamplingConfig.frame_size``), plus optionally its ``(start_seconds, end_seconds)``.
:meth:`SalovaProcessor.unpack_segments` turns ``salova.video`` segments into this form. Videos
may hold 1 to thousands of segments, segments 1 to hundreds of frames.

Output (a ``transformers.BatchFeature`` of tensors), with the frames *packed*, not padded:

=========================  ===========================================  ==========================
key                        shape                                        meaning
=========================  ===========================================  ==========================
``pixel_values``           ``(total_frames, 3, H, W)`` float32          normalised frames, video by
                                                                        video, segment by segment
``frames_per_segment``     ``(total_segments,)``                        frames of each segment
``segments_per_video``     ``(batch,)``                                 segments of each video
``input_ids``              ``(batch, length)``                          chat prompt, one ``<video>``
``attention_mask``         ``(batch, length)``                          1 on real tokens (right pad)
``labels``                 ``(batch, length)``                          answer ids, ``-100`` elsewhere
                                                                        (only when answers are given)
``query_input_ids``        ``(total_queries, query_length)``            text-tower ids of the queries
``query_attention_mask``   ``(total_queries, query_length)``
``queries_per_video``      ``(batch,)``
``segment_timestamp_ids``  ``(total_segments, span_length)``            LLM ids of "[12.0s-45.3s]"
``segment_timestamp_mask`` ``(total_segments, span_length)``            (only when timestamps given)
=========================  ===========================================  ==========================

The prompt is the LLM's own chat template with the video placeholder in the first user turn,
before the question by default (so the LLM reads fast -> focus -> question).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import AutoTokenizer, BatchFeature, PreTrainedTokenizerBase
from transformers.image_utils import (
    IMAGENET_STANDARD_MEAN,
    IMAGENET_STANDARD_STD,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
)

from salova.errors import CheckpointError, ConfigError
from salova.model.configuration_salova import SalovaConfig
from salova.model.focusfast import IGNORE_INDEX

if TYPE_CHECKING:
    from salova.video import Segment

logger = logging.getLogger(__name__)

__all__ = ["SalovaProcessor", "DEFAULT_VIDEO_TOKEN", "IMAGE_NORMALIZATION", "QUERY_PADDING"]

DEFAULT_VIDEO_TOKEN = "<video>"
DEFAULT_TIMESTAMP_TEMPLATE = "[{start:.1f}s-{end:.1f}s]"
PROCESSOR_CONFIG_NAME = "salova_processor_config.json"
TEXT_TOWER_TOKENIZER_FOLDER = "text_tower_tokenizer"
VIDEO_POSITIONS = ("before_question", "after_question")
ROLES = ("system", "user", "assistant")
MAX_PIXEL_VALUE = 255.0
# Normalisation each vision tower family was trained with.
IMAGE_NORMALIZATION: dict[str, tuple[list[float], list[float]]] = {
    "clip_vision_model": (list(OPENAI_CLIP_MEAN), list(OPENAI_CLIP_STD)),
    "siglip_vision_model": (list(IMAGENET_STANDARD_MEAN), list(IMAGENET_STANDARD_STD)),
}
# CLIP pools the end-of-text token, so padding to the longest query is enough; SigLIP was trained on
# queries padded to its full context and pools the last position.
QUERY_PADDING: dict[str, str] = {"clip_text_model": "longest", "siglip_text_model": "max_length"}

Message = Mapping[str, str]


def _require_prefix(prefix: str, text: str) -> None:
    if not text.startswith(prefix):
        raise ConfigError(
            "the chat template does not render conversations incrementally (a longer conversation does not "
            "start with the rendering of its beginning); labels cannot be aligned"
        )


def _pad(rows: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max((len(row) for row in rows), default=0)
    ids = torch.full((len(rows), length), value, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[index, : len(row)] = 1
    return ids, mask


class SalovaProcessor:
    """Frames, queries and chat prompts for :class:`~salova.model.SalovaForCausalLM`.

    Args:
        tokenizer: the LLM tokenizer; needs a chat template. ``video_token`` is added to it as a special
            token when missing (the model never embeds it, so the LLM vocabulary need not grow).
        text_tower_tokenizer: the router's text-tower tokenizer (CLIP/SigLIP); needs a pad token.
        image_size: side of the square frames the vision tower takes.
        image_mean: per-channel mean (RGB, 0..1 scale).
        image_std: per-channel standard deviation.
        query_max_length: context of the text tower; longer queries are truncated with a warning.
        query_padding: ``"longest"`` or ``"max_length"``.
        video_token: the placeholder text.
        video_position: ``"before_question"`` (paper Fig. 2) or ``"after_question"``.
        timestamp_template: format of a segment's span, with ``{start}`` and ``{end}`` in seconds.

    Raises:
        ConfigError: an invalid option or a tokenizer without the needed template/pad token.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        text_tower_tokenizer: PreTrainedTokenizerBase,
        *,
        image_size: int,
        image_mean: Sequence[float],
        image_std: Sequence[float],
        query_max_length: int,
        query_padding: str = "longest",
        video_token: str = DEFAULT_VIDEO_TOKEN,
        video_position: str = "before_question",
        timestamp_template: str = DEFAULT_TIMESTAMP_TEMPLATE,
    ):
        if video_position not in VIDEO_POSITIONS:
            raise ConfigError(f"video_position must be one of {list(VIDEO_POSITIONS)}, got {video_position!r}")
        if query_padding not in ("longest", "max_length"):
            raise ConfigError(f"query_padding must be 'longest' or 'max_length', got {query_padding!r}")
        if len(image_mean) != 3 or len(image_std) != 3 or min(image_std) <= 0:
            raise ConfigError(f"image_mean/std must hold 3 values (std > 0), got {image_mean} / {image_std}")
        if image_size < 1 or query_max_length < 2:
            raise ConfigError(
                f"image_size must be >= 1 and query_max_length >= 2, got {image_size}, {query_max_length}"
            )
        if not tokenizer.chat_template:
            raise ConfigError("the LLM tokenizer has no chat template; set tokenizer.chat_template")
        if text_tower_tokenizer.pad_token_id is None:
            raise ConfigError("the text-tower tokenizer has no pad token")
        if video_token not in tokenizer.get_vocab():
            tokenizer.add_special_tokens({"additional_special_tokens": [video_token]})
        self.tokenizer = tokenizer
        self.text_tower_tokenizer = text_tower_tokenizer
        self.image_size = image_size
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]
        self.query_max_length = query_max_length
        self.query_padding = query_padding
        self.video_token = video_token
        self.video_position = video_position
        self.timestamp_template = timestamp_template

    @classmethod
    def from_config(
        cls,
        config: SalovaConfig,
        tokenizer: PreTrainedTokenizerBase,
        text_tower_tokenizer: PreTrainedTokenizerBase,
        **overrides: Any,
    ) -> SalovaProcessor:
        """A processor matching a model config: frame size, normalisation and query length from its towers."""
        mean, std = IMAGE_NORMALIZATION[config.vision_config.model_type]
        options: dict[str, Any] = {
            "image_size": config.vision_config.image_size,
            "image_mean": mean,
            "image_std": std,
            "query_max_length": config.text_tower_max_length,
            "query_padding": QUERY_PADDING[config.text_tower_config.model_type],
        }
        options.update(overrides)
        return cls(tokenizer, text_tower_tokenizer, **options)

    @property
    def video_token_id(self) -> int:
        """LLM id of the placeholder; the model's ``config.video_token_id`` must equal it."""
        return self.tokenizer.convert_tokens_to_ids(self.video_token)

    @property
    def pad_token_id(self) -> int:
        """Id padding LLM prompts: the pad token, or the end-of-sequence token when there is none
        (the attention mask makes the value irrelevant)."""
        if self.tokenizer.pad_token_id is not None:
            return self.tokenizer.pad_token_id
        return self.tokenizer.eos_token_id

    # ----------------------------------------------------------------- frames

    def preprocess_frames(self, frames: np.ndarray) -> torch.Tensor:
        """Normalise one segment's frames.

        Args:
            frames: ``(num_frames, image_size, image_size, 3)`` uint8 RGB.

        Returns:
            ``(num_frames, 3, image_size, image_size)`` float32.

        Raises:
            ValueError: wrong type, dtype or shape.
        """
        expected = f"(num_frames >= 1, {self.image_size}, {self.image_size}, 3) uint8 RGB"
        if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
            raise ValueError(
                f"frames must be a numpy uint8 array {expected}, got {type(frames).__name__} "
                f"{getattr(frames, 'dtype', '')}"
            )
        if frames.ndim != 4 or frames.shape[0] < 1 or frames.shape[1:] != (self.image_size, self.image_size, 3):
            raise ValueError(f"frames must have shape {expected}, got {frames.shape}")
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).to(torch.float32)
        mean = torch.tensor(self.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std).view(1, 3, 1, 1)
        return (pixels / MAX_PIXEL_VALUE - mean) / std

    @staticmethod
    def unpack_segments(segments: Sequence[Segment]) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
        """One ingested video (``salova.video.segment_video(...).segments``) in the processor's form.

        Returns:
            ``(frames, timestamps)``: the segments' frame arrays and ``(start_sec, end_sec)`` spans, to pass
            as one entry of ``videos`` and of ``timestamps``.

        Raises:
            ValueError: a segment holds no frames (ingest ran with ``keep_frames=False``).
        """
        frames, spans = [], []
        for segment in segments:
            if segment.frames is None:
                raise ValueError(f"segment {segment.index} holds no frames; ingest with keep_frames=True")
            frames.append(segment.frames)
            spans.append((segment.start_sec, segment.end_sec))
        return frames, spans

    def pack_videos(self, videos: Sequence[Sequence[np.ndarray]]) -> dict[str, torch.Tensor]:
        """Normalise and pack the frames of a batch of videos.

        Args:
            videos: per video, its segments' frame arrays (see :meth:`preprocess_frames`).

        Returns:
            ``pixel_values``, ``frames_per_segment``, ``segments_per_video``.

        Raises:
            ValueError: an empty batch or a video without segments.
        """
        if not videos or any(len(segments) == 0 for segments in videos):
            raise ValueError("every video needs at least one segment")
        frames = [self.preprocess_frames(segment) for segments in videos for segment in segments]
        return {
            "pixel_values": torch.cat(frames),
            "frames_per_segment": torch.tensor([len(f) for f in frames], dtype=torch.long),
            "segments_per_video": torch.tensor([len(segments) for segments in videos], dtype=torch.long),
        }

    # ----------------------------------------------------------------- text

    def tokenize_queries(self, queries: Sequence[Sequence[str]]) -> dict[str, torch.Tensor]:
        """Tokenise router queries with the text-tower tokenizer.

        Args:
            queries: per video, one or more query texts.

        Returns:
            ``query_input_ids``, ``query_attention_mask``, ``queries_per_video``.
        """
        if any(len(texts) == 0 for texts in queries):
            raise ValueError("every video needs at least one query")
        flat = [text for texts in queries for text in texts]
        lengths = [len(ids) for ids in self.text_tower_tokenizer(flat).input_ids]
        too_long = sum(length > self.query_max_length for length in lengths)
        if too_long:
            logger.warning(
                "%d of %d queries exceed the text tower's %d tokens (longest %d); truncated",
                too_long,
                len(flat),
                self.query_max_length,
                max(lengths),
            )
        encoded = self.text_tower_tokenizer(
            flat,
            padding=self.query_padding,
            truncation=True,
            max_length=self.query_max_length,
            return_tensors="pt",
        )
        return {
            "query_input_ids": encoded["input_ids"],
            "query_attention_mask": encoded["attention_mask"],
            "queries_per_video": torch.tensor([len(texts) for texts in queries], dtype=torch.long),
        }

    def tokenize_timestamps(self, timestamps: Sequence[Sequence[tuple[float, float]]]) -> dict[str, torch.Tensor]:
        """LLM ids of each segment's time span (``timestamp_template``), one row per segment."""
        texts = [self.timestamp_template.format(start=start, end=end) for spans in timestamps for start, end in spans]
        rows = [self.tokenizer(text, add_special_tokens=False).input_ids for text in texts]
        ids, mask = _pad(rows, self.pad_token_id)
        return {"segment_timestamp_ids": ids, "segment_timestamp_mask": mask}

    def build_conversation(self, question: str, answer: str | None = None) -> list[dict[str, str]]:
        """A one-turn conversation about a video: the user asks ``question``; ``answer`` is the target."""
        conversation = [{"role": "user", "content": question}]
        if answer is not None:
            conversation.append({"role": "assistant", "content": answer})
        return conversation

    def _with_placeholder(self, conversation: Sequence[Message]) -> list[dict[str, str]]:
        messages = [dict(message) for message in conversation]
        for message in messages:
            if message.get("role") not in ROLES or not isinstance(message.get("content"), str):
                raise ValueError(f"messages need a role in {list(ROLES)} and text content, got {message!r}")
        count = sum(message["content"].count(self.video_token) for message in messages)
        if count > 1:
            raise ValueError(f"a conversation may hold one {self.video_token!r} placeholder, found {count}")
        users = [message for message in messages if message["role"] == "user"]
        if not users:
            raise ValueError("a conversation needs a user message")
        if count == 0:
            first = users[0]
            if self.video_position == "before_question":
                first["content"] = f"{self.video_token}\n{first['content']}"
            else:
                first["content"] = f"{first['content']}\n{self.video_token}"
        return messages

    def _render(self, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

    def tokenize_conversation(self, conversation: Sequence[Message]) -> tuple[list[int], list[int]]:
        """Token ids and labels of one conversation; only assistant turns are labelled.

        A conversation that does not end with an assistant turn ends with the generation prompt.

        Returns:
            ``(input_ids, labels)`` of equal length.
        """
        messages = self._with_placeholder(conversation)
        pieces: list[tuple[str, bool]] = []
        done = ""
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            prompt = self._render(messages[:index], add_generation_prompt=True)
            full = self._render(messages[: index + 1], add_generation_prompt=False)
            _require_prefix(done, prompt)
            _require_prefix(prompt, full)
            pieces += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
            done = full
        if messages[-1]["role"] != "assistant":
            prompt = self._render(messages, add_generation_prompt=True)
            _require_prefix(done, prompt)
            pieces.append((prompt[len(done) :], False))
        input_ids: list[int] = []
        labels: list[int] = []
        for text, trainable in pieces:
            ids = self.tokenizer(text, add_special_tokens=False).input_ids
            input_ids += ids
            labels += ids if trainable else [IGNORE_INDEX] * len(ids)
        return input_ids, labels

    def tokenize_answers(self, question: str, answers: Sequence[str]) -> dict[str, Any]:
        """One prompt per candidate answer (the question asked, the answer given), for
        :meth:`~salova.model.SalovaForCausalLM.score_answers`.

        Returns:
            ``input_ids`` and ``attention_mask`` (right padded), and ``answer_lengths``: the
            answer's labelled tokens (its text and end of turn) that end each prompt.
        """
        rows, lengths = [], []
        for answer in answers:
            ids, labels = self.tokenize_conversation(self.build_conversation(question, answer))
            rows.append(ids)
            lengths.append(sum(label != IGNORE_INDEX for label in labels))
        input_ids, attention_mask = _pad(rows, self.pad_token_id)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "answer_lengths": lengths}

    @staticmethod
    def default_queries(conversation: Sequence[Message], video_token: str) -> list[str]:
        """The router queries of a conversation: its user turns without the placeholder."""
        return [
            message["content"].replace(video_token, "").strip() for message in conversation if message["role"] == "user"
        ]

    # ----------------------------------------------------------------- all together

    def __call__(
        self,
        videos: Sequence[Sequence[np.ndarray]],
        questions: Sequence[str] | None = None,
        answers: Sequence[str] | None = None,
        *,
        conversations: Sequence[Sequence[Message]] | None = None,
        queries: Sequence[Sequence[str]] | None = None,
        timestamps: Sequence[Sequence[tuple[float, float]]] | None = None,
    ) -> BatchFeature:
        """Prepare a batch: one video and one conversation per sample.

        Args:
            videos: per video, its segments' uint8 RGB frame arrays.
            questions: one question per video (a one-turn conversation); or give ``conversations``.
            answers: one target answer per question (training); labels are returned when given.
            conversations: per video, chat messages ``{"role", "content"}``; assistant turns are labelled.
            queries: per video, router query texts; by default the user turns of the conversation.
            timestamps: per video, ``(start_s, end_s)`` of each segment.

        Returns:
            A ``BatchFeature`` with the keys listed in the module docstring.

        Raises:
            ValueError: missing or mismatched arguments.
        """
        if (questions is None) == (conversations is None):
            raise ValueError("give either questions or conversations")
        if questions is not None:
            if answers is not None and len(answers) != len(questions):
                raise ValueError(f"got {len(answers)} answers for {len(questions)} questions")
            conversations = [
                self.build_conversation(q, None if answers is None else answers[i]) for i, q in enumerate(questions)
            ]
        if len(conversations) != len(videos):
            raise ValueError(f"got {len(conversations)} conversations for {len(videos)} videos")
        data: dict[str, torch.Tensor] = dict(self.pack_videos(videos))
        tokenized = [self.tokenize_conversation(conversation) for conversation in conversations]
        data["input_ids"], data["attention_mask"] = _pad([ids for ids, _ in tokenized], self.pad_token_id)
        if any(message["role"] == "assistant" for conversation in conversations for message in conversation):
            data["labels"], _ = _pad([labels for _, labels in tokenized], IGNORE_INDEX)
        if queries is None:
            queries = [self.default_queries(conversation, self.video_token) for conversation in conversations]
        if len(queries) != len(videos):
            raise ValueError(f"got queries for {len(queries)} videos, expected {len(videos)}")
        data.update(self.tokenize_queries(queries))
        if timestamps is not None:
            if [len(spans) for spans in timestamps] != [len(segments) for segments in videos]:
                raise ValueError("timestamps must hold one (start, end) pair per segment of each video")
            data.update(self.tokenize_timestamps(timestamps))
        return BatchFeature(data=data)

    def batch_decode(self, sequences: torch.Tensor, skip_special_tokens: bool = True) -> list[str]:
        """Decode generated ids with the LLM tokenizer."""
        return self.tokenizer.batch_decode(sequences, skip_special_tokens=skip_special_tokens)

    # ----------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "image_mean": self.image_mean,
            "image_std": self.image_std,
            "query_max_length": self.query_max_length,
            "query_padding": self.query_padding,
            "video_token": self.video_token,
            "video_position": self.video_position,
            "timestamp_template": self.timestamp_template,
        }

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        """Write both tokenizers and the options; the LLM tokenizer goes to the folder itself, so the
        folder can be the model's checkpoint folder."""
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(folder)
        self.text_tower_tokenizer.save_pretrained(folder / TEXT_TOWER_TOKENIZER_FOLDER)
        (folder / PROCESSOR_CONFIG_NAME).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> SalovaProcessor:
        """Load a processor written by :meth:`save_pretrained`.

        Raises:
            CheckpointError: the folder lacks the processor files.
        """
        folder = Path(directory)
        config_path = folder / PROCESSOR_CONFIG_NAME
        if not config_path.is_file() or not (folder / TEXT_TOWER_TOKENIZER_FOLDER).is_dir():
            raise CheckpointError(
                f"{folder}: not a SALOVA processor folder (needs {PROCESSOR_CONFIG_NAME} and "
                f"{TEXT_TOWER_TOKENIZER_FOLDER}/)"
            )
        options = json.loads(config_path.read_text())
        tokenizer = AutoTokenizer.from_pretrained(folder)
        text_tower_tokenizer = AutoTokenizer.from_pretrained(folder / TEXT_TOWER_TOKENIZER_FOLDER)
        return cls(tokenizer, text_tower_tokenizer, **options)
