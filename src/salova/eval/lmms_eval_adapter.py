"""SALOVA as an lmms-eval model: ``lmms-eval --model salova --model_args pretrained=CHECKPOINT``.

lmms-eval 0.7.3 finds models through its registry (``lmms_eval.models.MODEL_REGISTRY_V2``), which
loads ``ModelManifest`` objects from the Python entry-point group ``lmms_eval.models``. salova
declares::

    [project.entry-points."lmms_eval.models"]
    salova = "salova.eval.lmms_eval_adapter:lmms_eval_manifest"

so an installed salova makes ``--model salova`` resolve to :class:`SalovaLMMS`. Without the
entry point (for example in a source tree that was not reinstalled), :func:`register` does the
same in the running process.

:class:`SalovaLMMS` answers ``generate_until`` requests through the same evaluation model as
``salova eval`` (:class:`~salova.eval.adapters.AssistantEvalModel`): lmms-eval builds the prompt
and scores the answer; each video is indexed once through the assistant's feature cache; the
router reads the document's ``question`` field (its first line) rather than lmms-eval's full
prompt. ``model_args``: ``pretrained`` (a checkpoint folder, ``salova``, ``tiny`` or
``text-rag``), ``top_k``, ``cache_dir``, ``router_query`` (``question`` or ``prompt``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from salova.errors import ConfigError, EvalError, MissingDependencyError

try:
    from lmms_eval.api.model import lmms
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "the lmms-eval adapter needs lmms-eval 0.7.3: pip install --no-deps lmms-eval==0.7.3 (see docs/evaluation.md)"
    ) from exc

from salova.eval.adapters import ModelVariant, assistant_eval_model

__all__ = ["MODEL_ID", "CLASS_PATH", "SalovaLMMS", "lmms_eval_manifest", "register"]

logger = logging.getLogger(__name__)

MODEL_ID = "salova"
"""The name lmms-eval knows the model by (``--model salova``)."""
CLASS_PATH = "salova.eval.lmms_eval_adapter.SalovaLMMS"
ROUTER_QUERIES = ("question", "prompt")
DEFAULT_MAX_NEW_TOKENS = 64
"""Used when a task's ``generation_kwargs`` give no ``max_new_tokens``."""


class SalovaLMMS(lmms):
    """lmms-eval's ``lmms`` interface over a SALOVA checkpoint (or the assistant's other pipelines).

    Args:
        pretrained: a checkpoint folder, ``salova`` (the shipped checkpoint), ``tiny`` or ``text-rag``.
        top_k: segments read per answer (the assistant's default when omitted).
        cache_dir: the assistant's feature cache folder.
        router_query: ``question`` (the document's question field, when it has one) or ``prompt``.
        batch_size, max_batch_size, device: passed by lmms-eval; questions are answered one at a time on CPU.
    """

    is_simple = True

    def __init__(
        self,
        pretrained: str = "salova",
        top_k: int | None = None,
        cache_dir: str | None = None,
        router_query: str = "question",
        batch_size: int | str = 1,
        max_batch_size: int | None = None,
        device: str | None = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        if router_query not in ROUTER_QUERIES:
            raise ConfigError(f"router_query must be one of {ROUTER_QUERIES}, got {router_query!r}")
        if unused:
            logger.warning("SalovaLMMS ignores model_args %s", sorted(unused))
        variant = ModelVariant(top_k=None if top_k in (None, "") else int(top_k))
        self.model = assistant_eval_model(pretrained, variant=variant, cache_dir=cache_dir)
        self.router_query = router_query

    def _query(self, doc: Any, context: str) -> str:
        if self.router_query == "question" and isinstance(doc, dict) and isinstance(doc.get("question"), str):
            return doc["question"].split("\n")[0]
        return context

    def generate_until(self, requests) -> list[str]:
        """Answer each request: ``(context, generation_kwargs, doc_to_visual, doc_id, task, split)``."""
        responses = []
        for request in requests:
            context, generation_kwargs, doc_to_visual, doc_id, task, split = request.args
            doc = self.task_dict[task][split][doc_id]
            visuals = doc_to_visual(doc)
            if len(visuals) != 1 or not isinstance(visuals[0], str | Path) or not Path(visuals[0]).is_file():
                raise EvalError(f"{task} document {doc_id}: SALOVA reads one video file per question, got {visuals!r}")
            kwargs = dict(generation_kwargs or {})
            response = self.model.answer(
                Path(visuals[0]),
                context,
                query=self._query(doc, context),
                max_new_tokens=int(kwargs.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)),
            )
            text = response.text
            for stop in kwargs.get("until") or ():
                if stop and stop in text:
                    text = text.split(stop)[0]
            responses.append(text)
        return responses

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        raise NotImplementedError("SALOVA answers by generation; lmms-eval loglikelihood tasks are not supported")

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("multi-round generation is not supported by the SALOVA adapter")


def lmms_eval_manifest():
    """The ``ModelManifest`` of the ``lmms_eval.models`` entry point."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path=CLASS_PATH)


def register() -> None:
    """Register ``salova`` in lmms-eval's model registry of this process (what the entry point does
    for an installed salova)."""
    from lmms_eval.models import MODEL_REGISTRY_V2

    MODEL_REGISTRY_V2.register_manifest(lmms_eval_manifest(), overwrite=True)
