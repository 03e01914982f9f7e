"""salova — Segment-Augmented Long Video Assistant.

A long video is cut into scenes once; each scene becomes one routing token plus a fixed
set of latent tokens; a router picks the scenes that matter for a question and the
language model reads those in detail.
"""

__version__ = "0.1.0"

from salova.errors import SalovaError  # noqa: E402

__all__ = ["SalovaError", "__version__"]
