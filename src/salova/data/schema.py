"""The data record: one long video, its segments, one conversation turn pair per query, the
query-segment correspondence scores and the supervision they give the router.

A record is one JSON object (DESIGN.md section 3, compatible with the released code)::

    id             stable, unique id of the video (see salova.data.sources)
    video          path of the video file, relative to the videos folder
    task           "captions" (stage 1.5, dense captions) or "qa" (stage 2, questions)
    fps            average frame rate of the video
    duration_sec   length of the decoded video in seconds
    scenes         [{start_frame, end_frame, start_sec, end_sec}], in order; end exclusive
    conversations  [{from: "human"|"gpt", value}], one human/gpt pair per query
    queries        the text of each query (one row of every matrix)
    sen_sim        T2T scores [num_queries][num_segments], or null when not scored
    lb_sim         V2T scores [num_queries][num_segments], or null when not scored
    labels         0/1 supervision [num_queries][num_segments]
    evidence       QA only: per query, the segments that hold the answer (else null)
    provenance     captioner, models, thresholds and label rule that made the record
    meta           fields of an external source that have no place above, kept so that a
                   converted record converts back unchanged (empty for built records)

What a *query* is:

- ``captions``: query ``q`` is the caption of segment ``q`` (so there are as many queries as
  segments); pair ``q`` of ``conversations`` is the captioning instruction and that caption.
  ``sen_sim[q][s]`` is the text-text similarity between caption ``q`` and caption ``s``;
  ``lb_sim[q][s]`` is the video-text similarity between caption ``q`` and segment ``s``'s video.
- ``qa``: query ``q`` is question ``q``'s scoring text (the question, or the question and its
  correct option, see ``BuildConfig.qa_query``); pair ``q`` of ``conversations`` is the question
  with its lettered options and the answer letter. ``sen_sim[q][s]`` compares the query with
  segment ``s``'s caption, ``lb_sim[q][s]`` with its video.

``labels`` always equals the label rule named in ``provenance`` applied to the matrices,
thresholds and evidence; :meth:`Record.validate` checks it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salova import __version__
from salova.data.supervision import (
    CAPTION_LABEL_RULE,
    DEFAULT_T2T_THRESHOLD,
    DEFAULT_V2T_THRESHOLD,
    LABEL_RULES,
    supervise,
)
from salova.errors import PathError, RecordError
from salova.fileio import atomic_path

__all__ = [
    "TASKS",
    "HUMAN",
    "GPT",
    "Scene",
    "Turn",
    "Provenance",
    "Record",
    "record_line",
    "json_line",
    "read_objects",
    "write_objects",
    "write_records",
    "read_records",
    "iter_jsonl_records",
]

TASKS = ("captions", "qa")
"""Kinds of record: dense segment captions (stage 1.5) and multiple-choice questions (stage 2)."""
SHOWN_SPEAKERS = 6
"""Speakers quoted by the error about a conversation that is not in human/gpt pairs."""
HUMAN = "human"
"""Speaker of the instruction or question turns (the released code's LLaVA convention)."""
GPT = "gpt"
"""Speaker of the caption or answer turns."""


def _get(data: Any, key: str, kind: type | tuple[type, ...], where: str, *, nullable: bool = False) -> Any:
    if not isinstance(data, dict):
        raise RecordError(f"{where}: expected an object, got {type(data).__name__}")
    if key not in data:
        raise RecordError(f"{where}: missing field {key!r}")
    value = data[key]
    if value is None and nullable:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise RecordError(
            f"{where}: field {key!r} is {type(value).__name__}, expected {' or '.join(k.__name__ for k in kinds)}"
        )
    return value


def _number(data: Any, key: str, where: str) -> float:
    value = float(_get(data, key, (int, float), where))
    if not math.isfinite(value):
        raise RecordError(f"{where}: field {key!r} is not finite")
    return value


def _matrix(data: Any, key: str, where: str, shape: tuple[int, int]) -> tuple[tuple[float, ...], ...] | None:
    rows = _get(data, key, list, where, nullable=True)
    if rows is None:
        return None
    if len(rows) != shape[0]:
        raise RecordError(f"{where}: {key} has {len(rows)} rows, expected one per query ({shape[0]})")
    matrix = []
    for q, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != shape[1]:
            raise RecordError(f"{where}: {key}[{q}] must list one score per segment ({shape[1]})")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in row):
            raise RecordError(f"{where}: {key}[{q}] holds a value that is not a finite number")
        matrix.append(tuple(float(v) for v in row))
    return tuple(matrix)


@dataclass(frozen=True)
class Scene:
    """One segment of the video: frames ``[start_frame, end_frame)``, seconds ``[start_sec, end_sec)``."""

    start_frame: int
    end_frame: int
    start_sec: float
    end_sec: float

    @property
    def duration_sec(self) -> float:
        return self.end_sec - self.start_sec

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_sec": self.start_sec,
            "end_sec": self.end_sec,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "scene") -> Scene:
        scene = cls(
            start_frame=_get(data, "start_frame", int, where),
            end_frame=_get(data, "end_frame", int, where),
            start_sec=_number(data, "start_sec", where),
            end_sec=_number(data, "end_sec", where),
        )
        if not 0 <= scene.start_frame < scene.end_frame or not 0 <= scene.start_sec < scene.end_sec:
            raise RecordError(f"{where}: needs 0 <= start < end in frames and seconds, got {scene.to_dict()}")
        return scene


@dataclass(frozen=True)
class Turn:
    """One conversation turn; ``speaker`` is stored as ``from`` in JSON."""

    speaker: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"from": self.speaker, "value": self.value}

    @classmethod
    def from_dict(cls, data: Any, where: str = "turn") -> Turn:
        speaker = _get(data, "from", str, where)
        if speaker not in (HUMAN, GPT):
            raise RecordError(f"{where}: 'from' must be {HUMAN!r} or {GPT!r}, got {speaker!r}")
        return cls(speaker=speaker, value=_get(data, "value", str, where))


@dataclass(frozen=True)
class Provenance:
    """What made a record; enough to re-derive its labels from its scores."""

    captioner: str
    """Captioner name and model (``synthetic``, ``hf:<folder>``, ``openai:<model>@<url>``) or the
    external source a record was converted from (``released``, ``scenewalk``)."""
    v2t_model: str | None
    """Model folder of the V2T scores, or ``None`` when V2T was not scored (or is unknown)."""
    t2t_model: str | None
    """Model folder of the T2T scores, or ``None``."""
    v2t_threshold: float = DEFAULT_V2T_THRESHOLD
    """τ_V2T used for ``labels``."""
    t2t_threshold: float = DEFAULT_T2T_THRESHOLD
    """τ_T2T used for ``labels``."""
    label_rule: str = CAPTION_LABEL_RULE
    """Name in :data:`salova.data.supervision.LABEL_RULES`."""
    salova_version: str = __version__
    """Version of salova that wrote the record."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "captioner": self.captioner,
            "v2t_model": self.v2t_model,
            "t2t_model": self.t2t_model,
            "v2t_threshold": self.v2t_threshold,
            "t2t_threshold": self.t2t_threshold,
            "label_rule": self.label_rule,
            "salova_version": self.salova_version,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "provenance") -> Provenance:
        rule = _get(data, "label_rule", str, where)
        if rule not in LABEL_RULES:
            raise RecordError(f"{where}: unknown label_rule {rule!r}; known: {sorted(LABEL_RULES)}")
        return cls(
            captioner=_get(data, "captioner", str, where),
            v2t_model=_get(data, "v2t_model", str, where, nullable=True),
            t2t_model=_get(data, "t2t_model", str, where, nullable=True),
            v2t_threshold=_number(data, "v2t_threshold", where),
            t2t_threshold=_number(data, "t2t_threshold", where),
            label_rule=rule,
            salova_version=_get(data, "salova_version", str, where),
        )


@dataclass(frozen=True)
class Record:
    """One video's training record (see the module docstring for every field)."""

    id: str
    video: str
    task: str
    fps: float
    duration_sec: float
    scenes: tuple[Scene, ...]
    conversations: tuple[Turn, ...]
    queries: tuple[str, ...]
    sen_sim: tuple[tuple[float, ...], ...] | None
    lb_sim: tuple[tuple[float, ...], ...] | None
    labels: tuple[tuple[int, ...], ...]
    provenance: Provenance
    evidence: tuple[tuple[int, ...], ...] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_segments(self) -> int:
        return len(self.scenes)

    @property
    def num_queries(self) -> int:
        return len(self.queries)

    def answers(self) -> list[str]:
        """The ``gpt`` turn of every query: captions, or answer letters."""
        return [turn.value for turn in self.conversations[1::2]]

    def prompts(self) -> list[str]:
        """The ``human`` turn of every query: captioning instructions, or questions."""
        return [turn.value for turn in self.conversations[0::2]]

    def positives(self, query: int) -> list[int]:
        """Segments labelled positive for ``query``."""
        return [s for s, label in enumerate(self.labels[query]) if label]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "video": self.video,
            "task": self.task,
            "fps": self.fps,
            "duration_sec": self.duration_sec,
            "scenes": [s.to_dict() for s in self.scenes],
            "conversations": [t.to_dict() for t in self.conversations],
            "queries": list(self.queries),
            "sen_sim": None if self.sen_sim is None else [list(r) for r in self.sen_sim],
            "lb_sim": None if self.lb_sim is None else [list(r) for r in self.lb_sim],
            "labels": [list(r) for r in self.labels],
            "evidence": None if self.evidence is None else [list(e) for e in self.evidence],
            "provenance": self.provenance.to_dict(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str | None = None) -> Record:
        """Parse and validate a record (see :meth:`validate`).

        Raises:
            RecordError: a field is missing, has the wrong type or shape, or the labels do not
                follow from the scores.
        """
        where = where or f"record {data.get('id', '?') if isinstance(data, dict) else '?'}"
        task = _get(data, "task", str, where)
        if task not in TASKS:
            raise RecordError(f"{where}: task must be one of {TASKS}, got {task!r}")
        scenes = tuple(
            Scene.from_dict(s, f"{where} scene {i}") for i, s in enumerate(_get(data, "scenes", list, where))
        )
        queries = _get(data, "queries", list, where)
        if not all(isinstance(q, str) for q in queries):
            raise RecordError(f"{where}: queries must be strings")
        shape = (len(queries), len(scenes))
        labels = _matrix(data, "labels", where, shape)
        if labels is None or any(v not in (0, 1) for row in labels for v in row):
            raise RecordError(f"{where}: labels must be a 0/1 matrix [num_queries][num_segments]")
        evidence = _get(data, "evidence", list, where, nullable=True)
        if evidence is not None and not all(
            isinstance(e, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in e) for e in evidence
        ):
            raise RecordError(f"{where}: evidence must list segment indices per query")
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise RecordError(f"{where}: meta must be an object")
        record = cls(
            id=_get(data, "id", str, where),
            video=_get(data, "video", str, where),
            task=task,
            fps=_number(data, "fps", where),
            duration_sec=_number(data, "duration_sec", where),
            scenes=scenes,
            conversations=tuple(
                Turn.from_dict(t, f"{where} turn {i}") for i, t in enumerate(_get(data, "conversations", list, where))
            ),
            queries=tuple(queries),
            sen_sim=_matrix(data, "sen_sim", where, shape),
            lb_sim=_matrix(data, "lb_sim", where, shape),
            labels=tuple(tuple(int(v) for v in row) for row in labels),
            provenance=Provenance.from_dict(_get(data, "provenance", dict, where), f"{where} provenance"),
            evidence=None if evidence is None else tuple(tuple(e) for e in evidence),
            meta=meta,
        )
        record.validate(where)
        return record

    def validate(self, where: str | None = None) -> None:
        """Check the invariants that the types alone do not.

        Raises:
            RecordError: the first broken invariant: empty id, no segments, overlapping or
                unordered segments, conversation not in human/gpt pairs (one per query), a
                caption record whose queries are not its captions, evidence out of range, or
                labels that differ from the label rule applied to the scores.
        """
        where = where or f"record {self.id}"
        if not self.id:
            raise RecordError(f"{where}: id is empty")
        if self.fps <= 0 or self.duration_sec <= 0:
            raise RecordError(f"{where}: fps and duration_sec must be > 0")
        if not self.scenes:
            raise RecordError(f"{where}: has no scenes")
        for i in range(1, len(self.scenes)):
            before, after = self.scenes[i - 1], self.scenes[i]
            if after.start_frame < before.end_frame or after.start_sec < before.end_sec - 1e-6:
                raise RecordError(f"{where}: scene {i} starts before scene {i - 1} ends")
        speakers = [t.speaker for t in self.conversations]
        if speakers != [HUMAN, GPT] * self.num_queries:
            raise RecordError(
                f"{where}: conversations must be {self.num_queries} human/gpt pairs (one per query), "
                f"got speakers {speakers[:SHOWN_SPEAKERS]}{'...' if len(speakers) > SHOWN_SPEAKERS else ''}"
            )
        if self.task == "qa" and self.num_queries == 0:
            raise RecordError(f"{where}: a question-answer record needs at least one question")
        if self.task == "captions":
            if self.num_queries != self.num_segments:
                raise RecordError(f"{where}: a caption record has one query per segment")
            if list(self.queries) != self.answers():
                raise RecordError(f"{where}: the queries of a caption record are its captions (the gpt turns)")
        if self.evidence is not None:
            if len(self.evidence) != self.num_queries:
                raise RecordError(f"{where}: evidence has {len(self.evidence)} entries for {self.num_queries} queries")
            if any(not 0 <= s < self.num_segments for e in self.evidence for s in e):
                raise RecordError(f"{where}: evidence names a segment outside 0..{self.num_segments - 1}")
        self._check_labels(where)

    def _check_labels(self, where: str) -> None:
        p = self.provenance
        try:
            expected = supervise(
                self.sen_sim,
                self.lb_sim,
                t2t_threshold=p.t2t_threshold,
                v2t_threshold=p.v2t_threshold,
                evidence=self.evidence,
                rule=p.label_rule,
                num_segments=self.num_segments,
            )
        except ValueError as exc:  # ConfigError is a ValueError too
            raise RecordError(f"{where}: labels cannot be derived: {exc}") from exc
        if expected.tolist() != [list(row) for row in self.labels]:
            raise RecordError(f"{where}: labels differ from label rule {p.label_rule!r} applied to the scores")


def record_line(record: Record) -> str:
    """The record as one compact JSON line (no trailing newline); the JSONL form."""
    return json_line(record.to_dict())


def json_line(obj: Any) -> str:
    """Compact one-line JSON, as every JSONL file of salova is written."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


FREE_FORM_KEYS = ("meta", "salova")
"""Object keys holding free-form dicts; Parquet cannot store an empty struct, so they travel as
JSON strings there."""
OBJECT_SUFFIXES = (".jsonl", ".json", ".parquet")
"""File types of :func:`read_objects` and :func:`write_objects`."""


def _pyarrow(path: Path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise PathError(path, "Parquet needs pyarrow (pip install pyarrow, or salova[ray])") from exc
    return pq, pa


def write_objects(path: str | Path, objects: Iterable[dict[str, Any]]) -> int:
    """Write JSON objects atomically as ``.jsonl``, ``.json`` (a list) or ``.parquet``.

    Returns:
        The number of objects written.

    Raises:
        PathError: unknown suffix, or the file cannot be written.
    """
    path = Path(path)
    objects = list(objects)
    if path.suffix not in OBJECT_SUFFIXES:
        raise PathError(path, f"unknown file type; use one of {OBJECT_SUFFIXES}")
    try:
        with atomic_path(path) as temp:
            if path.suffix == ".parquet":
                pq, pa = _pyarrow(path)
                rows = [
                    {k: json.dumps(v, ensure_ascii=False) if k in FREE_FORM_KEYS else v for k, v in o.items()}
                    for o in objects
                ]
                pq.write_table(pa.Table.from_pylist(rows), temp)
            elif path.suffix == ".jsonl":
                temp.write_text("".join(json_line(o) + "\n" for o in objects), encoding="utf-8")
            else:
                temp.write_text(json.dumps(objects, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise PathError(path, f"cannot write: {exc.strerror or exc}") from exc
    return len(objects)


def read_objects(path: str | Path) -> list[dict[str, Any]]:
    """JSON objects of a ``.jsonl``, ``.json`` (one object or a list) or ``.parquet`` file.

    Raises:
        PathError: the file cannot be read or has another suffix.
        RecordError: the content is not JSON.
    """
    path = Path(path)
    if path.suffix not in OBJECT_SUFFIXES:
        raise PathError(path, f"unknown file type; use one of {OBJECT_SUFFIXES}")
    try:
        if path.suffix == ".parquet":
            pq, _ = _pyarrow(path)
            rows = pq.read_table(path).to_pylist()
            return [
                {k: json.loads(v) if k in FREE_FORM_KEYS and isinstance(v, str) else v for k, v in row.items()}
                for row in rows
            ]
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        loaded = json.loads(text)
        return loaded if isinstance(loaded, list) else [loaded]
    except OSError as exc:
        raise PathError(path, f"cannot read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise RecordError(f"{path}: not JSON: {exc}") from exc


def write_records(path: str | Path, records: Iterable[Record]) -> int:
    """Write records atomically as JSONL (``.jsonl``), a JSON list (``.json``) or Parquet.

    Returns:
        The number of records written.

    Raises:
        PathError: unknown suffix, or the file cannot be written.
    """
    return write_objects(path, (record.to_dict() for record in records))


def iter_jsonl_records(path: str | Path) -> Iterator[Record]:
    """Yield the records of a JSONL file one by one, validating each.

    Raises:
        PathError: the file cannot be read.
        RecordError: a line is not JSON or not a valid record (the message names the line).
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise PathError(path, f"cannot read: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise RecordError(f"{path}:{number}: not JSON: {exc}") from exc
            yield Record.from_dict(data, where=f"{path}:{number}")


def read_records(path: str | Path) -> list[Record]:
    """Read and validate every record of a ``.jsonl``, ``.json`` or ``.parquet`` file.

    Raises:
        PathError: the file cannot be read or has another suffix.
        RecordError: a record is malformed.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        return list(iter_jsonl_records(path))
    return [Record.from_dict(obj, where=f"{path} item {i}") for i, obj in enumerate(read_objects(path))]
