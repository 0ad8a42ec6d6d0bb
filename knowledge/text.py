"""Text normalization shared by exact and fuzzy lookup: one function, so index and query agree."""

from __future__ import annotations

import re
import unicodedata

_GENDER = re.compile(
    r"\((?:m|w|d|f|x|gn)(?:\s*/\s*(?:m|w|d|f|x|gn))+\)"  # (m/w/d)
    r"|(?<=\w)(?:/-?|:|\*|_)innen\b"  # Lehrer/innen, Lehrer:innen
    r"|(?<=\w)(?:/-?|:|\*|_)in\b"  # Pfleger/in, Pfleger:in, Pfleger*in
    r"|(?<=\w)\(in\)|(?<=\w)\(innen\)"  # Pfleger(in)
    r"|(?<=\w)/-?frau\b|(?<=\w)/-?mann\b"  # Kaufmann/-frau
    r"|(?<=\w)/-?r\b",  # Abgeordnete/r, technische/r
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[^\w+#]+")  # keep c++, c#


def normalize(text: str) -> str:
    """Lower-case, NFKC, German gender suffixes removed, punctuation collapsed to single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _GENDER.sub("", text)
    text = _NON_WORD.sub(" ", text.replace("_", " "))
    return " ".join(text.split())


def gender_forms(label: str) -> list[str]:
    """Split ESCO's German ``Maskulinum/Femininum`` labels into their forms ("Pfleger/Pflegerin")."""
    if "/" not in label:
        return []
    parts = [p.strip() for p in label.split("/")]
    if len(parts) != 2 or min(len(p) for p in parts) < 4 or not all(p[:1].isupper() for p in parts):
        return []
    return parts
