"""The training stages as data: what each stage trains, on which records, with which defaults.

The paper trains in three stages (section 4.2, Appendix B, Table 5); stage 0 is ours: a small
CLIP-style tower pair pre-trained contrastively on the synthetic world, for machines where no
pretrained CLIP can be had. One training loop serves every stage; a stage only changes what
this table and the stage's YAML say.

=====  ==============================  ====================================  ========  ===========
stage  purpose                         trainable                             records   token drop
=====  ==============================  ====================================  ========  ===========
0      contrastive CLIP (ours)         the whole CLIP pair                   corpus    --
1      cross-modality alignment        connector, router, projector          captions  0.0
1.5    long-video knowledge injection  everything but the vision tower       captions  0.7
2      video instruction tuning        everything                            qa        0.4
=====  ==============================  ====================================  ========  ===========
"""

from __future__ import annotations

from dataclasses import dataclass

from salova.errors import ConfigError

__all__ = ["STAGE_KINDS", "StageConfig", "STAGES", "get_stage", "canonical_stage_name"]

STAGE_KINDS = ("clip", "salova")
"""``clip``: stage 0, a CLIP pair trained alone; ``salova``: the SALOVA model (stages 1, 1.5, 2)."""


@dataclass(frozen=True)
class StageConfig:
    """One row of the stage table: the defaults a stage's YAML starts from."""

    name: str
    """``"0"``, ``"1"``, ``"1.5"`` or ``"2"``."""
    title: str
    """What the stage is for."""
    kind: str
    """One of :data:`STAGE_KINDS`."""
    trainable: tuple[str, ...]
    """SALOVA module prefixes trained in this stage (empty for stage 0, which trains a CLIP pair)."""
    task: str | None
    """Kind of data record the stage reads (``captions`` or ``qa``); ``None`` for stage 0."""
    max_token_drop: float
    """Largest share of visual tokens the connector drops from a long segment (Table 5)."""
    lr: float
    """Learning rate of the LLM and SALOVA's own modules (Table 5: lr_{LLM, others})."""
    lr_towers: float | None
    """Learning rate of the vision and text towers (Table 5: lr_{vision, text}); ``None``: frozen."""
    global_batch_size: int
    """Samples per optimizer step over all processes (Table 5)."""
    starts_from: str
    """``components`` (pretrained parts), ``previous`` (the previous stage's output) or ``corpus``."""


STAGES: dict[str, StageConfig] = {
    "0": StageConfig(
        name="0",
        title="contrastive CLIP pre-training on the synthetic world (ours)",
        kind="clip",
        trainable=(),
        task=None,
        max_token_drop=0.0,
        lr=5e-4,  # ours: a small CLIP trained from scratch (open_clip's from-scratch range)
        lr_towers=None,
        global_batch_size=64,  # ours: in-batch negatives per step
        starts_from="corpus",
    ),
    "1": StageConfig(
        name="1",
        title="cross-modality alignment",
        kind="salova",
        trainable=("connector", "router", "projector"),  # section 4.2: vision encoder and LLM frozen
        task="captions",
        max_token_drop=0.0,  # Table 5
        lr=1e-3,  # Table 5
        lr_towers=None,  # Table 5: "-"
        global_batch_size=256,  # Table 5
        starts_from="components",
    ),
    "1.5": StageConfig(
        name="1.5",
        title="long-video knowledge injection",
        kind="salova",
        # Section 4.2: "unfreezing all trainable parameters except for the vision encoder".
        trainable=("text_tower", "connector", "router", "projector", "language_model"),
        task="captions",
        max_token_drop=0.7,  # Table 5
        lr=2e-5,  # Table 5
        lr_towers=2e-6,  # Table 5
        global_batch_size=8,  # Table 5
        starts_from="previous",
    ),
    "2": StageConfig(
        name="2",
        title="video instruction tuning",
        kind="salova",
        # Section 4.2: "we train all the network parameters during this stage".
        trainable=("vision_tower", "text_tower", "connector", "router", "projector", "language_model"),
        task="qa",
        max_token_drop=0.4,  # Table 5
        lr=2e-5,  # Table 5
        lr_towers=2e-6,  # Table 5
        global_batch_size=64,  # Table 5
        starts_from="previous",
    ),
}
"""Stage name -> :class:`StageConfig`."""

_ALIASES = {"0": "0", "1": "1", "1.5": "1.5", "1_5": "1.5", "2": "2"}


def canonical_stage_name(value: object) -> str:
    """The table name of a stage given as YAML or CLI writes it (``1.5``, ``"1.5"``, ``"1_5"``, ``2``...).

    Raises:
        ConfigError: not a known stage.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"stage must be one of {list(STAGES)}, got {value!r}")
    text = format(value, "g") if isinstance(value, int | float) else value.strip()
    if text not in _ALIASES:
        raise ConfigError(f"stage must be one of {list(STAGES)}, got {value!r}")
    return _ALIASES[text]


def get_stage(value: object) -> StageConfig:
    """The :class:`StageConfig` of a stage name (see :func:`canonical_stage_name`)."""
    return STAGES[canonical_stage_name(value)]
