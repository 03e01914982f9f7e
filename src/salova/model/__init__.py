"""The SALOVA model: configuration, modules, processor and presets.

Importing this package registers ``SalovaConfig`` and ``SalovaForCausalLM`` with
``AutoConfig`` / ``AutoModelForCausalLM`` (model type ``"salova"``), so that a saved folder
loads with ``AutoModelForCausalLM.from_pretrained(path)``.
"""

from transformers import AutoConfig, AutoModelForCausalLM

from salova.model.configuration_salova import SalovaConfig
from salova.model.connector import ConnectorOutput, SpatioTemporalConnector, kept_token_counts, token_drop_rate
from salova.model.feature_cache import FrameFeatureCache
from salova.model.focusfast import (
    IGNORE_INDEX,
    FocusFastInputs,
    FocusFastProjector,
    TokenType,
    select_focus_segments,
)
from salova.model.losses import SimilarityLossOutput, margin_ranking_loss, similarity_loss
from salova.model.modeling_salova import (
    MODULE_NAMES,
    SalovaAnswerScores,
    SalovaCausalLMOutput,
    SalovaForCausalLM,
    SalovaGenerateOutput,
    SalovaPreTrainedModel,
    SegmentEncoding,
    SegmentScores,
)
from salova.model.presets import build_preset, count_parameters, list_presets, preset_config, tiny_config
from salova.model.processing_salova import SalovaProcessor
from salova.model.router import RouterOutput, SegmentRetrievalRouter
from salova.model.selection import SELECTORS, SelectorConfig, SubsetSelection, select_subset
from salova.model.towers import TextFeatures, TextTower, VisionTower

AutoConfig.register(SalovaConfig.model_type, SalovaConfig, exist_ok=True)
AutoModelForCausalLM.register(SalovaConfig, SalovaForCausalLM, exist_ok=True)

__all__ = [
    "IGNORE_INDEX",
    "MODULE_NAMES",
    "ConnectorOutput",
    "FocusFastInputs",
    "FocusFastProjector",
    "FrameFeatureCache",
    "RouterOutput",
    "SELECTORS",
    "SalovaCausalLMOutput",
    "SalovaConfig",
    "SalovaForCausalLM",
    "SalovaAnswerScores",
    "SalovaGenerateOutput",
    "SalovaPreTrainedModel",
    "SalovaProcessor",
    "SegmentEncoding",
    "SegmentRetrievalRouter",
    "SegmentScores",
    "SelectorConfig",
    "SimilarityLossOutput",
    "SpatioTemporalConnector",
    "SubsetSelection",
    "TextFeatures",
    "TextTower",
    "TokenType",
    "VisionTower",
    "build_preset",
    "count_parameters",
    "kept_token_counts",
    "list_presets",
    "margin_ranking_loss",
    "preset_config",
    "select_focus_segments",
    "select_subset",
    "similarity_loss",
    "tiny_config",
    "token_drop_rate",
]
