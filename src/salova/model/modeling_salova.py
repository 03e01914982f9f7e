"""SALOVA model: towers, ST-Connector, SR-Router, FocusFast projector and a causal language model.

Data flow (one code path for training and inference)::

    pixel_values ─ vision_tower ─ connector ─> SegmentEncoding (routing token + L latents per segment)
    query ids ─ text_tower ─┐                                   │   [cache this for a video]
                            └─ router(routing tokens) ─> SegmentScores (queries x segments)
    focus = labels (training) or top-K scores  ─> projector ─> [fast | focus] at the <video> token
    ─> language_model ─> loss / generated ids

Public pieces, so that a video can be indexed once and questioned many times:
:meth:`SalovaForCausalLM.encode_segments`, :meth:`~SalovaForCausalLM.score_segments`,
:meth:`~SalovaForCausalLM.select_segments`, :meth:`~SalovaForCausalLM.prepare_llm_inputs`;
``forward`` and ``generate`` only compose them.

Module names (prefixes of every parameter, used to freeze stages): ``vision_tower``,
``text_tower``, ``connector``, ``router`` (including the text projection), ``projector``,
``language_model``.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn
from transformers import AutoModelForCausalLM, GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init

from salova.errors import ConfigError
from salova.model.configuration_salova import FOCUSFAST_PATHWAYS, SalovaConfig
from salova.model.connector import SpatioTemporalConnector
from salova.model.focusfast import (
    FocusFastInputs,
    FocusFastProjector,
    build_visual_block,
    select_focus_segments,
    splice_visual_blocks,
)
from salova.model.loading import component_config, load_part, pretrained_part
from salova.model.losses import similarity_loss
from salova.model.outputs import (
    SalovaAnswerScores,
    SalovaCausalLMOutput,
    SalovaGenerateOutput,
    SegmentEncoding,
    SegmentScores,
)
from salova.model.router import SegmentRetrievalRouter
from salova.model.selection import SelectorConfig, resolve_selector, select_subset
from salova.model.towers import TEXT_BACKBONES, VISION_BACKBONES, TextFeatures, TextTower, VisionTower

logger = logging.getLogger(__name__)

__all__ = [
    "SegmentEncoding",
    "SegmentScores",
    "SalovaCausalLMOutput",
    "SalovaGenerateOutput",
    "SalovaPreTrainedModel",
    "SalovaForCausalLM",
    "MODULE_NAMES",
]

MODULE_NAMES: tuple[str, ...] = ("vision_tower", "text_tower", "connector", "router", "projector", "language_model")
PRELU_INIT = 0.25  # torch's default PReLU slope


class _Routing(NamedTuple):
    scores: SegmentScores | None
    selected: tuple[torch.Tensor, ...]
    inputs: FocusFastInputs


class SalovaPreTrainedModel(PreTrainedModel):
    """Base class: SALOVA's config class, weight initialisation and ``transformers`` hooks."""

    config_class = SalovaConfig
    base_model_prefix = "salova"
    main_input_name = "input_ids"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["PerceiverLayer", "RouterLayer"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, nn.PReLU):
            init.constant_(module.weight, PRELU_INIT)
        elif isinstance(module, SpatioTemporalConnector):
            init.normal_(module.latents, mean=0.0, std=std)
            init.normal_(module.spatial_embedding, mean=0.0, std=std)
            init.normal_(module.temporal_embedding, mean=0.0, std=std)
        elif isinstance(module, SegmentRetrievalRouter):
            init.normal_(module.segment_position, mean=0.0, std=std)
            init.constant_(module.logit_scale, module.logit_scale_init)


def _as_list(values: torch.Tensor | Sequence[int]) -> list[int]:
    return [int(v) for v in values]


def _check_pathways(pathways: Sequence[str]) -> list[str]:
    """A per-call ``pathways`` override, validated like ``config.focusfast_pathways``."""
    pathways = list(pathways)
    if not pathways or len(set(pathways)) != len(pathways) or not set(pathways) <= set(FOCUSFAST_PATHWAYS):
        raise ValueError(
            f"pathways must be a non-empty ordering without repeats of {list(FOCUSFAST_PATHWAYS)}, got {pathways!r}"
        )
    return pathways


def _split_text(text: TextFeatures, counts: list[int]) -> list[TextFeatures]:
    return [
        TextFeatures(token_features=f, pooled=p, mask=m)
        for f, p, m in zip(
            text.token_features.split(counts), text.pooled.split(counts), text.mask.split(counts), strict=True
        )
    ]


class SalovaForCausalLM(SalovaPreTrainedModel, GenerationMixin):
    """SALOVA: segment-augmented long video assistant.

    Build from a config (random weights), from pretrained parts with :meth:`from_components`, or from
    a saved SALOVA folder with ``from_pretrained``.

    Args:
        config: :class:`SalovaConfig`.
    """

    def __init__(self, config: SalovaConfig):
        super().__init__(config)
        self.vision_tower = VisionTower(config)
        self.text_tower = TextTower(config)
        self.connector = SpatioTemporalConnector(config, self.vision_tower.hidden_size)
        self.router = SegmentRetrievalRouter(config, self.text_tower.hidden_size)
        self.projector = FocusFastProjector(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_components(
        cls,
        vision_tower: str | os.PathLike | PreTrainedConfig,
        language_model: str | os.PathLike | PreTrainedConfig,
        text_tower: str | os.PathLike | PreTrainedConfig | None = None,
        *,
        base_config: SalovaConfig | None = None,
        language_model_kwargs: Mapping[str, Any] | None = None,
        **config_kwargs: Any,
    ) -> SalovaForCausalLM:
        """Assemble a model from its parts, each a config (random weights) or a local folder.

        Args:
            vision_tower: a ``CLIPVisionConfig``/``SiglipVisionConfig``, or a folder holding a CLIP/SigLIP
                vision model or a full CLIP/SigLIP model.
            language_model: a causal-LM config or a folder loadable by ``AutoModelForCausalLM``.
            text_tower: like ``vision_tower`` for the text side; by default the ``vision_tower`` folder
                (a CLIP/SigLIP checkpoint holds both towers), or the config's default pairing when
                ``vision_tower`` is a config.
            base_config: a SALOVA config whose own fields (connector, router...) are kept while its three
                sub-configs are replaced by the parts'; the paper defaults when omitted.
            language_model_kwargs: extra arguments for loading the language model folder (for example
                ``gguf_file=...``).
            **config_kwargs: :class:`SalovaConfig` fields overriding ``base_config`` (``video_token_id``...).

        Returns:
            The model; pretrained parts hold their weights, the rest is randomly initialised.

        Raises:
            CheckpointError: a folder is missing or its weights do not fit.
            ConfigError: a folder holds an unsupported model type.
        """
        llm_kwargs = dict(language_model_kwargs or {})
        if text_tower is None and not isinstance(vision_tower, PreTrainedConfig):
            text_tower = vision_tower
        vision_config, vision_path = component_config(vision_tower, "vision", {})
        text_config = None
        text_path = None
        if text_tower is not None:
            text_config, text_path = component_config(text_tower, "text", {})
        llm_config, llm_path = component_config(language_model, "language_model", llm_kwargs)
        fields = {} if base_config is None else base_config.to_dict()
        fields.update(config_kwargs)
        fields.update(vision_config=vision_config, text_config=llm_config)
        if text_config is not None:
            fields["text_tower_config"] = text_config
        config = SalovaConfig.from_dict(fields)
        model = cls(config)
        if vision_path is not None:
            backbone = pretrained_part(VISION_BACKBONES[vision_config.model_type], vision_path, {})
            load_part(model.vision_tower.backbone, backbone.state_dict(), vision_path)
        if text_path is not None:
            backbone = pretrained_part(TEXT_BACKBONES[text_config.model_type], text_path, {})
            load_part(model.text_tower.backbone, backbone.state_dict(), text_path)
        if llm_path is not None:
            pretrained = pretrained_part(AutoModelForCausalLM, llm_path, llm_kwargs)
            load_part(model.language_model, pretrained.state_dict(), llm_path)
            model.generation_config = copy.deepcopy(pretrained.generation_config)
        return model

    def set_trainable(self, modules: Iterable[str]) -> None:
        """Make exactly the named modules trainable and freeze the others.

        Args:
            modules: names from :data:`MODULE_NAMES`, e.g. ``("connector", "router", "projector")``.

        Raises:
            ValueError: an unknown module name.
        """
        wanted = set(modules)
        unknown = wanted - set(MODULE_NAMES)
        if unknown:
            raise ValueError(f"Unknown module names {sorted(unknown)}; choose from {list(MODULE_NAMES)}")
        for name in MODULE_NAMES:
            getattr(self, name).requires_grad_(name in wanted)

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    # ----------------------------------------------------------------- the pieces

    def encode_segments(
        self,
        pixel_values: torch.Tensor,
        frames_per_segment: torch.Tensor,
        segments_per_video: torch.Tensor | None = None,
        token_drop: bool = True,
    ) -> SegmentEncoding:
        """Encode segments into routing tokens and latents (vision tower + ST-Connector).

        In eval mode (or with ``token_drop=False``) a segment's encoding depends only on its own
        frames, so a long video may be encoded a few segments at a time and joined with
        :meth:`SegmentEncoding.cat` (``as_one_video=True``).

        Args:
            pixel_values: ``(total_frames, 3, image_size, image_size)`` normalised frames, segment after
                segment (see :class:`~salova.model.processing_salova.SalovaProcessor`).
            frames_per_segment: ``(total_segments,)`` frames of each segment (>= 1).
            segments_per_video: ``(batch,)`` segments of each video; one video when omitted.
            token_drop: allow the training-time token drop (it never runs in eval mode).

        Returns:
            :class:`SegmentEncoding`.

        Raises:
            ValueError: the counts do not match the frames.
        """
        frames_per_segment = torch.as_tensor(frames_per_segment)
        if segments_per_video is None:
            segments_per_video = frames_per_segment.new_tensor([frames_per_segment.numel()])
        segments_per_video = torch.as_tensor(segments_per_video)
        if int(segments_per_video.sum()) != frames_per_segment.numel() or int(segments_per_video.min()) < 1:
            raise ValueError(
                f"segments_per_video {_as_list(segments_per_video)} must be >= 1 each and sum to the "
                f"{frames_per_segment.numel()} segments of frames_per_segment"
            )
        frame_features = self.vision_tower(pixel_values)
        connected = self.connector(frame_features, frames_per_segment, allow_drop=token_drop)
        return SegmentEncoding(
            routing_tokens=connected.routing_tokens,
            latents=connected.latents,
            segments_per_video=segments_per_video.to(connected.latents.device),
            kept_tokens=connected.kept_tokens,
        )

    def encode_queries(
        self, query_input_ids: torch.Tensor, query_attention_mask: torch.Tensor | None = None
    ) -> TextFeatures:
        """Encode router queries with the text tower (truncating, with a warning, past its context)."""
        return self.text_tower(query_input_ids, query_attention_mask)

    def score_segments(
        self,
        segment_encodings: SegmentEncoding,
        query_input_ids: torch.Tensor,
        query_attention_mask: torch.Tensor | None = None,
        queries_per_video: torch.Tensor | None = None,
    ) -> SegmentScores:
        """Score every segment of each video for each of that video's queries (SR-Router).

        Args:
            segment_encodings: from :meth:`encode_segments` (or a cache).
            query_input_ids: ``(total_queries, length)`` text-tower ids, queries of video 0 first.
            query_attention_mask: ``(total_queries, length)``.
            queries_per_video: ``(batch,)`` queries of each video; one per video when omitted.

        Returns:
            :class:`SegmentScores` with one ``(num_queries_b, num_segments_b)`` tensor per video.

        Raises:
            ValueError: the query counts do not match the videos.
        """
        num_videos = segment_encodings.num_videos
        if queries_per_video is None:
            queries_per_video = [1] * num_videos
        counts = _as_list(queries_per_video)
        if len(counts) != num_videos or sum(counts) != query_input_ids.shape[0] or min(counts) < 1:
            raise ValueError(
                f"queries_per_video {counts} must give >= 1 query for each of the {num_videos} videos and sum "
                f"to the {query_input_ids.shape[0]} queries given"
            )
        text = self.encode_queries(query_input_ids, query_attention_mask)
        logits, cosine = [], []
        for video, video_text in zip(segment_encodings.split(), _split_text(text, counts), strict=True):
            scores = self.router(video.routing_tokens, video_text)
            logits.append(scores.logits)
            cosine.append(scores.cosine)
        return SegmentScores(logits=tuple(logits), cosine=tuple(cosine))

    def select_segments(
        self,
        segment_encodings: SegmentEncoding,
        scores: SegmentScores | None = None,
        segment_labels: Sequence[torch.Tensor] | None = None,
        top_k: int | None = None,
        selector: str | SelectorConfig | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """Focus segments of each video: from ``segment_labels`` when given (teacher forcing), else
        from the router ``scores`` with ``selector``; ``min(top_k, N_v)`` per video, in temporal order.

        Args:
            segment_encodings: the videos.
            scores: router scores, or ``None``.
            segment_labels: per video ``(num_queries_b, num_segments_b)`` 0/1, or ``None``.
            top_k: ``K``; ``config.focus_top_k`` when omitted.
            selector: how the router's scores choose (a name of :data:`~salova.model.selection.SELECTORS`
                or a :class:`~salova.model.selection.SelectorConfig`): ``topk`` (default, the paper's
                rule) or ``seal`` (relevant and not redundant: relevance the best score over the
                queries, similarity between routing tokens). Labels always teacher-force.

        Returns:
            One ``(K_b,)`` long tensor per video.
        """
        top_k = self.config.focus_top_k if top_k is None else top_k
        selector = resolve_selector(selector)
        counts = _as_list(segment_encodings.segments_per_video)
        if segment_labels is not None and len(segment_labels) != len(counts):
            raise ValueError(
                f"segment_labels must hold one (queries, segments) matrix per video ({len(counts)}), "
                f"got {len(segment_labels)}"
            )
        video_scores = scores.logits if scores is not None else [None] * len(counts)
        video_labels = segment_labels if segment_labels is not None else [None] * len(counts)
        device = segment_encodings.latents.device
        selected = []
        for video, count, s, y in zip(segment_encodings.split(), counts, video_scores, video_labels, strict=True):
            if selector.name != "topk" and y is None and s is not None and count > top_k:
                relevance = s.detach().max(dim=0).values
                chosen = select_subset(video.routing_tokens, relevance, top_k, selector).indices
                selected.append(torch.tensor(chosen, dtype=torch.long, device=device))
                continue
            labels = None if y is None else torch.as_tensor(y, device=device)
            selected.append(select_focus_segments(count, top_k, s, labels).to(device))
        return tuple(selected)

    def prepare_llm_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        segment_encodings: SegmentEncoding,
        selected_segments: Sequence[torch.Tensor],
        labels: torch.Tensor | None = None,
        segment_timestamp_ids: torch.Tensor | None = None,
        segment_timestamp_mask: torch.Tensor | None = None,
        pathways: Sequence[str] | None = None,
    ) -> FocusFastInputs:
        """Build the LLM input: each prompt's video placeholder becomes its FocusFast block.

        Args:
            input_ids: ``(batch, length)`` prompts, each with one ``config.video_token_id``.
            attention_mask: ``(batch, length)``; all ones when omitted.
            segment_encodings: one video per prompt.
            selected_segments: per video, the focus segment indices (ascending).
            labels: ``(batch, length)`` text labels, or ``None``.
            segment_timestamp_ids: ``(total_segments, length)`` LLM ids of each segment's time span;
                required when ``config.focusfast_timestamps``.
            segment_timestamp_mask: ``(total_segments, length)`` 0/1.
            pathways: the pathways and their order for this call (``["focus"]``, ``["fast"]``...);
                ``config.focusfast_pathways`` when omitted (paper Table 3's FocusFast ablation).

        Returns:
            :class:`~salova.model.focusfast.FocusFastInputs`.

        Raises:
            ConfigError: ``config.video_token_id`` is not set.
            ValueError: placeholders, videos or timestamps do not match, or invalid ``pathways``.
        """
        video_token_id = self.config.video_token_id
        if video_token_id is None:
            raise ConfigError("config.video_token_id is not set; take it from the processor's tokenizer")
        if segment_encodings.num_videos != input_ids.shape[0]:
            raise ValueError(
                f"got {segment_encodings.num_videos} videos for {input_ids.shape[0]} prompts; one video per prompt"
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        embed = self.get_input_embeddings()
        safe_ids = input_ids.masked_fill((input_ids == video_token_id) | (attention_mask == 0), 0)
        text_embeds = embed(safe_ids)
        timestamps = self._timestamp_embeddings(segment_encodings, segment_timestamp_ids, segment_timestamp_mask)
        pathways = self.config.focusfast_pathways if pathways is None else _check_pathways(pathways)
        blocks = []
        for index, (video, selected) in enumerate(zip(segment_encodings.split(), selected_segments, strict=True)):
            hidden = self.config.text_config.hidden_size
            fast = self.projector(video.routing_tokens) if "fast" in pathways else text_embeds.new_zeros(0, hidden)
            focus = (
                self.projector(video.latents[selected]) if "focus" in pathways else text_embeds.new_zeros(0, 0, hidden)
            )
            spans = None if timestamps is None else [timestamps[index][int(i)] for i in selected]
            blocks.append(build_visual_block(fast, focus, pathways, spans))
        return splice_visual_blocks(input_ids, text_embeds, attention_mask, labels, video_token_id, blocks)

    def _timestamp_embeddings(
        self,
        segment_encodings: SegmentEncoding,
        ids: torch.Tensor | None,
        mask: torch.Tensor | None,
    ) -> list[list[torch.Tensor]] | None:
        if not self.config.focusfast_timestamps:
            return None
        total = int(segment_encodings.segments_per_video.sum())
        if ids is None or ids.shape[0] != total:
            raise ValueError(
                "config.focusfast_timestamps needs segment_timestamp_ids with one row per segment "
                f"({total}); pass timestamps to the processor"
            )
        mask = torch.ones_like(ids) if mask is None else mask
        embeds = self.get_input_embeddings()(ids.masked_fill(mask == 0, 0))
        rows = [row[row_mask.bool()] for row, row_mask in zip(embeds, mask, strict=True)]
        per_video, start = [], 0
        for count in _as_list(segment_encodings.segments_per_video):
            per_video.append(rows[start : start + count])
            start += count
        return per_video

    def _segment_encodings(
        self,
        pixel_values: torch.Tensor | None,
        frames_per_segment: torch.Tensor | None,
        segments_per_video: torch.Tensor | None,
        segment_encodings: SegmentEncoding | None,
        token_drop: bool,
    ) -> SegmentEncoding:
        """The given encodings, or those of the given frames (exactly one of the two)."""
        if segment_encodings is not None:
            if pixel_values is not None:
                raise ValueError("pass segment_encodings or pixel_values, not both")
            return segment_encodings
        if pixel_values is None or frames_per_segment is None:
            raise ValueError("pass either segment_encodings or pixel_values with frames_per_segment")
        return self.encode_segments(pixel_values, frames_per_segment, segments_per_video, token_drop=token_drop)

    def _focusfast_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        encodings: SegmentEncoding,
        *,
        labels: torch.Tensor | None,
        query_input_ids: torch.Tensor | None,
        query_attention_mask: torch.Tensor | None,
        queries_per_video: torch.Tensor | None,
        segment_labels: Sequence[torch.Tensor] | None,
        segment_timestamp_ids: torch.Tensor | None,
        segment_timestamp_mask: torch.Tensor | None,
        top_k: int | None,
        pathways: Sequence[str] | None = None,
        selector: str | SelectorConfig | None = None,
    ) -> _Routing:
        """Route and assemble: the one path from encodings to the LLM input (``forward`` and ``generate``)."""
        scores = None
        if query_input_ids is not None:
            scores = self.score_segments(encodings, query_input_ids, query_attention_mask, queries_per_video)
        selected = self.select_segments(encodings, scores, segment_labels, top_k, selector)
        inputs = self.prepare_llm_inputs(
            input_ids,
            attention_mask,
            encodings,
            selected,
            labels,
            segment_timestamp_ids,
            segment_timestamp_mask,
            pathways=pathways,
        )
        return _Routing(scores=scores, selected=selected, inputs=inputs)

    def compute_similarity_loss(
        self, scores: SegmentScores | None, segment_labels: Sequence[torch.Tensor] | None
    ) -> torch.Tensor | None:
        """The router's similarity loss ``L_sim`` (unweighted), the mean over the videos; ``None``
        without labels.

        Raises:
            ValueError: labels without scores (no query was given).
        """
        if segment_labels is None:
            return None
        if scores is None:
            raise ValueError("segment_labels need query_input_ids: the router scores segments against queries")
        losses = [
            similarity_loss(logits, torch.as_tensor(labels, device=logits.device), self.config.similarity_margin).loss
            for logits, labels in zip(scores.logits, segment_labels, strict=True)
        ]
        return torch.stack(losses).mean()

    # ----------------------------------------------------------------- forward / generate

    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        frames_per_segment: torch.LongTensor | None = None,
        segments_per_video: torch.LongTensor | None = None,
        segment_encodings: SegmentEncoding | None = None,
        query_input_ids: torch.LongTensor | None = None,
        query_attention_mask: torch.LongTensor | None = None,
        queries_per_video: torch.LongTensor | None = None,
        segment_labels: Sequence[torch.Tensor] | None = None,
        segment_timestamp_ids: torch.LongTensor | None = None,
        segment_timestamp_mask: torch.LongTensor | None = None,
        top_k: int | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        pathways: Sequence[str] | None = None,
        retrieval_only: bool = False,
        selector: str | SelectorConfig | None = None,
    ) -> SalovaCausalLMOutput:
        """Training/evaluation forward over a batch of videos with one prompt each.

        Args:
            input_ids: ``(batch, length)`` LLM prompts, each with one video placeholder.
            attention_mask: ``(batch, length)``.
            labels: ``(batch, length)`` LLM labels (``-100`` where no loss); gives ``lm_loss``.
            pixel_values, frames_per_segment, segments_per_video: frames as packed by the processor;
                or ``segment_encodings`` computed before.
            query_input_ids, query_attention_mask, queries_per_video: router queries (text tower ids).
            segment_labels: per video a ``(num_queries_b, num_segments_b)`` 0/1 relevance matrix; gives
                ``similarity_loss`` and teacher-forces the focus segments.
            segment_timestamp_ids, segment_timestamp_mask: time spans (``config.focusfast_timestamps``).
            top_k: focus segments per video; ``config.focus_top_k`` when omitted.
            use_cache: passed to the LLM.
            logits_to_keep: passed to the LLM (0 keeps all).
            pathways: FocusFast pathways for this call; ``config.focusfast_pathways`` when omitted.
            retrieval_only: encode and route only: the LLM is not run, ``loss`` is the weighted
                similarity loss and ``logits`` is ``None`` (router and connector warm-up).
            selector: how the router's scores choose the focus segments (see :meth:`select_segments`).

        Returns:
            :class:`SalovaCausalLMOutput`.
        """
        encodings = self._segment_encodings(
            pixel_values, frames_per_segment, segments_per_video, segment_encodings, token_drop=True
        )
        if retrieval_only:
            if query_input_ids is None or segment_labels is None:
                raise ValueError("retrieval_only needs query_input_ids and segment_labels")
            scores = self.score_segments(encodings, query_input_ids, query_attention_mask, queries_per_video)
            sim_loss = self.compute_similarity_loss(scores, segment_labels)
            return SalovaCausalLMOutput(
                loss=self.config.similarity_loss_weight * sim_loss,
                similarity_loss=sim_loss,
                router_logits=scores.logits,
            )
        routing = self._focusfast_inputs(
            input_ids,
            attention_mask,
            encodings,
            labels=labels,
            query_input_ids=query_input_ids,
            query_attention_mask=query_attention_mask,
            queries_per_video=queries_per_video,
            segment_labels=segment_labels,
            segment_timestamp_ids=segment_timestamp_ids,
            segment_timestamp_mask=segment_timestamp_mask,
            top_k=top_k,
            pathways=pathways,
            selector=selector,
        )
        inputs = routing.inputs
        outputs = self.language_model(
            inputs_embeds=inputs.inputs_embeds,
            attention_mask=inputs.attention_mask,
            position_ids=inputs.position_ids,
            labels=inputs.labels,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
        )
        lm_loss = outputs.loss if labels is not None else None
        sim_loss = self.compute_similarity_loss(routing.scores, segment_labels)
        terms = []
        if lm_loss is not None:
            terms.append(lm_loss)
        if sim_loss is not None:
            terms.append(self.config.similarity_loss_weight * sim_loss)
        return SalovaCausalLMOutput(
            loss=sum(terms[1:], terms[0]) if terms else None,
            lm_loss=lm_loss,
            similarity_loss=sim_loss,
            logits=outputs.logits,
            router_logits=None if routing.scores is None else routing.scores.logits,
            selected_segments=routing.selected,
            token_types=inputs.token_types,
            past_key_values=outputs.past_key_values,
        )

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor | None = None,
        *,
        pixel_values: torch.FloatTensor | None = None,
        frames_per_segment: torch.LongTensor | None = None,
        segments_per_video: torch.LongTensor | None = None,
        segment_encodings: SegmentEncoding | None = None,
        query_input_ids: torch.LongTensor | None = None,
        query_attention_mask: torch.LongTensor | None = None,
        queries_per_video: torch.LongTensor | None = None,
        segment_timestamp_ids: torch.LongTensor | None = None,
        segment_timestamp_mask: torch.LongTensor | None = None,
        top_k: int | None = None,
        pathways: Sequence[str] | None = None,
        selector: str | SelectorConfig | None = None,
        segment_labels: Sequence[torch.Tensor] | None = None,
        **generate_kwargs: Any,
    ) -> SalovaGenerateOutput:
        """Answer prompts about videos: route with the queries, read the top-K segments, generate.

        Takes raw frames (``pixel_values`` + counts) or precomputed ``segment_encodings``. Without
        a query, a video with more than ``top_k`` segments cannot be routed (``ValueError``).
        Token drop never runs here.

        Args:
            input_ids, attention_mask: LLM prompts ending with the generation prompt.
            pixel_values, frames_per_segment, segments_per_video, segment_encodings: the videos.
            query_input_ids, query_attention_mask, queries_per_video: router queries (usually the question).
            segment_timestamp_ids, segment_timestamp_mask: time spans (``config.focusfast_timestamps``).
            top_k: focus segments per video for this call; ``config.focus_top_k`` when omitted.
            pathways: FocusFast pathways for this call (e.g. ``["focus"]`` for the focus-only ablation);
                ``config.focusfast_pathways`` when omitted.
            selector: how the router's scores choose the focus segments: ``topk`` (default) or ``seal``,
                or a :class:`~salova.model.selection.SelectorConfig` (see :meth:`select_segments`).
            segment_labels: per video a ``(num_queries_b, num_segments_b)`` 0/1 matrix: the labelled
                segments are read first and the router's best fill the rest of the top-K (the
                oracle-focus diagnostic, teacher forcing as in training).
            **generate_kwargs: passed to the LLM's ``generate`` (``max_new_tokens``, ``do_sample``...);
                ``generation_config`` defaults to this model's.

        Returns:
            :class:`SalovaGenerateOutput` with the new ids, the segments used and their scores.
        """
        if self.training:
            logger.warning("generate() called in training mode; dropout is active (call model.eval() first)")
        encodings = self._segment_encodings(
            pixel_values, frames_per_segment, segments_per_video, segment_encodings, token_drop=False
        )
        routing = self._focusfast_inputs(
            input_ids,
            attention_mask,
            encodings,
            labels=None,
            query_input_ids=query_input_ids,
            query_attention_mask=query_attention_mask,
            queries_per_video=queries_per_video,
            segment_labels=segment_labels,
            segment_timestamp_ids=segment_timestamp_ids,
            segment_timestamp_mask=segment_timestamp_mask,
            top_k=top_k,
            pathways=pathways,
            selector=selector,
        )
        generation_config = copy.deepcopy(generate_kwargs.pop("generation_config", None) or self.generation_config)
        model_kwargs = generation_config.update(**generate_kwargs)
        result = self.language_model.generate(
            inputs_embeds=routing.inputs.inputs_embeds,
            attention_mask=routing.inputs.attention_mask,
            generation_config=generation_config,
            **model_kwargs,
        )
        sequences = result if isinstance(result, torch.Tensor) else result.sequences
        return SalovaGenerateOutput(
            sequences=sequences,
            selected_segments=routing.selected,
            segment_scores=None if routing.scores is None else routing.scores.logits,
        )

    @torch.no_grad()
    def score_answers(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.LongTensor,
        answer_lengths: Sequence[int],
        *,
        segment_encodings: SegmentEncoding,
        query_input_ids: torch.LongTensor | None = None,
        query_attention_mask: torch.LongTensor | None = None,
        queries_per_video: torch.LongTensor | None = None,
        segment_labels: Sequence[torch.Tensor] | None = None,
        segment_timestamp_ids: torch.LongTensor | None = None,
        segment_timestamp_mask: torch.LongTensor | None = None,
        top_k: int | None = None,
        pathways: Sequence[str] | None = None,
        selector: str | SelectorConfig | None = None,
    ) -> SalovaAnswerScores:
        """Log-likelihood of candidate answers: each prompt ends with its answer's ``answer_lengths[i]``
        tokens, scored given the video (routed and read as :meth:`generate` reads it) and the rest.

        Used to answer a multiple-choice prompt by its options' likelihood (``config.choice_answer``,
        :mod:`salova.model.choices`): one row per option, the same video in each.

        Raises:
            ValueError: an answer length outside ``[1, prompt length)``.
        """
        valid = attention_mask.bool()
        lengths = [int(n) for n in answer_lengths]
        if len(lengths) != input_ids.shape[0]:
            raise ValueError(f"got {len(lengths)} answer lengths for {input_ids.shape[0]} prompts")
        for row, n in enumerate(lengths):
            if not 1 <= n < int(valid[row].sum()):
                raise ValueError(f"answer length {n} of prompt {row} must be in [1, {int(valid[row].sum())})")
        out = self(
            input_ids,
            attention_mask,
            segment_encodings=segment_encodings,
            query_input_ids=query_input_ids,
            query_attention_mask=query_attention_mask,
            queries_per_video=queries_per_video,
            segment_labels=segment_labels,
            segment_timestamp_ids=segment_timestamp_ids,
            segment_timestamp_mask=segment_timestamp_mask,
            top_k=top_k,
            pathways=pathways,
            selector=selector,
            logits_to_keep=max(lengths) + 1,
        )
        log_probs = out.logits.float().log_softmax(dim=-1)
        scores = []
        for row, n in enumerate(lengths):
            # The assembly left-pads, so every row's answer ends the sequence.
            answer = input_ids[row][valid[row]][-n:]
            scores.append(log_probs[row, -n - 1 : -1].gather(-1, answer[:, None]).sum())
        return SalovaAnswerScores(
            log_likelihoods=torch.stack(scores),
            selected_segments=out.selected_segments,
            segment_scores=out.router_logits,
        )
