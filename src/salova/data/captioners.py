"""Dense segment captioners behind one interface (paper, section 3.2).

Every captioner turns the segments of one video into one caption each, given the
instruction drawn for each segment (:mod:`salova.data.instructions`):

- ``synthetic``: the synthetic world's true captions, read from the video's sidecar; each
  detected segment takes the caption of the true scene it overlaps the most.
- ``hf``: a local Hugging Face vision-language model folder (``AutoProcessor`` +
  ``AutoModelForImageTextToText``), a few frames of the segment as images in one user turn,
  greedy decoding.
- ``openai``: any OpenAI-compatible chat-completions endpoint serving a vision-language
  model (vLLM, SGLang, ...); frames go as base64 JPEG data URLs in the standard vision
  message format, with a concurrency limit, a per-request timeout and retries with
  exponential backoff.

Pick one by name with :func:`build_captioner`; :data:`CAPTIONERS` lists them.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from salova.data.sources import VideoInput, load_model_folder, load_sidecar, pick_frames, true_scene_index
from salova.errors import CaptionerError, ConfigError
from salova.video import Segment

__all__ = [
    "CaptionerConfig",
    "Captioner",
    "SyntheticCaptioner",
    "HFCaptioner",
    "OpenAICaptioner",
    "CAPTIONERS",
    "build_captioner",
]

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 425, 429})
"""Client-side statuses worth retrying (besides every 5xx): timeouts, conflicts, rate limits."""
ERROR_BODY_CHARS = 300
"""How much of an error response's body an error message quotes."""


@dataclass(frozen=True)
class CaptionerConfig:
    """Which captioner to use and how it talks to its model."""

    name: str = "synthetic"
    """One of :data:`CAPTIONERS`."""
    model: str | None = None
    """``hf``: the local model folder; ``openai``: the model name the server serves."""
    base_url: str | None = None
    """``openai``: the API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is added)."""
    api_key: str | None = field(default=None, repr=False, compare=False)
    """``openai``: bearer token. Never written to a manifest or record; the command line reads
    it from the environment variable named by ``--api-key-env``."""
    frames_per_segment: int = 4
    """Frames of a segment shown to the model, spread evenly over it (0 = all sampled frames)."""
    max_new_tokens: int = 256
    """Longest caption in tokens (SceneWalk captions average 137.5 words)."""
    temperature: float = 0.0
    """``openai`` sampling temperature; 0 asks for greedy decoding (``hf`` always decodes greedily)."""
    device: str = "cpu"
    """``hf``: torch device of the model."""
    timeout_sec: float = 120.0
    """``openai``: per-request timeout (connect, read and write each)."""
    max_retries: int = 4
    """``openai``: retries after a timeout, a connection error, a 5xx or a 408/409/425/429."""
    backoff_sec: float = 1.0
    """``openai``: wait before the first retry; doubled after each further failure."""
    max_backoff_sec: float = 30.0
    """``openai``: longest wait between two attempts (also caps a server's ``Retry-After``)."""
    concurrency: int = 4
    """``openai``: requests in flight at once per worker process."""
    jpeg_quality: int = 90
    """``openai``: JPEG quality of the frames sent."""

    def __post_init__(self) -> None:
        if self.name not in CAPTIONERS:
            raise ConfigError(f"unknown captioner {self.name!r}; choose from {sorted(CAPTIONERS)}")
        if self.name in ("hf", "openai") and not self.model:
            hint = "a local model folder" if self.name == "hf" else "the served model's name"
            raise ConfigError(f"captioner {self.name!r} needs a model ({hint})")
        if self.name == "openai" and not self.base_url:
            raise ConfigError("captioner 'openai' needs base_url, e.g. http://127.0.0.1:8000/v1")
        checks = {
            "frames_per_segment": self.frames_per_segment >= 0,
            "max_new_tokens": self.max_new_tokens >= 1,
            "temperature": self.temperature >= 0,
            "timeout_sec": self.timeout_sec > 0,
            "max_retries": self.max_retries >= 0,
            "backoff_sec": self.backoff_sec >= 0,
            "max_backoff_sec": self.max_backoff_sec >= self.backoff_sec,
            "concurrency": self.concurrency >= 1,
            "jpeg_quality": 1 <= self.jpeg_quality <= 100,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"CaptionerConfig.{name} is out of range: {getattr(self, name)!r}")

    def settings(self) -> dict[str, Any]:
        """The fields that change what the captioner writes (no secrets, no timing knobs)."""
        keep = {"name": self.name}
        if self.name in ("hf", "openai"):
            keep.update(
                model=self.model, frames_per_segment=self.frames_per_segment, max_new_tokens=self.max_new_tokens
            )
        if self.name == "hf":
            keep["device"] = self.device
        if self.name == "openai":
            keep.update(base_url=self.base_url, temperature=self.temperature, jpeg_quality=self.jpeg_quality)
        return keep


class Captioner(ABC):
    """Turns the segments of one video into one caption per segment."""

    needs_frames: ClassVar[bool] = True
    """Whether :meth:`caption` reads the segments' frames (the ingest keeps them only if so)."""

    def __init__(self, config: CaptionerConfig):
        self.config = config

    @abstractmethod
    def caption(self, video: VideoInput, segments: Sequence[Segment], instructions: Sequence[str]) -> list[str]:
        """Caption every segment.

        Args:
            video: the video the segments come from.
            segments: its segments, in order (with frames when :attr:`needs_frames`).
            instructions: one captioning instruction per segment.

        Returns:
            One non-empty caption per segment, in order.

        Raises:
            CaptionerError: a caption could not be made.
        """

    def describe(self) -> str:
        """Provenance string of this captioner, e.g. ``hf:/models/vlm``."""
        return self.config.name

    def close(self) -> None:  # noqa: B027 - optional hook; most captioners hold nothing to release
        """Release connections and models."""


class SyntheticCaptioner(Captioner):
    """The true captions of a synthetic video, from its sidecar (no model involved)."""

    needs_frames = False

    def caption(self, video: VideoInput, segments: Sequence[Segment], instructions: Sequence[str]) -> list[str]:
        sidecar = load_sidecar(video)
        if sidecar is None:
            raise CaptionerError(
                f"{video.path}: the synthetic captioner needs the sidecar {video.path.with_suffix('.json').name} "
                "beside the video (written by `salova synth`)"
            )
        return [sidecar.scenes[true_scene_index(sidecar.scenes, s.start_sec, s.end_sec)].caption for s in segments]


def _segment_frames(video: VideoInput, segment: Segment, count: int) -> np.ndarray:
    if segment.frames is None or not len(segment.frames):
        raise CaptionerError(f"{video.id}: segment {segment.index} has no frames to caption")
    return pick_frames(segment.frames, count)


class HFCaptioner(Captioner):
    """A local vision-language model folder run with ``transformers``."""

    def __init__(self, config: CaptionerConfig):
        super().__init__(config)
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self._torch = torch
        self.processor, self.model = load_model_folder(
            config.model, "captioning model", AutoProcessor, AutoModelForImageTextToText
        )
        self.model.to(config.device).eval()
        self.path = Path(config.model).resolve()

    def describe(self) -> str:
        return f"hf:{self.path}"

    def caption(self, video: VideoInput, segments: Sequence[Segment], instructions: Sequence[str]) -> list[str]:
        from PIL import Image

        captions = []
        for segment, instruction in zip(segments, instructions, strict=True):
            frames = _segment_frames(video, segment, self.config.frames_per_segment)
            content = [{"type": "image", "image": Image.fromarray(frame)} for frame in frames]
            messages = [{"role": "user", "content": [*content, {"type": "text", "text": instruction}]}]
            inputs = self.processor.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
            ).to(self.config.device)
            with self._torch.inference_mode():
                output = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False)
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            text = self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
            if not text:
                raise CaptionerError(f"{self.describe()}: empty caption for segment {segment.index} of {video.id}")
            captions.append(text)
        return captions


def jpeg_data_url(frame: np.ndarray, quality: int) -> str:
    """A ``data:image/jpeg;base64,...`` URL of an RGB ``uint8`` frame."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class OpenAICaptioner(Captioner):
    """A remote vision-language model behind an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, config: CaptionerConfig):
        super().__init__(config)
        import httpx

        self._httpx = httpx
        self.endpoint = config.base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self.client = httpx.Client(
            timeout=httpx.Timeout(config.timeout_sec),
            headers=headers,
            limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
        )

    def describe(self) -> str:
        return f"openai:{self.config.model}@{self.config.base_url}"

    def close(self) -> None:
        self.client.close()

    def payload(self, frames: np.ndarray, instruction: str) -> dict[str, Any]:
        """The request body for one segment: its frames as images, then the instruction."""
        images = [
            {"type": "image_url", "image_url": {"url": jpeg_data_url(frame, self.config.jpeg_quality)}}
            for frame in frames
        ]
        return {
            "model": self.config.model,
            "messages": [{"role": "user", "content": [*images, {"type": "text", "text": instruction}]}],
            "max_tokens": self.config.max_new_tokens,
            "temperature": self.config.temperature,
        }

    def caption(self, video: VideoInput, segments: Sequence[Segment], instructions: Sequence[str]) -> list[str]:
        payloads = [
            self.payload(_segment_frames(video, segment, self.config.frames_per_segment), instruction)
            for segment, instruction in zip(segments, instructions, strict=True)
        ]
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(payloads)) or 1) as pool:
            return list(pool.map(self.complete, payloads))

    def complete(self, payload: dict[str, Any]) -> str:
        """POST one request, retrying transient failures; return the reply's text.

        Raises:
            CaptionerError: a non-retryable status, a malformed reply, or every attempt failed.
        """
        config, httpx = self.config, self._httpx
        last, status = "no attempt made", None
        for attempt in range(config.max_retries + 1):
            wait = min(config.backoff_sec * 2**attempt, config.max_backoff_sec)
            try:
                response = self.client.post(self.endpoint, json=payload)
            except httpx.TimeoutException:
                last = f"no reply within {config.timeout_sec:g} s"
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__}: {exc})"
            else:
                status = response.status_code
                if status == 200:
                    return self._reply_text(response)
                last = f"HTTP {status}: {response.text[:ERROR_BODY_CHARS]}"
                if status < 500 and status not in RETRY_STATUSES:
                    raise CaptionerError(f"{self.endpoint}: {last}", endpoint=self.endpoint, status=status)
                wait = min(max(wait, _retry_after(response)), config.max_backoff_sec)
            if attempt < config.max_retries:
                logger.warning(
                    "%s: %s; retry %d of %d in %.2g s", self.endpoint, last, attempt + 1, config.max_retries, wait
                )
                time.sleep(wait)
        raise CaptionerError(
            f"{self.endpoint}: gave up after {config.max_retries + 1} attempts; last: {last}",
            endpoint=self.endpoint,
            status=status,
        )

    def _reply_text(self, response) -> str:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise CaptionerError(
                f"{self.endpoint}: malformed chat-completions reply: {response.text[:ERROR_BODY_CHARS]}",
                endpoint=self.endpoint,
                status=response.status_code,
            ) from exc
        if isinstance(content, list):  # content parts
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        text = content.strip() if isinstance(content, str) else ""
        if not text:
            raise CaptionerError(f"{self.endpoint}: the reply holds no text", endpoint=self.endpoint, status=200)
        return text


def _retry_after(response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", 0)))
    except ValueError:  # an HTTP date: fall back to our own backoff
        return 0.0


CAPTIONERS: dict[str, type[Captioner]] = {
    "synthetic": SyntheticCaptioner,
    "hf": HFCaptioner,
    "openai": OpenAICaptioner,
}
"""Captioner name -> class."""


def build_captioner(config: CaptionerConfig) -> Captioner:
    """The captioner that ``config`` names, ready to caption.

    Raises:
        ConfigError: the name is unknown.
        ModelFolderError: ``hf`` cannot load its model folder.

    Example:
        >>> build_captioner(CaptionerConfig("synthetic")).describe()
        'synthetic'
    """
    if config.name not in CAPTIONERS:
        raise ConfigError(f"unknown captioner {config.name!r}; choose from {sorted(CAPTIONERS)}")
    return CAPTIONERS[config.name](config)
