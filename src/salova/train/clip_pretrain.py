"""Stage 0 (ours): a small CLIP pair pre-trained contrastively on the synthetic world.

No pretrained CLIP can be had on a machine without a model hub, yet SALOVA's router and
connector need a vision tower and a text tower that already agree. Stage 0 trains a small
``transformers`` ``CLIPModel`` from scratch on the synthetic corpus: every scene's frames (one
drawn per epoch) against its caption, with CLIP's symmetric InfoNCE loss (image -> text and
text -> image over the micro-batch). The result is a standard CLIP folder (model, image
processor, tokenizer) that stage 1 takes as its vision and text tower and that
``salova build-data`` takes as its V2T model. With a real CLIP folder, skip this stage.

The tokenizer is word-level, built offline from the corpus's own texts (captions, questions and
answer options; lower-cased, punctuation split off), with ``<|startoftext|>``/``<|endoftext|>``
around every text as CLIP has; CLIP pools the end-of-text token.

Beside the corpus's scenes, stage 0 can draw fresh scenes from the corpus's world every epoch
(``data.world_scenes``), rendered straight to frames, in groups that share a background and an
object colour and differ in the object's shape (``data.world_group``). A corpus of a few hundred
scenes can be told apart by background and colour alone; fresh scenes cannot be memorised, and a
group in one batch can only be matched to its captions by what the objects look like. With
``attribute_weights``, linear heads on the tower's features also learn the world's labels of each
frame (:mod:`salova.train.clip_attributes`); they are dropped when the folder is saved. With
``attribute_warmup``, the first epochs train on some of those labels alone (shape, which the tower
otherwise learns last), without InfoNCE.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from torch.utils.data import Dataset
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor, PreTrainedTokenizerFast

from salova.errors import ConfigError
from salova.model.processing_salova import IMAGE_NORMALIZATION, MAX_PIXEL_VALUE
from salova.synth import SynthConfig, SynthCorpus, SynthVideo, load_corpus, render_frame
from salova.synth.questions import reference_phrases
from salova.synth.world import sample_scene_group
from salova.synth.writer import VIDEOS_DIR
from salova.train.clip_attributes import AttributeClip, scene_attributes
from salova.train.config import ClipModelConfig, ClipPretrainConfig
from salova.train.data import BatchPlan, FrameCache, frame_cache_for, segment_frames
from salova.train.distributed import Session
from salova.train.loop import StepOutput, Trainee, TrainSummary, run_training
from salova.video.ingest import fit_frame

__all__ = [
    "PAD_TOKEN",
    "UNK_TOKEN",
    "BOS_TOKEN",
    "EOS_TOKEN",
    "corpus_texts",
    "build_word_tokenizer",
    "build_clip",
    "scene_texts",
    "SceneSample",
    "SceneDataset",
    "ClipCollator",
    "clip_step",
    "save_clip",
    "pretrain_clip",
]

logger = logging.getLogger(__name__)

PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"
"""Special tokens at ids 0-3. The end-of-text id is not 2, so CLIP pools the first end-of-text
token by id instead of its legacy ``argmax`` rule."""
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, BOS_TOKEN, EOS_TOKEN)


def corpus_texts(corpus: SynthCorpus) -> list[str]:
    """Every text of a corpus a tower will read: captions, questions and answer options."""
    texts = []
    for video in corpus.videos:
        texts.extend(scene.caption for scene in video.scenes)
        for question in video.questions:
            texts.append(question.question)
            texts.extend(question.options.values())
    return texts


def build_word_tokenizer(texts: Iterable[str], max_length: int, min_count: int = 1) -> PreTrainedTokenizerFast:
    """A word-level CLIP-style tokenizer over the words of ``texts`` (sorted by count, then alphabetically).

    Args:
        texts: the corpus texts.
        max_length: context of the text tower (``model_max_length``).
        min_count: words seen fewer times become ``<unk>``.
    """
    normalizer = normalizers.Lowercase()
    splitter = pre_tokenizers.Whitespace()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, *words))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK_TOKEN))
    backend.normalizer = normalizer
    backend.pre_tokenizer = splitter
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A {EOS_TOKEN}",
        special_tokens=[(BOS_TOKEN, vocab[BOS_TOKEN]), (EOS_TOKEN, vocab[EOS_TOKEN])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        model_max_length=max_length,
    )


def build_clip(config: ClipModelConfig, tokenizer: PreTrainedTokenizerFast) -> CLIPModel:
    """A randomly initialised ``CLIPModel`` of the configured sizes (seed first for reproducibility)."""
    vision, text = config.vision, config.text
    clip_config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": text.hidden_size,
            "intermediate_size": text.intermediate_size,
            "num_hidden_layers": text.num_layers,
            "num_attention_heads": text.num_heads,
            "max_position_embeddings": config.max_text_length,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": vision.hidden_size,
            "intermediate_size": vision.intermediate_size,
            "num_hidden_layers": vision.num_layers,
            "num_attention_heads": vision.num_heads,
            "image_size": config.image_size,
            "patch_size": config.patch_size,
        },
        projection_dim=config.projection_dim,
        logit_scale_init_value=config.logit_scale_init,
    )
    return CLIPModel(clip_config)


SceneSample = tuple[np.ndarray, str, np.ndarray]
"""A frame, a text that describes it and what it shows (attribute vector)."""


@dataclass(frozen=True)
class _Scene:
    video: str
    """Path of the video under the corpus's videos folder."""
    span: tuple[float, float]
    texts: tuple[str, ...]
    """The caption first, then (as configured) the questions whose only evidence is this scene and
    the partial descriptions that name it."""
    attributes: np.ndarray
    """What the scene shows (:func:`~salova.train.clip_attributes.scene_attributes`)."""


def scene_texts(video: SynthVideo, index: int, kinds: Sequence[str]) -> tuple[str, ...]:
    """The texts of scene ``index`` of ``video`` (caption first), of the kinds in ``kinds``."""
    scene = video.scenes[index]
    texts = [scene.caption]
    if "questions" in kinds:
        texts += [q.question for q in video.questions if list(q.evidence_scenes) == [index]]
    if "references" in kinds:
        texts += reference_phrases(scene)
    return tuple(texts)


class SceneDataset(Dataset):
    """The corpus's scenes, one item each, then ``world_scenes`` fresh scenes of its world in groups.

    A corpus item is one frame of the scene and one of its texts (both drawn per epoch). A scene's
    texts are its caption and, as ``texts`` asks, the questions whose only evidence it is and the
    partial descriptions questions name it by (see :func:`scene_texts`). A world item is a group of
    ``world_group`` scenes drawn anew each epoch by
    :func:`~salova.synth.world.sample_scene_group`, each rendered at a random moment and paired with
    its caption or (with ``references``) one of its partial descriptions. Every item is a list of
    ``(frame, text, attributes)`` triples (what the scene shows, for the attribute loss), so that a
    group stays in one micro-batch.

    Items are addressed by ``(epoch, index)`` keys; everything is drawn with a generator seeded by
    ``(seed, epoch, index)``, so a resumed or distributed run draws the same pairs.
    """

    def __init__(
        self,
        corpus: SynthCorpus,
        cache: FrameCache,
        seed: int,
        max_samples: int | None = None,
        texts: Sequence[str] = ("captions",),
        world_scenes: int = 0,
        world_group: int = 1,
    ):
        self.videos_root = corpus.root / VIDEOS_DIR
        self.cache = cache
        self.seed = seed
        self.world: SynthConfig = corpus.config
        self.world_group = world_group
        self.world_references = "references" in texts
        scenes = [
            _Scene(
                video=video.file,
                span=(scene.start_sec, scene.end_sec),
                texts=scene_texts(video, i, texts),
                attributes=scene_attributes(scene),
            )
            for video in corpus.videos
            for i, scene in enumerate(video.scenes)
        ]
        self.scenes = scenes[:max_samples] if max_samples is not None else scenes
        self.world_items = world_scenes // world_group

    def __len__(self) -> int:
        return len(self.scenes) + self.world_items

    def videos(self) -> list[str]:
        return sorted({scene.video for scene in self.scenes})

    def __getitem__(self, key: tuple[int, int]) -> list[SceneSample]:
        epoch, index = key
        rng = np.random.default_rng([self.seed, epoch, index])
        if index >= len(self.scenes):
            return self._world_group(rng)
        scene = self.scenes[index]
        (frames,) = segment_frames(self.cache.load(self.videos_root, scene.video), [scene.span])
        frame = frames[int(rng.integers(len(frames)))]
        return [(frame, scene.texts[int(rng.integers(len(scene.texts)))], scene.attributes)]

    def _world_group(self, rng: np.random.Generator) -> list[SceneSample]:
        world, sampling = self.world, self.cache.sampling
        pairs = []
        for scene in sample_scene_group(world, rng, self.world_group):
            image = render_frame(scene, int(rng.integers(scene.num_frames)), world.width, world.height)
            texts = [scene.caption, *reference_phrases(scene)] if self.world_references else [scene.caption]
            frame = fit_frame(image, sampling.frame_size, sampling.resize)
            pairs.append((frame, texts[int(rng.integers(len(texts)))], scene_attributes(scene)))
        return pairs


class ClipCollator:
    """Items of (frame, text, attributes) triples -> ``CLIPModel`` inputs: normalised pixels and
    padded token ids, and with ``attributes`` the scenes' attribute vectors (for
    :class:`~salova.train.clip_attributes.AttributeClip`)."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, max_length: int, attributes: bool = False):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.attributes = attributes
        mean, std = IMAGE_NORMALIZATION["clip_vision_model"]
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def __call__(self, items: Sequence[Sequence[SceneSample]]) -> dict[str, torch.Tensor]:
        pairs = [pair for item in items for pair in item]
        frames = torch.from_numpy(np.stack([frame for frame, _, _ in pairs])).permute(0, 3, 1, 2).float()
        text = self.tokenizer(
            [caption for _, caption, _ in pairs],
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        batch = {
            "pixel_values": (frames / MAX_PIXEL_VALUE - self.mean) / self.std,
            "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"],
        }
        if self.attributes:
            batch["attributes"] = torch.from_numpy(np.stack([attributes for _, _, attributes in pairs]))
        return batch


def clip_step(model: torch.nn.Module, inputs: dict[str, Any]) -> StepOutput:
    """InfoNCE over the micro-batch, plus the attribute loss when the batch carries attributes;
    image -> text top-1 accuracy as the retrieval metric (and each attribute group's accuracy)."""
    if "attributes" in inputs:
        loss, out, attribute_loss, accuracy = model(**inputs)
        means = {"clip_loss": out.loss.item(), "attribute_loss": attribute_loss.item()}
        means |= {f"{name}_acc": value for name, value in accuracy.items()}
    else:
        out = model(**inputs, return_loss=True)
        loss, means = out.loss, {}
    size = out.logits_per_image.shape[0]
    best = out.logits_per_image.detach().argmax(dim=1)
    hits = int((best == torch.arange(size, device=best.device)).sum())
    return StepOutput(
        loss=loss,
        means={"loss": loss.item(), **means},
        counts={"hits": hits, "queries": size, "samples": size, "tokens": int(inputs["attention_mask"].sum())},
    )


def save_clip(model: CLIPModel, tokenizer: PreTrainedTokenizerFast, folder: str | Path) -> None:
    """Write a standard CLIP folder: model, image processor and tokenizer (``CLIPProcessor``)."""
    size = model.config.vision_config.image_size
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
        image_mean=IMAGE_NORMALIZATION["clip_vision_model"][0],
        image_std=IMAGE_NORMALIZATION["clip_vision_model"][1],
    )
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)


def _check_warmup_fits(config: ClipPretrainConfig, plan: BatchPlan) -> None:
    """With ``max_steps``, the run's length in epochs is known only once the data is counted."""
    warmup_epochs = config.attribute_warmup.epochs
    if not warmup_epochs or config.max_steps is None:
        return
    steps_per_epoch = plan.steps_per_epoch
    if warmup_epochs * steps_per_epoch >= config.max_steps:
        raise ConfigError(
            f"attribute_warmup.epochs must be fewer than the run's epochs (max_steps {config.max_steps} of "
            f"{steps_per_epoch} steps per epoch), got {warmup_epochs}"
        )


def pretrain_clip(config: ClipPretrainConfig, *, resume: bool = False, progress: bool = False) -> TrainSummary:
    """Run stage 0: train a CLIP pair on a synthetic corpus and save it as a CLIP folder.

    Args:
        config: the stage 0 config.
        resume: continue the run in ``output_dir`` from its newest checkpoint.
        progress: show a progress bar on the main process.

    Returns:
        :class:`~salova.train.loop.TrainSummary`; the CLIP folder is ``config.output_dir``.

    Raises:
        CorpusError: the corpus is missing or incomplete.
        ConfigError, CheckpointError: bad settings or run folder.
    """

    def setup(session: Session, progress: bool) -> Trainee:
        corpus = load_corpus(config.data.corpus)
        tokenizer = build_word_tokenizer(
            corpus_texts(corpus), config.model.max_text_length, config.model.min_word_count
        )
        clip = build_clip(config.model, tokenizer)
        heads = any(config.attribute_weights.values())
        warmup = config.attribute_warmup
        model = AttributeClip(clip, config.attribute_weights, warmup_weights=warmup.weights) if heads else clip

        def on_epoch(epoch: int) -> None:
            model.warming_up = epoch < warmup.epochs

        videos_root = corpus.root / VIDEOS_DIR
        cache = frame_cache_for(config.data, videos_root, config.model.image_size)
        dataset = SceneDataset(
            corpus,
            cache,
            config.seed,
            config.data.max_samples,
            texts=config.data.texts,
            world_scenes=config.data.world_scenes,
            world_group=config.data.world_group,
        )
        plan = BatchPlan(
            len(dataset), config.global_batch_size, config.micro_batch_size, session.world_size, config.seed
        )
        _check_warmup_fits(config, plan)
        with session.accelerator.main_process_first():
            cache.prepare(videos_root, dataset.videos(), progress=progress)
        logger.info(
            "stage 0: %d corpus scenes, %d world scenes per epoch in groups of %d, %d words",
            len(dataset.scenes),
            dataset.world_items * dataset.world_group,
            dataset.world_group,
            len(tokenizer),
        )
        return Trainee(
            model=model,
            dataset=dataset,
            collate=ClipCollator(tokenizer, config.model.max_text_length, attributes=heads),
            step_fn=clip_step,
            save_model=lambda folder: save_clip(clip, tokenizer, folder),
            num_workers=config.data.num_workers,
            on_epoch=on_epoch if heads and warmup.epochs else None,
        )

    return run_training(config, setup, resume=resume, progress=progress)
