"""Shared fakes for retrieval tests: a deterministic bag-of-words encoder and a course-row builder."""

from __future__ import annotations

import hashlib

import numpy as np

from knowledge.encoders import Encoder


class HashingEncoder(Encoder):
    """Bag of hashed words: deterministic, meaningful enough for overlap-based ranking tests."""

    name, dim = "hashing-test", 64

    def _encode(self, texts: list[str], *, query: bool) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.strip(".,").encode()).hexdigest(), 16) % self.dim] += 1.0
        return out + 1e-3


def course(cid: str, title: str, description: str | None, **extra: object) -> dict:
    row = {
        "id": cid,
        "source": "test",
        "title": title,
        "description": description,
        "provider": "P",
        "language": "en",
        "level": "beginner",
        "price": None,
        "free": None,
        "format": "online",
        "raw_skills": [],
        "has_description": description is not None,
    }
    row.update(extra)
    return row
