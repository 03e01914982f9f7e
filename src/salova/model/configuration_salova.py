"""Configuration of a SALOVA model.

Every number of the architecture is a field here, with its source: the paper (arXiv
2411.16173, sections 4 and 5.1 and Appendices B and C), the authors' released code
("released code") or the project's design notes (`DESIGN.md`, section 2). The three
sub-models are ordinary ``transformers`` configs:

* ``vision_config``: the frame encoder, a ``clip_vision_model`` or ``siglip_vision_model``;
* ``text_tower_config``: the router's query encoder, a ``clip_text_model`` or
  ``siglip_text_model`` (by default the text model paired with the vision tower);
* ``text_config``: the language model, any causal LM ``model_type`` (Llama, Qwen2, Phi-3...).
  It is named ``text_config`` as in LLaVA so that ``transformers``' generation utilities
  find the decoder.
"""

from __future__ import annotations

import math
from dataclasses import field

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.activations import ACT2FN
from transformers.configuration_utils import SubConfigSpec

from salova.errors import ConfigError
from salova.model.choices import CHOICE_ANSWERS

__all__ = [
    "SalovaConfig",
    "VISION_TOWER_TYPES",
    "TEXT_TOWER_TYPES",
    "PAIRED_TEXT_TOWER",
    "FOCUSFAST_PATHWAYS",
]

# model_type of each supported vision tower -> whether its sequence starts with a class token.
VISION_TOWER_TYPES: dict[str, bool] = {"clip_vision_model": True, "siglip_vision_model": False}
TEXT_TOWER_TYPES: tuple[str, ...] = ("clip_text_model", "siglip_text_model")
# The paper encodes queries with "the same text encoder used for the vision encoder" (section 4.1.2).
PAIRED_TEXT_TOWER: dict[str, str] = {
    "clip_vision_model": "clip_text_model",
    "siglip_vision_model": "siglip_text_model",
}
FOCUSFAST_PATHWAYS: tuple[str, ...] = ("fast", "focus")

# CLIP ViT-L/14-336, the paper's vision encoder (section 4, "Vision Encoder").
CLIP_L_336_VISION = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 336,
    "patch_size": 14,
    "projection_dim": 768,
}
# The text half of the same CLIP-L checkpoint (section 5.1: "CLIP-ViT-L model" for the router's text encoder).
CLIP_L_TEXT = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "vocab_size": 49408,
    "projection_dim": 768,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 49407,
}
# Llama-3.2-3B(-Instruct), the paper's 3B language model (section 5.1).
LLAMA_32_3B = {
    "hidden_size": 3072,
    "intermediate_size": 8192,
    "num_hidden_layers": 28,
    "num_attention_heads": 24,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
    "bos_token_id": 128000,
    "eos_token_id": 128009,
    "rope_parameters": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
}


@strict
class SalovaConfig(PreTrainedConfig):
    r"""Configuration of [`SalovaForCausalLM`].

    The defaults reproduce the paper's 3B model (CLIP ViT-L/14-336 towers, Llama-3.2-3B).
    Sub-configs may be given as ``PreTrainedConfig`` objects or dicts with a ``model_type``.

    Args:
        vision_config (`PreTrainedConfig` or `dict`, *optional*):
            Frame encoder; ``clip_vision_model`` (default: CLIP ViT-L/14-336) or ``siglip_vision_model``.
        text_tower_config (`PreTrainedConfig` or `dict`, *optional*):
            Query encoder of the router; ``clip_text_model`` or ``siglip_text_model``. Defaults to the
            text model paired with the vision tower (CLIP-L text for CLIP).
        text_config (`PreTrainedConfig` or `dict`, *optional*):
            The language model; any causal LM config. Defaults to Llama-3.2-3B sizes.
        vision_feature_layer (`int`, defaults to -2):
            Hidden layer of the vision tower whose patch tokens are used (released code:
            ``mm_vision_select_layer -2``, the LLaVA convention).
        vision_pool_stride (`int`, defaults to 2):
            Side of the average-pooling window over the patch grid (paper section 4: 2x2 pooling,
            576 -> 144 tokens per CLIP-L-336 frame). Odd grids pool their last row/column partially.
        freeze_vision_tower (`bool`, defaults to `True`):
            Build the vision tower with ``requires_grad=False`` (paper section 4.2: frozen in stage 1).
        freeze_text_tower (`bool`, defaults to `True`):
            Build the router's text tower with ``requires_grad=False``.
        connector_hidden_size (`int`, defaults to 1024):
            Width of the ST-Connector's latents (paper Appendix C: hidden size 1024).
        connector_num_layers (`int`, defaults to 2):
            Perceiver-resampler layers (paper Appendix C: 2-layer).
        connector_num_heads (`int`, defaults to 2):
            Attention heads per layer (paper Appendix C: 2-head).
        connector_head_dim (`int`, defaults to 64):
            Width of one attention head (released code: ``dim_head=64``).
        connector_num_latents (`int`, defaults to 256):
            Latent tokens ``L`` per segment handed to the focus pathway (paper Appendix C: 256). One
            more routing latent is always added.
        connector_ff_mult (`int`, defaults to 4):
            Feed-forward expansion of the resampler (released code: ``ff_mult=4``).
        connector_max_frames (`int`, defaults to 2160):
            Rows of the learned temporal (frame-index) embedding (released code: ``max_num_frames=2160``).
            Longer segments read the table linearly resampled to their length; never an error.
        connector_max_token_drop (`float`, defaults to 0.0):
            The training stage's maximum token-drop rate (paper Table 5: 0.0 / 0.7 / 0.4 in stages
            1 / 1.5 / 2). Applied only in training; ``0.0`` disables the drop.
        connector_full_drop_frames (`int`, defaults to 125):
            Segment length (frames) at which the drop rate reaches its maximum; shorter segments drop
            proportionally less (released code: full rate at 18,000 tokens = 125 CLIP-L frames).
        connector_chunk_tokens (`int`, defaults to 1048576):
            Budget of padded media tokens per connector batch; segments are processed in chunks under it.
        vision_chunk_frames (`int`, defaults to 32):
            Frames per vision-tower call.
        router_hidden_size (`int`, defaults to 1024):
            ``d_model`` of the SR-Router (paper Appendix C). Must equal ``connector_hidden_size``: the
            routing tokens are the router's queries.
        router_num_layers (`int`, defaults to 2):
            Router layers (paper Appendix C: 2-layer).
        router_num_heads (`int`, defaults to 1):
            Router attention heads (paper Appendix C: single head).
        router_intermediate_size (`int`, defaults to 1024):
            Router feed-forward width (released code: ``selector_dim_feedforward = d_model``).
        router_dropout (`float`, defaults to 0.1):
            Dropout inside the router (released code: ``selector_dropout=0.1``); off in eval.
        router_max_segments (`int`, defaults to 256):
            Rows of the learned segment-position table (released code: 256). Videos with more segments
            read the table linearly resampled to their segment count; never an error.
        router_logit_scale_init (`float`, defaults to 1.0):
            Initial value of the learnable log-scale; scores are ``cosine * exp(scale)`` (released code).
        similarity_margin (`float`, defaults to 0.2):
            Margin ``delta`` of the score-margin loss (paper Eq. 1).
        similarity_loss_weight (`float`, defaults to 1.0):
            Weight of ``L_sim`` added to the LM loss (paper: ``L_ar + L_sim``; released code used 5.0
            in stage 1).
        focus_top_k (`int`, defaults to 5):
            Segments ``K`` read by the focus pathway (paper section 5.1: 5 in stage 2); can be
            overridden per ``forward``/``generate`` call.
        focusfast_pathways (`list[str]`, defaults to `["fast", "focus"]`):
            Visual blocks placed at the video placeholder, in order (paper Fig. 2: fast, then focus).
            ``["focus", "fast"]`` reproduces the released code; one pathway alone is the paper's
            ablation (Table 3).
        choice_answer (`str`, defaults to `"letter"`):
            How a multiple-choice prompt is answered (:data:`~salova.model.choices.CHOICE_ANSWERS`):
            ``letter`` generates the option's letter (the paper); ``option`` scores each option's
            text as the answer to the bare question and replies with the most likely one's letter
            (set by training with ``data.answer_format: option``; ours).
        focusfast_timestamps (`bool`, defaults to `False`):
            Put each focus segment's time span (text tokens prepared by the processor) before its latents.
        projector_hidden_act (`str`, defaults to `"gelu"`):
            Activation of the 2-layer MLP projector (paper section 5.1: 2-layer MLP with GELU).
        video_token_id (`int`, *optional*):
            LLM token id of the video placeholder, one per sample; set from the processor's tokenizer.
        initializer_range (`float`, defaults to 0.02):
            Standard deviation of the normal initialisation of SALOVA's own weights.
    """

    model_type = "salova"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(
            config_class=AutoConfig, model_type="clip_vision_model", init_kwargs=CLIP_L_336_VISION
        ),
        "text_tower_config": SubConfigSpec(
            config_class=AutoConfig, model_type="clip_text_model", init_kwargs=CLIP_L_TEXT
        ),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama", init_kwargs=LLAMA_32_3B),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_tower_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None

    vision_feature_layer: int = -2
    vision_pool_stride: int = 2
    freeze_vision_tower: bool = True
    freeze_text_tower: bool = True

    connector_hidden_size: int = 1024
    connector_num_layers: int = 2
    connector_num_heads: int = 2
    connector_head_dim: int = 64
    connector_num_latents: int = 256
    connector_ff_mult: int = 4
    connector_max_frames: int = 2160
    connector_max_token_drop: float = 0.0
    connector_full_drop_frames: int = 125
    connector_chunk_tokens: int = 1_048_576
    vision_chunk_frames: int = 32

    router_hidden_size: int = 1024
    router_num_layers: int = 2
    router_num_heads: int = 1
    router_intermediate_size: int = 1024
    router_dropout: float = 0.1
    router_max_segments: int = 256
    router_logit_scale_init: float = 1.0

    similarity_margin: float = 0.2
    similarity_loss_weight: float = 1.0

    focus_top_k: int = 5
    focusfast_pathways: list[str] = field(default_factory=lambda: list(FOCUSFAST_PATHWAYS))
    focusfast_timestamps: bool = False
    choice_answer: str = "letter"
    projector_hidden_act: str = "gelu"

    video_token_id: int | None = None
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        self._default_text_tower_from_vision()
        super().__post_init__(**kwargs)
        self.focusfast_pathways = list(self.focusfast_pathways)
        self._check_towers()
        self._check_sizes()
        self._check_rates()
        self._check_focusfast()

    def _default_text_tower_from_vision(self) -> None:
        """With no text tower given, pair a SigLIP vision tower with a SigLIP text tower."""
        if self.text_tower_config is not None or self.vision_config is None:
            return
        vision_type = (
            self.vision_config.get("model_type")
            if isinstance(self.vision_config, dict)
            else self.vision_config.model_type
        )
        if vision_type == "siglip_vision_model":
            self.text_tower_config = {"model_type": "siglip_text_model"}

    def _check_towers(self) -> None:
        vision_type = self.vision_config.model_type
        if vision_type not in VISION_TOWER_TYPES:
            raise ConfigError(
                f"vision_config.model_type must be one of {sorted(VISION_TOWER_TYPES)}, got {vision_type!r}"
            )
        text_type = self.text_tower_config.model_type
        if text_type not in TEXT_TOWER_TYPES:
            raise ConfigError(
                f"text_tower_config.model_type must be one of {list(TEXT_TOWER_TYPES)}, got {text_type!r}"
            )
        num_layers = self.vision_config.num_hidden_layers
        if not -num_layers - 1 <= self.vision_feature_layer <= num_layers:
            raise ConfigError(
                f"vision_feature_layer must index the {num_layers + 1} hidden states of the vision tower "
                f"(between {-num_layers - 1} and {num_layers}), got {self.vision_feature_layer}"
            )

    def _check_sizes(self) -> None:
        positive = {
            "vision_pool_stride": self.vision_pool_stride,
            "connector_hidden_size": self.connector_hidden_size,
            "connector_num_layers": self.connector_num_layers,
            "connector_num_heads": self.connector_num_heads,
            "connector_head_dim": self.connector_head_dim,
            "connector_num_latents": self.connector_num_latents,
            "connector_ff_mult": self.connector_ff_mult,
            "connector_max_frames": self.connector_max_frames,
            "connector_full_drop_frames": self.connector_full_drop_frames,
            "connector_chunk_tokens": self.connector_chunk_tokens,
            "vision_chunk_frames": self.vision_chunk_frames,
            "router_hidden_size": self.router_hidden_size,
            "router_num_layers": self.router_num_layers,
            "router_num_heads": self.router_num_heads,
            "router_intermediate_size": self.router_intermediate_size,
            "router_max_segments": self.router_max_segments,
            "focus_top_k": self.focus_top_k,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value}")
        if self.router_hidden_size != self.connector_hidden_size:
            raise ConfigError(
                f"router_hidden_size ({self.router_hidden_size}) must equal connector_hidden_size "
                f"({self.connector_hidden_size}): the connector's routing tokens are the router's queries"
            )
        if self.router_hidden_size % self.router_num_heads:
            raise ConfigError(
                f"router_hidden_size ({self.router_hidden_size}) must be divisible by router_num_heads "
                f"({self.router_num_heads})"
            )
        if self.initializer_range <= 0:
            raise ConfigError(f"initializer_range must be > 0, got {self.initializer_range}")

    def _check_rates(self) -> None:
        if not 0.0 <= self.connector_max_token_drop < 1.0:
            raise ConfigError(f"connector_max_token_drop must be in [0, 1), got {self.connector_max_token_drop}")
        if not 0.0 <= self.router_dropout < 1.0:
            raise ConfigError(f"router_dropout must be in [0, 1), got {self.router_dropout}")
        if self.similarity_margin < 0:
            raise ConfigError(f"similarity_margin must be >= 0, got {self.similarity_margin}")
        if self.similarity_loss_weight < 0:
            raise ConfigError(f"similarity_loss_weight must be >= 0, got {self.similarity_loss_weight}")
        if not math.isfinite(self.router_logit_scale_init):
            raise ConfigError(f"router_logit_scale_init must be finite, got {self.router_logit_scale_init}")

    def _check_focusfast(self) -> None:
        pathways = self.focusfast_pathways
        if not pathways or len(set(pathways)) != len(pathways) or not set(pathways) <= set(FOCUSFAST_PATHWAYS):
            raise ConfigError(
                "focusfast_pathways must be a non-empty ordering without repeats of "
                f"{list(FOCUSFAST_PATHWAYS)}, got {pathways!r}"
            )
        if self.choice_answer not in CHOICE_ANSWERS:
            raise ConfigError(f"choice_answer must be one of {list(CHOICE_ANSWERS)}, got {self.choice_answer!r}")
        if self.projector_hidden_act not in ACT2FN:
            raise ConfigError(
                f"projector_hidden_act must be one of transformers' activations ({sorted(ACT2FN)}), "
                f"got {self.projector_hidden_act!r}"
            )
        if self.video_token_id is not None and self.video_token_id < 0:
            raise ConfigError(f"video_token_id must be a token id >= 0 or None, got {self.video_token_id}")

    # Derived sizes. Properties, not fields: they follow the towers and cannot disagree with them.

    @property
    def vision_has_class_token(self) -> bool:
        """Whether the vision tower prepends a class token to its patch tokens (CLIP yes, SigLIP no)."""
        return VISION_TOWER_TYPES[self.vision_config.model_type]

    @property
    def patch_grid_size(self) -> int:
        """Patches per side of a frame (CLIP-L-336: 336 / 14 = 24)."""
        return self.vision_config.image_size // self.vision_config.patch_size

    @property
    def pooled_grid_size(self) -> int:
        """Pooled cells per side of a frame (CLIP-L-336: ceil(24 / 2) = 12)."""
        return math.ceil(self.patch_grid_size / self.vision_pool_stride)

    @property
    def tokens_per_frame(self) -> int:
        """Visual tokens per frame after pooling (CLIP-L-336: 144)."""
        return self.pooled_grid_size**2

    @property
    def text_tower_max_length(self) -> int:
        """Context length of the router's text tower (CLIP: 77, SigLIP: 64)."""
        return self.text_tower_config.max_position_embeddings

    def visual_tokens_per_video(self, num_segments: int, top_k: int | None = None) -> int:
        """Visual tokens FocusFast hands the LLM for one video: ``N_v`` fast + ``K * L`` focus.

        Args:
            num_segments: segments ``N_v`` of the video.
            top_k: focus segments asked for; defaults to ``focus_top_k``. At most ``N_v`` are used.

        Returns:
            The count for the configured pathways (timestamp text tokens not included).
        """
        top_k = self.focus_top_k if top_k is None else top_k
        count = 0
        if "fast" in self.focusfast_pathways:
            count += num_segments
        if "focus" in self.focusfast_pathways:
            count += min(top_k, num_segments) * self.connector_num_latents
        return count
