"""The training loop, one for every stage: batch -> forward -> scale -> backward -> clip -> step -> log -> checkpoint.

:func:`fit` runs it for any model and step function; :func:`train` sets up a SALOVA stage (1, 1.5,
2) and :func:`salova.train.clip_pretrain.pretrain_clip` stage 0 on top of it. A stage differs from
another only in its config: what trains, on which records, with which losses and token drop.

Reproducibility: every micro-batch re-seeds torch from ``(seed, epoch, step, chunk)`` before its
forward pass, so token drop and dropout draw the same numbers whichever process runs it and
whether or not the run was interrupted; with the batch order of :class:`~salova.train.data.BatchPlan`
a run of N processes matches a run of one, and a resumed run matches an uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate.utils import send_to_device, set_seed
from torch import nn
from torch.utils.data import Dataset

from salova.errors import CheckpointError, ConfigError
from salova.fileio import atomic_write_text, dotted_keys
from salova.model.feature_cache import FrameFeatureCache
from salova.model.focusfast import TokenType
from salova.model.towers import VisionTower
from salova.train.alignment import WordAlignment, content_vocabulary
from salova.train.checkpoint import (
    STATE_FILE,
    TrainerState,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    read_trainer_state,
    remove_partial_checkpoints,
    save_checkpoint,
    write_trainer_state,
)
from salova.train.config import RunConfig, TrainConfig, config_to_dict
from salova.train.data import (
    BatchPlan,
    RecordCollator,
    RecordDataset,
    frame_cache_for,
    load_record_source,
    micro_batches,
)
from salova.train.distributed import Session, start_session
from salova.train.logs import RunLogger
from salova.train.optim import build_optimizer, build_scheduler
from salova.train.weights import StageModel, assemble_model, load_trained, prepare_for_stage, save_trained

__all__ = [
    "CONFIG_FILE",
    "StepOutput",
    "TrainSummary",
    "retrieval_hits",
    "total_steps",
    "Trainee",
    "fit",
    "run_training",
    "train",
]

logger = logging.getLogger(__name__)

CONFIG_FILE = "train_config.yaml"
"""The validated config of a run, in its folder."""
PARTIAL_MODEL_DIR = ".partial-model"
"""Where the final model is assembled before it is moved into the run folder."""
RESUME_FREE_KEYS = ("output_dir", "logging", "checkpoint", "data.num_workers")
"""Config keys that may change when a run resumes (they do not change its results)."""


@dataclass
class StepOutput:
    """What a step function returns for one micro-batch."""

    loss: torch.Tensor
    """The scalar to back-propagate."""
    means: dict[str, float] = field(default_factory=dict)
    """Per-micro-batch values averaged over the step (``loss``, ``lm_loss``...)."""
    counts: dict[str, float] = field(default_factory=dict)
    """Values summed over the step (``hits``, ``queries``, ``tokens``, ``samples``)."""


StepFunction = Callable[[nn.Module, Any], StepOutput]


@dataclass(frozen=True)
class TrainSummary:
    """What a run did."""

    output_dir: Path
    stage: str
    steps: int
    """Optimizer steps of the run (all of them, including those before a resume)."""
    resumed_from: int | None
    """Step of the checkpoint the run resumed from, if any."""
    world_size: int
    rank: int
    """This process's rank (0 prints and writes)."""
    metrics: dict[str, float]
    """Metrics of the last step run by this call (empty when there was nothing left to do)."""


@dataclass
class Trainee:
    """What a stage hands the loop: the model and its data, the forward pass, and how to save the result."""

    model: nn.Module
    """The model with its trainable parameters marked (not yet prepared by the session)."""
    dataset: Dataset
    """Items addressed by ``(epoch, index)`` keys."""
    collate: Callable[[list], Any]
    """Micro-batch of items -> model inputs."""
    step_fn: StepFunction
    """``(prepared model, inputs) -> StepOutput``: the forward pass and its metrics."""
    save_model: Callable[[Path], None]
    """Writes the trained model into a folder (called on the main process)."""
    num_workers: int = 0
    """DataLoader worker processes."""
    on_epoch: Callable[[int], None] | None = None
    """Called with each micro-batch's epoch before its forward pass (a stage whose training changes
    with the epoch, such as stage 0's attribute warm-up)."""


Setup = Callable[[Session, bool], Trainee]
"""Builds a stage's :class:`Trainee` in a started session (``progress`` as second argument)."""


def retrieval_hits(router_logits: tuple[torch.Tensor, ...], segment_labels: list[torch.Tensor]) -> tuple[int, int]:
    """Top-1 retrieval: queries whose best-scored segment is labelled relevant, over queries with a relevant one.

    Returns:
        ``(hits, queries)`` summed over the videos.
    """
    hits = queries = 0
    for logits, labels in zip(router_logits, segment_labels, strict=True):
        labels = labels.to(logits.device)
        answerable = labels.bool().any(dim=1)
        best = logits.detach().argmax(dim=1)
        picked = labels.gather(1, best[:, None]).squeeze(1).bool()
        hits += int((picked & answerable).sum())
        queries += int(answerable.sum())
    return hits, queries


def total_steps(config: RunConfig, plan: BatchPlan) -> int:
    """Optimizer steps of a run: ``max_steps``, else ``epochs`` passes (rounded up)."""
    if config.max_steps is not None:
        return config.max_steps
    return max(1, math.ceil(config.epochs * plan.steps_per_epoch))


# --------------------------------------------------------------------------- run folder


def _check_same_config(output_dir: Path, config: RunConfig) -> None:
    path = output_dir / CONFIG_FILE
    if not path.is_file():
        return
    saved = dotted_keys(yaml.safe_load(path.read_text(encoding="utf-8")))
    now = dotted_keys(config_to_dict(config))
    changed = sorted(
        key
        for key in saved.keys() | now.keys()
        if saved.get(key) != now.get(key)
        and not any(key == free or key.startswith(free + ".") for free in RESUME_FREE_KEYS)
    )
    if changed:
        raise CheckpointError(f"{output_dir}: cannot resume with a different config (changed: {changed})")


def open_run_folder(config: RunConfig, resume: bool) -> tuple[Path, TrainerState | None]:
    """Check the run folder before any work: a finished run (returned state) or a clean start.

    Raises:
        ConfigError: no output folder is set.
        CheckpointError: the folder holds another run and ``resume`` is off, or a different config.
    """
    if not config.output_dir:
        raise ConfigError("output_dir is not set (output_dir in the YAML, or --output)")
    output_dir = Path(config.output_dir)
    finished = output_dir / STATE_FILE
    started = list_checkpoints(output_dir) or (output_dir / CONFIG_FILE).is_file()
    if not resume and (finished.is_file() or started):
        raise CheckpointError(
            f"{output_dir}: holds a {'finished' if finished.is_file() else 'started'} run; "
            "pass --resume to continue it, or choose another output folder"
        )
    if resume:
        _check_same_config(output_dir, config)
        if finished.is_file():
            return output_dir, read_trainer_state(finished)
    return output_dir, None


def finished_summary(output_dir: Path, state: TrainerState) -> TrainSummary:
    """The summary of a call that found its run already finished."""
    return TrainSummary(output_dir, state.stage, state.step, state.step, state.world_size, 0, {})


def _publish(output_dir: Path, write: Callable[[Path], None]) -> None:
    """Write the final model into a hidden folder, then move its entries into the run folder."""
    partial = output_dir / PARTIAL_MODEL_DIR
    shutil.rmtree(partial, ignore_errors=True)
    write(partial)
    for entry in sorted(partial.iterdir()):
        target = output_dir / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    partial.rmdir()


# --------------------------------------------------------------------------- the loop


def fit(
    config: RunConfig,
    session: Session,
    trainee: Trainee,
    *,
    output_dir: Path,
    resume: bool,
    progress: bool,
) -> TrainSummary:
    """Train as ``config`` says; checkpoint, resume, and write the result into ``output_dir``.

    Args:
        config: the run config.
        session: the processes.
        trainee: the model, data, step function and saver of the stage.
        output_dir: the run folder (checked by :func:`open_run_folder`).
        resume: continue from the newest checkpoint, if there is one.
        progress: show a progress bar (main process).

    Returns:
        :class:`TrainSummary`.
    """
    model, dataset, step_fn = trainee.model, trainee.dataset, trainee.step_fn
    plan = BatchPlan(len(dataset), config.global_batch_size, config.micro_batch_size, session.world_size, config.seed)
    steps = total_steps(config, plan)
    optimizer = build_optimizer(model, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, steps)
    prepared, optimizer = session.accelerator.prepare(model, optimizer)
    unwrapped = session.accelerator.unwrap_model(prepared)
    params = [p for p in prepared.parameters() if p.requires_grad]

    def state_at(step: int, complete: bool = False) -> TrainerState:
        epoch, in_epoch = plan.position(step)
        return TrainerState(
            stage=config.stage,
            step=step,
            total_steps=steps,
            epoch=epoch,
            step_in_epoch=in_epoch,
            num_samples=plan.num_samples,
            global_batch_size=plan.global_batch_size,
            micro_batch_size=plan.micro_batch_size,
            seed=plan.seed,
            world_size=session.world_size,
            complete=complete,
        )

    start, resumed_from = 0, None
    if session.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        for stale in remove_partial_checkpoints(output_dir):
            logger.info("removed the partial checkpoint %s", stale)
    session.barrier()
    checkpoint = latest_checkpoint(output_dir) if resume else None
    if checkpoint is not None:
        saved = load_checkpoint(session, checkpoint, unwrapped, optimizer, scheduler)
        saved.check_resumable(state_at(saved.step), checkpoint)
        start = resumed_from = saved.step
        logger.info("resuming from %s (step %d of %d)", checkpoint, start, steps)
    elif session.is_main:
        atomic_write_text(output_dir / CONFIG_FILE, yaml.safe_dump(config_to_dict(config), sort_keys=False))

    run_logger = RunLogger(
        output_dir,
        config.logging,
        enabled=session.is_main,
        start_step=start,
        total_steps=steps,
        progress=progress,
        run_config=config_to_dict(config),
    )
    batches = micro_batches(
        plan, dataset, trainee.collate, rank=session.rank, start_step=start, num_workers=trainee.num_workers
    )
    accelerator = session.accelerator
    metrics: dict[str, float] = {}
    prepared.train()
    try:
        for step in range(start, steps):
            began = time.perf_counter()
            means: dict[str, float] = {}
            counts: dict[str, float] = {}
            grad_norm = None
            for _ in range(plan.accumulation):
                micro = next(batches)  # batch
                torch.manual_seed(micro.seed)
                if trainee.on_epoch is not None:
                    trainee.on_epoch(micro.epoch)
                with accelerator.accumulate(prepared):
                    out = step_fn(prepared, send_to_device(micro.inputs, session.device))  # forward
                    # backward; accelerate scales the loss by 1 / accumulation (DeepSpeed: the engine does)
                    accelerator.backward(out.loss)
                    if accelerator.sync_gradients:  # clip (norm over all processes' averaged gradients)
                        limit = config.optim.max_grad_norm or float("inf")
                        grad_norm = accelerator.clip_grad_norm_(params, limit)
                    optimizer.step()  # step: only on the last micro-batch of the accumulation
                    optimizer.zero_grad(set_to_none=True)
                for key, value in out.means.items():
                    means[key] = means.get(key, 0.0) + value
                for key, value in out.counts.items():
                    counts[key] = counts.get(key, 0.0) + value
            metrics = _step_metrics(session, plan, means, counts, optimizer, grad_norm, time.perf_counter() - began)
            scheduler.step()
            metrics["epoch"] = (step + 1) / plan.steps_per_epoch
            run_logger.log(step + 1, metrics)  # log
            every = config.checkpoint.every_steps
            if every and (step + 1) % every == 0 and step + 1 < steps:  # checkpoint
                save_checkpoint(
                    session,
                    output_dir,
                    state_at(step + 1),
                    unwrapped,
                    optimizer,
                    scheduler,
                    config.checkpoint.keep_last,
                )
    finally:
        run_logger.close()
    session.barrier()
    if session.is_main:
        _publish(output_dir, trainee.save_model)
        write_trainer_state(output_dir / STATE_FILE, state_at(steps, complete=True))
    session.barrier()
    return TrainSummary(
        output_dir=output_dir,
        stage=config.stage,
        steps=steps,
        resumed_from=resumed_from,
        world_size=session.world_size,
        rank=session.rank,
        metrics=metrics,
    )


def _step_metrics(
    session: Session,
    plan: BatchPlan,
    means: dict[str, float],
    counts: dict[str, float],
    optimizer: torch.optim.Optimizer,
    grad_norm: torch.Tensor | float | None,
    seconds: float,
) -> dict[str, float]:
    """One step's metrics over all processes."""
    total = session.sum({**{f"mean:{k}": v for k, v in means.items()}, **counts})
    micro_batches_per_step = plan.accumulation * session.world_size
    metrics = {k.removeprefix("mean:"): v / micro_batches_per_step for k, v in total.items() if k.startswith("mean:")}
    if total.get("queries"):
        metrics["retrieval_acc"] = total["hits"] / total["queries"]
    if total.get("words"):
        metrics["word_recall"] = total["word_hits"] / total["words"]
    if "tokens" in total:
        metrics["tokens_per_sec"] = total["tokens"] / seconds
    if "samples" in total:
        metrics["samples_per_sec"] = total["samples"] / seconds
    for group in optimizer.param_groups:
        metrics[f"lr/{group['name']}"] = group["lr"]
    if grad_norm is not None:
        metrics["grad_norm"] = float(grad_norm)
    return metrics


# --------------------------------------------------------------------------- SALOVA stages


def salova_step(top_k: int, retrieval_only: bool = False) -> StepFunction:
    """The step function of stages 1-2: SALOVA's forward with teacher-forced focus segments
    (or, ``retrieval_only``, the connector and router without the LLM)."""

    def step(model: nn.Module, inputs: dict[str, Any]) -> StepOutput:
        if retrieval_only:
            out = model(**inputs, retrieval_only=True)
            counts = {"samples": inputs["input_ids"].shape[0]}
            counts["hits"], counts["queries"] = retrieval_hits(out.router_logits, inputs["segment_labels"])
            return StepOutput(
                loss=out.loss,
                means={"loss": out.loss.item(), "similarity_loss": out.similarity_loss.item()},
                counts=counts,
            )
        out = model(**inputs, top_k=top_k, use_cache=False)
        means = {"loss": out.loss.item()}
        if out.lm_loss is not None:
            means["lm_loss"] = out.lm_loss.item()
        if out.similarity_loss is not None:
            means["similarity_loss"] = out.similarity_loss.item()
        counts = {"samples": inputs["input_ids"].shape[0], "tokens": int((out.token_types != TokenType.PAD).sum())}
        if out.router_logits is not None:
            counts["hits"], counts["queries"] = retrieval_hits(out.router_logits, inputs["segment_labels"])
        return StepOutput(loss=out.loss, means=means, counts=counts)

    return step


def alignment_step(model: nn.Module, inputs: dict[str, Any]) -> StepOutput:
    """The step function of ``objective: alignment``: a :class:`~salova.train.alignment.WordAlignment`
    forward (router similarity + word alignment, no LLM)."""
    out = model(**inputs)
    hits, queries = retrieval_hits(out.router_logits, inputs["segment_labels"])
    return StepOutput(
        loss=out.loss,
        means={
            "loss": out.loss.item(),
            "similarity_loss": out.similarity_loss.item(),
            "alignment_loss": out.alignment_loss.item(),
        },
        counts={
            "samples": len(inputs["segment_labels"]),
            "hits": hits,
            "queries": queries,
            "word_hits": out.word_hits,
            "words": out.words,
        },
    )


def keep_tower_features(tower: VisionTower, megabytes: int) -> None:
    """Attach a :class:`~salova.model.FrameFeatureCache` of ``megabytes`` MiB to a frozen vision tower.

    Raises:
        ConfigError: the tower trains or has dropout (its features would not repeat).
    """
    if tower.trains:
        raise ConfigError("tower_cache_mb needs a frozen vision tower, but its weights train")
    backbone = tower.backbone.config
    dropout = {
        name: getattr(backbone, name) for name in ("dropout", "attention_dropout") if getattr(backbone, name, 0.0)
    }
    dropout.update({name: m.p for name, m in tower.named_modules() if isinstance(m, nn.Dropout) and m.p > 0})
    if dropout:
        raise ConfigError(f"tower_cache_mb needs a vision tower without dropout, got {dropout}")
    tower.feature_cache = FrameFeatureCache(megabytes * 2**20)
    logger.info("keeping the frozen vision tower's frame features (up to %d MiB)", megabytes)


def build_stage_model(config: TrainConfig) -> StageModel:
    """The model of a SALOVA stage: loaded or assembled, with this stage's settings, trainable parts and LoRA."""
    overrides = {
        **config.config_overrides,
        "connector_max_token_drop": config.max_token_drop,
        "similarity_loss_weight": config.similarity_loss_weight,
    }
    if config.data.task == "qa":
        overrides["choice_answer"] = config.data.answer_format  # the checkpoint answers as it was taught
    if config.init_from is not None:
        init = Path(config.init_from)
        if (init / "checkpoints").is_dir() and not (init / STATE_FILE).is_file():
            raise CheckpointError(f"{init}: its training did not finish; resume it first (salova train --resume)")
        stage_model = load_trained(init, **overrides)
    else:
        stage_model = assemble_model(config.model, overrides)
    prepare_for_stage(stage_model, config.trainable, config.lora)
    if config.tower_cache_mb:
        keep_tower_features(stage_model.model.vision_tower, config.tower_cache_mb)
    if config.gradient_checkpointing:
        model = stage_model.model
        # Non-reentrant: frozen inputs need no grad hooks, and the recompute keeps the RNG state.
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # the newer transformers 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return stage_model


def run_training(config: RunConfig, setup: Setup, *, resume: bool, progress: bool) -> TrainSummary:
    """Check the run folder, join the processes, seed, let ``setup`` build the stage, and :func:`fit`."""
    output_dir, finished = open_run_folder(config, resume)
    if finished is not None:
        logger.info("%s: the run is already finished", output_dir)
        return finished_summary(output_dir, finished)
    session = start_session(config)
    try:
        set_seed(config.seed)
        trainee = setup(session, progress and session.is_main)
        return fit(config, session, trainee, output_dir=output_dir, resume=resume, progress=progress)
    finally:
        session.close()


def train(config: TrainConfig, *, resume: bool = False, progress: bool = False) -> TrainSummary:
    """Run a SALOVA stage (1, 1.5 or 2) in this process, or in each process of a distributed launch.

    Args:
        config: the stage config (see :func:`salova.train.load_config`).
        resume: continue the run in ``output_dir`` from its newest checkpoint (or start it if it has
            none; do nothing if it is finished).
        progress: show a progress bar on the main process.

    Returns:
        :class:`TrainSummary`; the trained model is in ``config.output_dir``.

    Raises:
        ConfigError, CheckpointError, DataError, PathError: bad settings, folders or records.

    Example:
        >>> from salova.train import load_config, train
        >>> train(load_config("stage1_5.yaml", overrides=["output_dir=runs/s15"]))  # doctest: +SKIP
    """

    def setup(session: Session, progress: bool) -> Trainee:
        stage_model = build_stage_model(config)
        source = load_record_source(config.data)
        frame_size = stage_model.model.config.vision_config.image_size
        cache = frame_cache_for(config.data, source.videos_root, frame_size)
        dataset = RecordDataset(source, config.data, cache)
        with session.accelerator.main_process_first():
            cache.prepare(source.videos_root, dataset.videos(), progress=progress)
        timestamps = stage_model.model.config.focusfast_timestamps
        if config.objective == "alignment":
            collate = RecordCollator(stage_model.processor, timestamps=timestamps, answers=True)
            answers = [collate.answer_ids(text) for record in source.records for text in record.answers()]
            vocabulary = content_vocabulary(answers, config.alignment.max_document_frequency)
            logger.info("word alignment over %d content tokens of %d answers", len(vocabulary), len(answers))
            model: nn.Module = WordAlignment(stage_model.model, vocabulary, config.alignment)
            step_fn = alignment_step
        else:
            collate = RecordCollator(stage_model.processor, timestamps=timestamps)
            model = stage_model.model
            step_fn = salova_step(config.top_k, retrieval_only=config.objective == "retrieval")
        return Trainee(
            model=model,
            dataset=dataset,
            collate=collate,
            step_fn=step_fn,
            save_model=lambda folder: save_trained(stage_model, folder),
            num_workers=config.data.num_workers,
        )

    return run_training(config, setup, resume=resume, progress=progress)
