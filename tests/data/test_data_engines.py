"""Engines: worker processes and Ray Data write exactly what the in-process build writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from salova.data import build_dataset
from salova.data.engines import build_engine
from salova.errors import ConfigError


def output_files(folder: Path) -> dict[Path, bytes]:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}


def test_local_worker_processes_match_the_in_process_build(tmp_path, videos_dir, build_config, reference_build):
    summary = build_dataset(videos_dir, tmp_path / "out", build_config, workers=2)
    assert (summary.built, summary.failed) == (4, {})
    assert output_files(tmp_path / "out") == output_files(reference_build)


@pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")
def test_ray_engine_matches_the_default_engine(tmp_path, videos_dir, build_config, reference_build):
    ray = pytest.importorskip("ray")
    try:
        summary = build_dataset(videos_dir, tmp_path / "out", build_config, engine="ray", workers=2)
        assert not ray.is_initialized()  # the local Ray started for the build is shut down again
    finally:
        ray.shutdown()
    assert (summary.built, summary.failed) == (4, {})
    assert output_files(tmp_path / "out") == output_files(reference_build)


def test_engine_choices_are_checked():
    with pytest.raises(ConfigError, match=r"unknown engine 'spark'; choose from \['local', 'ray'\]"):
        build_engine("spark")
    with pytest.raises(ConfigError, match="a Ray address needs --engine ray"):
        build_engine("local", address="ray://head:10001")
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        build_engine("ray", workers=0)
