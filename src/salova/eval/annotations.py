"""Reading benchmark annotation files and finding their videos (shared by the task modules).

Official annotations come as JSON (a list of rows), JSON Lines or Parquet (the Hugging Face
releases that lmms-eval reads). Videos are looked up under the ``--videos`` folder: first at
the paths the benchmark's layout gives, then anywhere below it by file name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from salova.errors import AnnotationError, ConfigError, MissingDependencyError, VideoNotFoundError
from salova.eval.registry import EvalDoc, LoadOptions

__all__ = ["ANNOTATION_SUFFIXES", "read_rows", "field", "VideoFinder", "finish_docs", "require_default_prompt"]

logger = logging.getLogger(__name__)

ANNOTATION_SUFFIXES = (".json", ".jsonl", ".parquet")
"""File types an annotation file may have."""


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as parquet
    except ImportError as exc:
        raise MissingDependencyError(
            f"{path}: reading Parquet annotations needs pyarrow (pip install pyarrow), or give the JSON file"
        ) from exc
    try:
        return parquet.read_table(path).to_pylist()
    except (OSError, ValueError) as exc:
        raise AnnotationError(path, f"unreadable Parquet: {exc}") from exc


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of one annotation file (``.json`` list, ``.jsonl`` or ``.parquet``).

    Raises:
        AnnotationError: the file is missing, of another type or malformed.
        MissingDependencyError: a Parquet file without pyarrow installed.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(path, "annotation file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        rows = _read_parquet(path)
    elif suffix in (".json", ".jsonl"):
        try:
            text = path.read_text(encoding="utf-8")
            if suffix == ".jsonl":
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                rows = json.loads(text)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise AnnotationError(path, f"unreadable JSON: {exc}") from exc
    else:
        raise AnnotationError(path, f"unsupported annotation file type; expected one of {list(ANNOTATION_SUFFIXES)}")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise AnnotationError(path, "expected a list of objects (one per question)")
    if not rows:
        raise AnnotationError(path, "holds no questions")
    return rows


def field(row: dict[str, Any], key: str, path: Path, index: int, kind: type | tuple[type, ...] = str) -> Any:
    """``row[key]``, checked for presence and type.

    Raises:
        AnnotationError: naming the file, the row and the field.
    """
    if key not in row:
        raise AnnotationError(path, f"row {index}: missing field {key!r} (fields: {sorted(row)})")
    value = row[key]
    if not isinstance(value, kind) or (
        isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        raise AnnotationError(path, f"row {index}: field {key!r} has type {type(value).__name__}, expected {kind}")
    return value


class VideoFinder:
    """Locates video files under a folder: at given relative paths first, then by file name.

    The by-name index is built once, on the first miss.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise VideoNotFoundError(self.root, "videos folder not found")
        self._by_name: dict[str, list[Path]] | None = None

    def _index(self) -> dict[str, list[Path]]:
        if self._by_name is None:
            self._by_name = {}
            for path in sorted(self.root.rglob("*")):
                if path.is_file():
                    self._by_name.setdefault(path.name, []).append(path)
        return self._by_name

    def find(self, relative: Iterable[str]) -> Path | None:
        """The first of ``relative`` paths that exists under the root, else a unique file with
        one of their names anywhere below it, else ``None``.

        Raises:
            AnnotationError: a name matches several files below the root (ambiguous).
        """
        names = list(relative)
        for name in names:
            path = self.root / name
            if path.is_file():
                return path
        for name in names:
            matches = self._index().get(Path(name).name, [])
            if len(matches) > 1:
                raise AnnotationError(
                    self.root, f"{Path(name).name} matches {len(matches)} files ({matches[0]}, {matches[1]}...)"
                )
            if matches:
                return matches[0]
        return None


def finish_docs(docs: Sequence[EvalDoc | tuple[str, str]], path: Path, options: LoadOptions) -> list[EvalDoc]:
    """Keep the documents whose video was found; a ``(question_id, wanted)`` entry marks a miss.

    Raises:
        VideoNotFoundError: a video is missing and ``options.skip_missing_videos`` is off.
        AnnotationError: two questions share an id.
    """
    missing = [entry for entry in docs if not isinstance(entry, EvalDoc)]
    if missing and not options.skip_missing_videos:
        question_id, wanted = missing[0]
        raise VideoNotFoundError(
            options.videos / wanted,
            f"video of question {question_id} not found under {options.videos} "
            f"({len(missing)} of {len(docs)} questions lack their video; --skip-missing-videos drops them)",
        )
    if missing:
        logger.warning("%s: skipped %d of %d questions whose video is missing", path, len(missing), len(docs))
    kept = [doc for doc in docs if isinstance(doc, EvalDoc)]
    seen: set[str] = set()
    for doc in kept:
        if doc.question_id in seen:
            raise AnnotationError(path, f"question id {doc.question_id!r} appears twice")
        seen.add(doc.question_id)
    return kept


def require_default_prompt(options: LoadOptions, benchmark: str) -> None:
    """Benchmarks whose lmms-eval task lists no per-model prompt accept only ``default``.

    Raises:
        ConfigError: another prompt variant was asked for.
    """
    if options.prompt_variant != "default":
        raise ConfigError(
            f"{benchmark} has only lmms-eval's default prompt, got prompt variant {options.prompt_variant!r}"
        )
