"""How people read sample keys: numbers inside a key compare as numbers (ML9 before ML10, 186 before 1145)."""
from __future__ import annotations

import re

_PARTS = re.compile(r"(\d+)")


def natural_key(key: object) -> tuple:
    """A sort key for text with numbers in it; case is ignored, ties keep a stable order by the text itself."""
    text = "" if key is None else str(key)
    parts = tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold()) for part in _PARTS.split(text) if part)
    return (parts, text)


def natural_sorted(keys, *, key=None) -> list:
    """keys sorted naturally; key= picks the text from each element, as in sorted()."""
    return sorted(keys, key=(lambda item: natural_key(key(item))) if key else natural_key)
