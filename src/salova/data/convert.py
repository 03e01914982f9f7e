"""Converters between salova records and the two external formats of SALOVA's data.

**Released code JSON** (the authors' LLaVA-NeXT fork, one object per video)::

    {"id", "video", "total_time", "clip_num",
     "scenes": [{"start_frame", "end_frame", "start_fps", "end_fps"}],
     "conversations": [{"from", "value"}], "sen_sim": [[...]], "lb_sim": [[...]]}

``start_fps``/``end_fps`` are the *frame rate* at a scene's two ends, not times: the
released loader computes a scene's length as ``(end_frame - start_frame) / mean(fps)``; a
scene's seconds are therefore ``frame / fps``. ``clip_num`` is the number of
instruction/answer pairs (rows of ``sen_sim``). Human turns carry LLaVA's ``<image>\\n``
placeholder: every turn of a caption record (the loader reads each pair on its own), the
first turn of a question-answer record.

**Public SceneWalk rows** (one row per clip)::

    {"id", "url", "time_stamp": {"duration", "start_fps", "end_fps", "start_frame",
     "end_frame", "start_time", "end_time"}, "v2t_score": [...], "t2t_score": [...],
     "conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}

Rows of one video share ``url``; a row's ``v2t_score``/``t2t_score`` is the row of the V2T/T2T
matrix for its clip's caption, over the video's clips in time order. Times are
``HH:MM:SS.mmm`` strings (millisecond precision).

Round trips: converting an external object to a record and back gives the same object
(fields with no place in a record are kept in ``record.meta``). Converting a record out
keeps what the format can hold; :func:`to_released` with ``salova_fields=True`` adds the
rest under a ``"salova"`` key (ignored by the released loader) so the record comes back
unchanged. SceneWalk rows hold caption records only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from salova.data.schema import GPT, HUMAN, Provenance, Record, Scene, Turn, read_objects, write_objects
from salova.data.supervision import CAPTION_LABEL_RULE, DEFAULT_T2T_THRESHOLD, DEFAULT_V2T_THRESHOLD, supervise
from salova.errors import ConfigError, RecordError

__all__ = [
    "IMAGE_PREFIX",
    "to_released",
    "from_released",
    "to_scenewalk_rows",
    "from_scenewalk_rows",
    "timecode",
    "parse_timecode",
    "FORMATS",
    "detect_format",
    "to_records",
    "from_records",
    "convert_file",
]

IMAGE_PREFIX = "<image>\n"
"""LLaVA's image placeholder at the start of a human turn, as the released code expects it."""
RELEASED_KEYS = ("id", "video", "total_time", "clip_num", "scenes", "conversations", "sen_sim", "lb_sim", "salova")
"""Top-level keys of a released-code object that map onto record fields."""
RELEASED_SCENE_KEYS = ("start_frame", "end_frame", "start_fps", "end_fps", "start_sec", "end_sec")
"""Scene keys of a released-code object that map onto record fields."""
OPTIONAL_RELEASED_KEYS = ("total_time", "clip_num", "sen_sim", "lb_sim")
"""Keys some released-code files lack; their absence is remembered for the way back."""


def _plain(number: float) -> int | float:
    """Whole numbers as ``int`` (as the releases store frame rates and durations)."""
    return int(number) if float(number).is_integer() else float(number)


def timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm``, PySceneDetect's timecode form.

    Example:
        >>> timecode(3725.5)
        '01:02:05.500'
    """
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def parse_timecode(text: str) -> float:
    """Seconds of ``[HH:]MM:SS[.mmm]`` or of a plain number of seconds.

    Raises:
        RecordError: not a timecode.
    """
    try:
        total = 0.0
        for part in str(text).split(":"):
            total = total * 60 + float(part)
    except ValueError as exc:
        raise RecordError(f"not a timecode: {text!r}") from exc
    return round(total, 3)


def _default_image_turns(task: str, num_pairs: int) -> list[bool]:
    return [task == "captions" or pair == 0 for pair in range(num_pairs)]


def _read_turns(raw: Any, where: str) -> tuple[list[Turn], list[bool]]:
    """Turns without the image placeholder, and for each human turn whether it had one."""
    if not isinstance(raw, list):
        raise RecordError(f"{where}: conversations must be a list")
    turns = [Turn.from_dict(t, f"{where} turn {i}") for i, t in enumerate(raw)]
    had = [t.value.startswith(IMAGE_PREFIX) for t in turns if t.speaker == HUMAN]
    clean = [Turn(t.speaker, t.value.removeprefix(IMAGE_PREFIX) if t.speaker == HUMAN else t.value) for t in turns]
    return clean, had


def _write_turns(turns: Sequence[Turn], image_turns: Sequence[bool]) -> list[dict[str, str]]:
    flags = iter(image_turns)
    out = []
    for turn in turns:
        value = turn.value
        if turn.speaker == HUMAN and next(flags, False):
            value = IMAGE_PREFIX + value
        out.append({"from": turn.speaker, "value": value})
    return out


def _imported(
    sen_sim: Any, lb_sim: Any, thresholds: tuple[float, float], source: str
) -> tuple[list[list[int]], Provenance]:
    t2t, v2t = thresholds
    try:
        labels = supervise(sen_sim, lb_sim, t2t_threshold=t2t, v2t_threshold=v2t, rule=CAPTION_LABEL_RULE)
    except ValueError as exc:
        raise RecordError(f"{source} data without usable scores: {exc}") from exc
    provenance = Provenance(captioner=source, v2t_model=None, t2t_model=None, v2t_threshold=v2t, t2t_threshold=t2t)
    return labels.tolist(), provenance


def to_released(record: Record, *, salova_fields: bool = False) -> dict[str, Any]:
    """The record as a released-code JSON object.

    Args:
        record: any record.
        salova_fields: also write what the format cannot hold (task, queries, labels,
            evidence, provenance, scene seconds) under ``"salova"``.

    Example:
        >>> to_released(record)["scenes"][0]  # doctest: +SKIP
        {'start_frame': 0, 'end_frame': 71, 'start_fps': 8, 'end_fps': 8}
    """
    meta = record.meta.get("released", {})
    fps = meta.get("scene_fps") or [[record.fps, record.fps]] * record.num_segments
    scenes = []
    for scene, (start_fps, end_fps), extra in zip(
        record.scenes, fps, meta.get("scene_extra") or [{}] * record.num_segments, strict=True
    ):
        scenes.append(
            {
                "start_frame": scene.start_frame,
                "end_frame": scene.end_frame,
                "start_fps": _plain(start_fps),
                "end_fps": _plain(end_fps),
                **extra,
            }
        )
    image_turns = meta.get("image_turns") or _default_image_turns(record.task, record.num_queries)
    obj: dict[str, Any] = {
        "id": record.id,
        "video": record.video,
        "total_time": _plain(record.duration_sec),
        "clip_num": record.num_queries,
        "scenes": scenes,
        "conversations": _write_turns(record.conversations, image_turns),
        "sen_sim": None if record.sen_sim is None else [list(r) for r in record.sen_sim],
        "lb_sim": None if record.lb_sim is None else [list(r) for r in record.lb_sim],
        **meta.get("extra", {}),
    }
    for key in meta.get("absent", []):
        obj.pop(key, None)
    if salova_fields:
        full = record.to_dict()
        obj["salova"] = {key: full[key] for key in ("task", "fps", "duration_sec", "scenes", "queries", "labels")}
        obj["salova"].update(evidence=full["evidence"], provenance=full["provenance"], meta=full["meta"])
    return obj


def from_released(
    obj: dict[str, Any],
    *,
    t2t_threshold: float = DEFAULT_T2T_THRESHOLD,
    v2t_threshold: float = DEFAULT_V2T_THRESHOLD,
) -> Record:
    """A record from a released-code JSON object (labels from the scores and thresholds).

    A caption record is recognised by one instruction/caption pair per scene with T2T scores;
    anything else is read as question-answer turns (queries = the human turns).

    Raises:
        RecordError: the object is malformed.
    """
    where = f"released object {obj.get('id', '?') if isinstance(obj, dict) else '?'}"
    if not isinstance(obj, dict):
        raise RecordError(f"{where}: expected a JSON object")
    if isinstance(obj.get("salova"), dict):
        extra = obj["salova"]
        data = {key: obj.get(key) for key in ("id", "video", "conversations", "sen_sim", "lb_sim")}
        turns, _ = _read_turns(obj.get("conversations"), where)
        data["conversations"] = [t.to_dict() for t in turns]
        return Record.from_dict({**data, **{k: v for k, v in extra.items()}}, where=where)
    raw_scenes = obj.get("scenes")
    if not isinstance(raw_scenes, list) or not raw_scenes:
        raise RecordError(f"{where}: needs a non-empty scenes list")
    scenes, scene_fps, scene_extra = [], [], []
    for i, raw in enumerate(raw_scenes):
        if not isinstance(raw, dict) or not all(k in raw for k in RELEASED_SCENE_KEYS[:4]):
            raise RecordError(f"{where} scene {i}: needs {RELEASED_SCENE_KEYS[:4]}")
        start_fps, end_fps = float(raw["start_fps"]), float(raw["end_fps"])
        if start_fps <= 0 or end_fps <= 0:
            raise RecordError(f"{where} scene {i}: frame rates must be > 0")
        data = {
            "start_frame": raw["start_frame"],
            "end_frame": raw["end_frame"],
            "start_sec": raw.get("start_sec", raw["start_frame"] / start_fps),
            "end_sec": raw.get("end_sec", raw["end_frame"] / end_fps),
        }
        scenes.append(Scene.from_dict(data, f"{where} scene {i}"))
        scene_fps.append([start_fps, end_fps])
        scene_extra.append({k: v for k, v in raw.items() if k not in RELEASED_SCENE_KEYS[:4]})
    turns, had = _read_turns(obj.get("conversations"), where)
    pairs = len(turns) // 2
    if "clip_num" in obj and obj["clip_num"] != pairs:
        raise RecordError(f"{where}: clip_num is {obj['clip_num']} but there are {pairs} conversation pairs")
    sen_sim, lb_sim = obj.get("sen_sim"), obj.get("lb_sim")
    task = "captions" if sen_sim is not None and pairs == len(scenes) else "qa"
    fps = scene_fps[0][0]
    labels, provenance = _imported(sen_sim, lb_sim, (t2t_threshold, v2t_threshold), "released")
    meta: dict[str, Any] = {}
    if any(pair != [fps, fps] for pair in scene_fps):
        meta["scene_fps"] = scene_fps
    if any(scene_extra):
        meta["scene_extra"] = scene_extra
    if had != _default_image_turns(task, pairs):
        meta["image_turns"] = had
    extra = {k: v for k, v in obj.items() if k not in RELEASED_KEYS}
    if extra:
        meta["extra"] = extra
    absent = [k for k in OPTIONAL_RELEASED_KEYS if k not in obj]
    if absent:
        meta["absent"] = absent
    record = Record(
        id=str(obj.get("id", "")),
        video=str(obj.get("video", "")),
        task=task,
        fps=fps,
        duration_sec=float(obj.get("total_time") or scenes[-1].end_sec),
        scenes=tuple(scenes),
        conversations=tuple(turns),
        queries=tuple(t.value for t in turns[1::2]) if task == "captions" else tuple(t.value for t in turns[0::2]),
        sen_sim=None if sen_sim is None else tuple(tuple(float(v) for v in row) for row in sen_sim),
        lb_sim=None if lb_sim is None else tuple(tuple(float(v) for v in row) for row in lb_sim),
        labels=tuple(tuple(row) for row in labels),
        provenance=provenance,
        meta={"released": meta} if meta else {},
    )
    record.validate(where)
    return record


def to_scenewalk_rows(record: Record) -> list[dict[str, Any]]:
    """The rows of the public SceneWalk release for a caption record, one per clip.

    Raises:
        RecordError: ``record`` is not a caption record.
    """
    if record.task != "captions":
        raise RecordError(f"record {record.id}: SceneWalk rows hold caption records only, not {record.task!r}")
    meta = record.meta.get("scenewalk", {})
    clip_ids = meta.get("clip_ids") or [f"{record.id}_{q}" for q in range(record.num_queries)]
    durations = meta.get("durations") or [round(s.duration_sec) for s in record.scenes]
    image_turns = meta.get("image_turns") or [True] * record.num_queries
    fps = _plain(record.fps)
    rows = []
    for q, scene in enumerate(record.scenes):
        rows.append(
            {
                "id": clip_ids[q],
                "url": meta.get("url", record.video),
                "time_stamp": {
                    "duration": durations[q],
                    "end_fps": fps,
                    "end_frame": scene.end_frame,
                    "end_time": timecode(scene.end_sec),
                    "start_fps": fps,
                    "start_frame": scene.start_frame,
                    "start_time": timecode(scene.start_sec),
                },
                "v2t_score": None if record.lb_sim is None else list(record.lb_sim[q]),
                "t2t_score": None if record.sen_sim is None else list(record.sen_sim[q]),
                "conversations": _write_turns(record.conversations[2 * q : 2 * q + 2], image_turns[q : q + 1]),
            }
        )
    return rows


def _video_id(clip_ids: Sequence[str], url: str) -> str:
    """``abc`` for clips ``abc_0, abc_1, ...``; else the url's file stem."""
    parts = [clip_id.rpartition("_") for clip_id in clip_ids]
    if all(head and tail.isdigit() for head, _, tail in parts) and len({head for head, _, _ in parts}) == 1:
        return parts[0][0]
    return url.rstrip("/").rpartition("/")[2].rsplit(".", 1)[0] or url


def from_scenewalk_rows(
    rows: Iterable[dict[str, Any]],
    *,
    t2t_threshold: float = DEFAULT_T2T_THRESHOLD,
    v2t_threshold: float = DEFAULT_V2T_THRESHOLD,
) -> list[Record]:
    """Caption records from SceneWalk rows, one per video (rows grouped by ``url``, clips in
    time order; videos in order of first appearance).

    Raises:
        RecordError: a row is malformed or a video's score lists do not cover its clips.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("time_stamp"), dict) or "url" not in row:
            raise RecordError(f"SceneWalk row {i}: needs url and time_stamp")
        groups.setdefault(str(row["url"]), []).append(row)
    records = []
    for url, clips in groups.items():
        clips = sorted(clips, key=lambda r: r["time_stamp"].get("start_frame", 0))
        where = f"SceneWalk video {url}"
        scenes, turns, image_turns = [], [], []
        for i, clip in enumerate(clips):
            stamp = clip["time_stamp"]
            data = {
                "start_frame": stamp.get("start_frame"),
                "end_frame": stamp.get("end_frame"),
                "start_sec": parse_timecode(stamp.get("start_time", "")),
                "end_sec": parse_timecode(stamp.get("end_time", "")),
            }
            scenes.append(Scene.from_dict(data, f"{where} clip {i}"))
            pair, had = _read_turns(clip.get("conversations"), f"{where} clip {i}")
            if [t.speaker for t in pair] != [HUMAN, GPT]:
                raise RecordError(f"{where} clip {i}: needs one human and one gpt turn")
            turns.extend(pair)
            image_turns.extend(had)
        sen_sim = None if any(c.get("t2t_score") is None for c in clips) else [c["t2t_score"] for c in clips]
        lb_sim = None if any(c.get("v2t_score") is None for c in clips) else [c["v2t_score"] for c in clips]
        labels, provenance = _imported(sen_sim, lb_sim, (t2t_threshold, v2t_threshold), "scenewalk")
        clip_ids = [str(c.get("id", "")) for c in clips]
        meta: dict[str, Any] = {
            "url": url,
            "clip_ids": clip_ids,
            "durations": [c["time_stamp"].get("duration") for c in clips],
        }
        if not all(image_turns):
            meta["image_turns"] = image_turns
        record = Record(
            id=_video_id(clip_ids, url),
            video=url,
            task="captions",
            fps=float(clips[0]["time_stamp"].get("start_fps") or 0),
            duration_sec=scenes[-1].end_sec,
            scenes=tuple(scenes),
            conversations=tuple(turns),
            queries=tuple(t.value for t in turns[1::2]),
            sen_sim=None if sen_sim is None else tuple(tuple(float(v) for v in row) for row in sen_sim),
            lb_sim=None if lb_sim is None else tuple(tuple(float(v) for v in row) for row in lb_sim),
            labels=tuple(tuple(row) for row in labels),
            provenance=provenance,
            meta={"scenewalk": meta},
        )
        record.validate(where)
        records.append(record)
    return records


# -- files ---------------------------------------------------------------------------------------

FORMATS = ("salova", "released", "scenewalk")
"""Names of the record formats :func:`convert_file` reads and writes."""
QUOTED_CHARS = 80
"""How much of an unrecognised object an error message quotes."""


def detect_format(obj: Any) -> str:
    """``scenewalk`` (a per-clip row), ``salova`` (a record) or ``released`` (released-code JSON).

    Raises:
        RecordError: none of them.
    """
    if isinstance(obj, dict):
        if "time_stamp" in obj:
            return "scenewalk"
        if "provenance" in obj and "queries" in obj:
            return "salova"
        if "scenes" in obj and "conversations" in obj:
            return "released"
    raise RecordError(f"not a salova record, released-code object or SceneWalk row: {str(obj)[:QUOTED_CHARS]}")


def to_records(objects: Sequence[dict[str, Any]], source: str = "auto", **thresholds: float) -> list[Record]:
    """Records from objects of one format (``auto`` detects it from the first object).

    Raises:
        ConfigError: unknown format name.
        RecordError: an object is malformed or of another format.
    """
    if source == "auto":
        source = detect_format(objects[0]) if objects else "salova"
    if source not in FORMATS:
        raise ConfigError(f"unknown record format {source!r}; choose from {FORMATS}")
    if source == "scenewalk":
        return from_scenewalk_rows(objects, **thresholds)
    if source == "released":
        return [from_released(o, **thresholds) for o in objects]
    return [Record.from_dict(o) for o in objects]


def from_records(records: Sequence[Record], target: str, *, salova_fields: bool = False) -> list[dict[str, Any]]:
    """Objects of format ``target`` for ``records``.

    Raises:
        ConfigError: unknown format name.
        RecordError: SceneWalk rows asked for a question-answer record.
    """
    if target == "scenewalk":
        return [row for record in records for row in to_scenewalk_rows(record)]
    if target == "released":
        return [to_released(record, salova_fields=salova_fields) for record in records]
    if target == "salova":
        return [record.to_dict() for record in records]
    raise ConfigError(f"unknown record format {target!r}; choose from {FORMATS}")


def convert_file(
    source_path: str | Path,
    target_path: str | Path,
    target: str,
    *,
    source: str = "auto",
    salova_fields: bool = False,
    **thresholds: float,
) -> int:
    """Convert a file of records between formats (``salova convert-data``).

    Returns:
        The number of records (videos) converted.

    Raises:
        PathError, RecordError, ConfigError: see :func:`read_objects`, :func:`to_records`,
            :func:`from_records` and :func:`write_objects`.
    """
    records = to_records(read_objects(source_path), source, **thresholds)
    write_objects(target_path, from_records(records, target, salova_fields=salova_fields))
    return len(records)
