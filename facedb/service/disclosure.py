"""What an API key may learn of the gallery's templates.

Templates are biometric data (GDPR Art. 9; ISO/IEC 24745 asks that they cannot be exported
or inverted). Raw similarities to many people are the templates themselves: one-hot probes
through ``/search`` with ``k=4096`` gave back every stored template in six requests, and about
40 strangers' photos through ``/identify`` with raw scores rebuilt each person's template by
least squares. So, below ``admin``:

- ``/search`` (a template in, raw cosines out) is refused: it needs an admin key;
- ``/identify`` (the JSON API and the web page) answers about the faces of the photo: who
  they are, and only the candidates at or above the threshold in force (a look-alike that
  would have been named), at most :data:`READ_K` of them, with similarities rounded to
  :data:`DIGITS` decimals; an unknown face's best similarity is rounded the same way and
  names nobody.

An admin key sees the full answer (any ``k``, every candidate, four decimals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from facedb.errors import Forbidden
from facedb.keys import ApiKey
from facedb.results import Candidate, Identification

__all__ = ["DIGITS", "READ_K", "check_k_for", "disclosed"]

#: The most candidates per face a key below admin may ask for.
READ_K = 5
#: Decimals of a similarity a key below admin is told.
DIGITS = 2


def check_k_for(key: ApiKey | None, k: int) -> None:
    """Raises Forbidden when a key below admin asks for more than :data:`READ_K` candidates."""
    if k > READ_K and (key is None or not key.allows("admin")):
        scope = "no key" if key is None else f"scope {key.scope!r}"
        raise Forbidden(f"k above {READ_K} needs an API key with scope 'admin'; this one has {scope}")


def disclosed(
    key: ApiKey | None, results: Sequence[Identification], threshold: float
) -> list[Identification]:
    """The answer ``key`` may see: all of it for an admin; below, the candidates at or above
    ``threshold`` only, and every similarity rounded to :data:`DIGITS` decimals."""
    if key is not None and key.allows("admin"):
        return list(results)
    return [
        replace(
            r,
            similarity=round(r.similarity, DIGITS),
            candidates=[
                Candidate(c.person, round(c.similarity, DIGITS))
                for c in r.candidates
                if c.similarity >= threshold
            ],
        )
        for r in results
    ]
