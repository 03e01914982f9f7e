"""Helpers of the evaluation tests: lmms-eval's own task code, loaded from its installed files.

lmms-eval's task modules import heavy packages at module level (its ``tasks`` package builds the
whole task index on import), so single files are loaded by path without importing the package:
:func:`lmms_eval_module` for files whose imports are available here, :func:`lmms_eval_function`
for one function of a file whose module-level imports are not (LongVideoBench's imports decord).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import types
from pathlib import Path

import pytest

LMMS_EVAL_VERSION = "0.7.3"
FIXTURES = Path(__file__).parent / "fixtures"
"""Small annotation files in each benchmark's official format (see fixtures/README.md)."""


def lmms_eval_root() -> Path:
    spec = importlib.util.find_spec("lmms_eval")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lmms-eval is not installed (pip install --no-deps lmms-eval==0.7.3)")
    root = Path(next(iter(spec.submodule_search_locations)))
    from importlib.metadata import version

    if version("lmms_eval") != LMMS_EVAL_VERSION:
        pytest.skip(f"these agreement tests pin lmms-eval {LMMS_EVAL_VERSION}, found {version('lmms_eval')}")
    return root


def lmms_eval_module(relative: str, name: str | None = None) -> types.ModuleType:
    """Execute one lmms-eval source file (e.g. ``tasks/mvbench/utils.py``) as a stand-alone module."""
    path = lmms_eval_root() / relative
    module_name = name or "lmms_eval_file_" + re.sub(r"\W", "_", relative)
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lmms_eval_function(relative: str, function: str, namespace: dict) -> types.FunctionType:
    """Compile one top-level function of an lmms-eval source file into ``namespace``."""
    path = lmms_eval_root() / relative
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function]
    assert nodes, f"{function} not found in {path}"
    code = compile(ast.Module(body=nodes, type_ignores=[]), str(path), "exec")
    exec(code, namespace)
    return namespace[function]


def task_kwargs(yaml_kwargs: dict, model_name: str = "salova") -> dict:
    """``lmms_eval_specific_kwargs`` as lmms-eval's ``Task`` resolves them for ``model_name``
    (lmms_eval/api/task.py: the model's own entry, else the whole dict updated with ``default``)."""
    if model_name in yaml_kwargs:
        return dict(yaml_kwargs[model_name])
    resolved = dict(yaml_kwargs)
    resolved.update(yaml_kwargs.get("default", {}))
    return resolved
