"""``tokens``: documents + tokenizer → packed fixed-length token sequences for pretraining.

Documents are streamed, split into train/validation by a hash of seed and document id, encoded in
batches with ``tokenizers``' Rust ``encode_batch_fast`` (threads, no offsets), each followed by EOS
(and optionally preceded by BOS), concatenated per split and cut into ``seq_len`` sequences written to
``uint16``/``uint32`` shards as they fill (format and reader: :mod:`gristmill.lib.tokens`).

Throughput: encoding runs in a worker thread (the Rust call releases the GIL and fans out over all
cores) while the stage thread reads and parses the next batch of documents and packs/writes the
previous one, so reading, packing and writing overlap the encoder instead of adding to it. EOS/BOS are
added by a ``TemplateProcessing`` post-processor inside the Rust call, and ``encode_batch_fast`` skips
offset bookkeeping, which offsets most of the remaining Python-side work (see ``benchmarks/tokens.py``).

Special-token strings inside document text (``<|im_end|>`` in a scraped page) are encoded as plain
text by default (``parse_special_tokens: false``), so the only EOS/BOS ids in the stream are the
document separators the stage adds.
"""

import hashlib
import itertools
import json
import logging
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from gristmill import (
    Artifact,
    CheckOutcome,
    CheckSpec,
    Markdown,
    StageConfig,
    StageContext,
    StageResult,
    StageSpec,
    Table,
    hookimpl,
)
from gristmill.errors import StageInputError
from gristmill.lib.documents import iter_documents, require_documents
from gristmill.lib.plots import figure_markdown, small_figure

log = logging.getLogger("gristmill.lib.tokens")

HIST_BINS_PER_OCTAVE = 4
HIST_BINS = HIST_BINS_PER_OCTAVE * 33  # document lengths up to 2**33 tokens
IN_FLIGHT = 2  # batches encoding or queued in the worker thread while this thread packs the previous one


class TokensConfig(StageConfig):
    """Options of the ``tokens`` stage."""

    seq_len: int = Field(256, ge=2, description="Tokens per packed sequence (the pretraining context length).")
    batch_size: int = Field(
        1024, ge=1, description="Documents per encode_batch call (each call is parallelized over all cores in Rust)."
    )
    add_bos: bool = Field(
        False, description="Put the tokenizer's BOS token before every document (EOS always follows)."
    )
    eos_token: str | None = Field(
        None, description="End-of-document token; None: eos_token from the tokenizer's tokenizer_config.json."
    )
    bos_token: str | None = Field(
        None, description="Beginning-of-document token for add_bos; None: bos_token from tokenizer_config.json."
    )
    remainder: Literal["drop", "pad"] = Field(
        "drop",
        description="The last partial sequence of each split: drop its tokens, or pad it to seq_len with the "
        "tokenizer's pad token.",
    )
    validation_fraction: float = Field(
        0.01, ge=0.0, lt=1.0, description="Share of documents (hash of seed and document id) in the validation split."
    )
    seed: int | None = Field(None, description="Seed of the train/validation split; None: the pipeline/instance seed.")
    shard_sequences: int = Field(
        65_536, ge=1, description="Sequences per shard file (65 536 × 256 uint16 tokens = 32 MiB)."
    )
    max_documents: int | None = Field(None, ge=1, description="Read at most this many documents; None: all.")
    parse_special_tokens: bool = Field(
        False,
        description="Map special-token strings found in document text (e.g. <|im_end|>) to their special ids; "
        "false: encode them as ordinary text, so EOS/BOS ids only mark document boundaries.",
    )
    max_waste_fraction: float = Field(
        0.01, ge=0.0, le=1.0, description="Check (warning): dropped + padding tokens ≤ this share of all tokens."
    )


# --------------------------------------------------------------------------------------------------
# Loading the tokenizer


class TokenizerArtifactError(StageInputError):
    """A ``tokenizer`` input that cannot be used; the message names the artifact."""


def _special_token(value: Any) -> str | None:
    if isinstance(value, dict):  # older transformers: {"content": ..., "lstrip": ...}
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def load_tokenizer(art: Artifact) -> tuple[Any, dict[str, str | None]]:
    """``tokenizers.Tokenizer`` from the artifact's ``tokenizer.json`` and its bos/eos/pad token strings
    (from ``tokenizer_config.json`` when present). Validates before handing the file to the Rust loader."""
    from tokenizers import Tokenizer

    name = art.describe()
    path = art.path / "tokenizer.json"
    if not path.is_file():
        raise TokenizerArtifactError(f"tokens: input {name} has no tokenizer.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerArtifactError(
            f"tokens: corrupt tokenizer.json in input {name}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise TokenizerArtifactError(f"tokens: corrupt tokenizer.json in input {name}: no 'model' object")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - the Rust loader raises plain Exception subclasses
        raise TokenizerArtifactError(f"tokens: tokenizer.json in input {name} does not load: {exc}") from exc
    specials: dict[str, str | None] = {"bos_token": None, "eos_token": None, "pad_token": None}
    cfg_path = art.path / "tokenizer_config.json"
    if cfg_path.is_file():
        try:
            cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TokenizerArtifactError(f"tokens: corrupt tokenizer_config.json in input {name}: {exc}") from exc
        for key in specials:
            specials[key] = _special_token(cfg.get(key)) if isinstance(cfg, dict) else None
    return tok, specials


def _sha256(path: Any) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _token_id(tok: Any, token: str | None, what: str, name: str) -> int | None:
    if token is None:
        return None
    tid = tok.token_to_id(token)
    if tid is None:
        raise TokenizerArtifactError(f"tokens: {what} {token!r} is not in the vocabulary of input {name}")
    return tid


# --------------------------------------------------------------------------------------------------
# Streaming encode → pack


def split_bucket(doc_id: str, seed: int) -> float:
    """A uniform number in [0, 1) from seed and document id (stable across runs and machines)."""
    digest = hashlib.blake2b(f"tokens:{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class _Batch:
    texts: list[str] = field(default_factory=list)
    validation: list[bool] = field(default_factory=list)
    nbytes: list[int] = field(default_factory=list)


def _read_batches(source: Artifact, config: TokensConfig, seed: int) -> Iterator[_Batch]:
    batch = _Batch()
    frac = config.validation_fraction
    for index, doc in enumerate(iter_documents(source)):
        if config.max_documents is not None and index >= config.max_documents:
            break
        text = doc["text"]
        ident = doc.get("id")
        doc_id = str(ident) if ident is not None and ident != "" else f"#{index}"
        batch.texts.append(text)
        batch.validation.append(frac > 0 and split_bucket(doc_id, seed) < frac)
        batch.nbytes.append(len(text) if text.isascii() else len(text.encode("utf-8")))
        if len(batch.texts) >= config.batch_size:
            yield batch
            batch = _Batch()
    if batch.texts:
        yield batch


def _encode(tok: Any, texts: list[str]) -> list[Any]:
    """Runs in the worker thread: the Rust call releases the GIL for the whole encode."""
    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return encode(texts, add_special_tokens=True)


class _LengthHistogram:
    """Document lengths (tokens) in log2 bins with fixed edges: constant memory for any corpus."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.counts = np.zeros(HIST_BINS, dtype=np.int64)
        self.total = 0
        self.max = 0
        self.min: int | None = None

    def add(self, lengths: Any) -> None:
        np = self.np
        arr = np.asarray(lengths, dtype=np.int64)
        if not arr.size:
            return
        bins = np.floor(np.log2(np.maximum(arr, 1)) * HIST_BINS_PER_OCTAVE).astype(np.int64)
        self.counts += np.bincount(np.minimum(bins, HIST_BINS - 1), minlength=HIST_BINS)
        self.total += int(arr.size)
        self.max = max(self.max, int(arr.max()))
        self.min = int(arr.min()) if self.min is None else min(self.min, int(arr.min()))

    def quantile(self, q: float) -> float:
        """Approximate quantile (lower bin edge)."""
        if not self.total:
            return 0.0
        k = int(self.np.searchsorted(self.np.cumsum(self.counts), q * self.total, side="left"))
        return float(2 ** (k / HIST_BINS_PER_OCTAVE))

    def plot(self) -> Markdown:
        if not self.total:
            return Markdown("_No documents._")
        np = self.np
        nz = np.nonzero(self.counts)[0]
        lo, hi = int(nz[0]), int(nz[-1]) + 1
        edges = 2 ** (np.arange(lo, hi + 1) / HIST_BINS_PER_OCTAVE)
        fig, ax = small_figure()
        ax.stairs(self.counts[lo:hi], edges, fill=True, color="#4c72b0")
        ax.set_xscale("log")
        ax.set_xlabel("tokens per document (incl. EOS/BOS)")
        ax.set_ylabel("documents")
        ax.set_title(f"Document lengths (n={self.total})", fontsize=10)
        return figure_markdown(fig, "document lengths in tokens")


def _pack(writer: Any, batch: _Batch, encodings: list[Any], hist: _LengthHistogram) -> int:
    """Append one encoded batch to the writer, per split; returns its token count."""
    import numpy as np

    ids = [e.ids for e in encodings]
    lengths = [len(x) for x in ids]
    hist.add(lengths)
    for split, want in (("train", False), ("validation", True)):
        picked = [i for i, v in enumerate(batch.validation) if v is want]
        if not picked:
            continue
        if len(picked) == len(ids):
            rows, nbytes = ids, sum(batch.nbytes)
        else:
            rows, nbytes = [ids[i] for i in picked], sum(batch.nbytes[i] for i in picked)
        total = sum(lengths[i] for i in picked)
        flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=writer.dtype, count=total)
        writer.add(split, flat, documents=len(picked), nbytes=nbytes)
    return sum(lengths)


def encode_documents(
    ctx: StageContext,
    config: TokensConfig,
    source: Artifact,
    tok: Any,
    writer: Any,
    seed: int,
) -> _LengthHistogram:
    """Stream documents → encode (worker thread) → pack/write (this thread).

    The worker thread only runs the Rust encoder (GIL released), so the encoder stays busy on all cores
    while this thread parses the next batch and turns the finished one into ids and shards. At most
    ``IN_FLIGHT`` batches wait or run in the worker (bounded memory).
    """
    hist = _LengthHistogram()
    in_flight: deque[tuple[_Batch, Future[list[Any]]]] = deque()
    docs = tokens = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gristmill-tokens") as pool:

        def drain(keep: int) -> None:
            nonlocal docs, tokens
            while len(in_flight) > keep:
                batch, future = in_flight.popleft()
                tokens += _pack(writer, batch, future.result(), hist)
                docs += len(batch.texts)
                ctx.progress(docs, None, f"documents, {tokens} tokens")

        try:
            for batch in _read_batches(source, config, seed):
                in_flight.append((batch, pool.submit(_encode, tok, batch.texts)))
                drain(keep=IN_FLIGHT)  # pack the oldest batch while the newer ones encode
            drain(keep=0)
        finally:
            for _, future in in_flight:
                future.cancel()
    return hist


# --------------------------------------------------------------------------------------------------
# The stage


def run_tokens(ctx: StageContext, config: TokensConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Encode documents with the tokenizer and pack them (EOS after each) into fixed-length sequences in
    uint16/uint32 shards, with a deterministic train/validation split by document."""
    from tokenizers.processors import TemplateProcessing

    from gristmill.lib.tokens import TokensWriter

    source, tok_art = inputs["documents"], inputs["tokenizer"]
    tok, specials = load_tokenizer(tok_art)
    name = tok_art.describe()
    eos_token = config.eos_token or specials["eos_token"]
    if eos_token is None:
        raise TokenizerArtifactError(f"tokens: input {name} defines no eos_token; set eos_token in the config")
    bos_token = (config.bos_token or specials["bos_token"]) if config.add_bos else None
    if config.add_bos and bos_token is None:
        raise TokenizerArtifactError(f"tokens: add_bos needs a bos_token; input {name} defines none")
    eos_id = _token_id(tok, eos_token, "eos_token", name)
    bos_id = _token_id(tok, bos_token, "bos_token", name)
    pad_id = _token_id(tok, specials["pad_token"], "pad_token", name)
    if config.remainder == "pad" and pad_id is None:
        raise TokenizerArtifactError(f"tokens: remainder='pad' needs a pad_token; input {name} defines none")
    require_documents(source, "tokens")

    template = f"{bos_token} $A {eos_token}" if bos_id is not None else f"$A {eos_token}"
    pairs = [(eos_token, eos_id)] + ([(bos_token, bos_id)] if bos_id is not None else [])
    tok.post_processor = TemplateProcessing(single=template, special_tokens=pairs)
    tok.no_truncation()
    tok.no_padding()
    tok.encode_special_tokens = not config.parse_special_tokens

    seed = ctx.seed if config.seed is None else config.seed
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    writer = TokensWriter(
        ctx.output_dir,
        seq_len=config.seq_len,
        vocab_size=vocab_size,
        eos_id=eos_id,
        pad_id=pad_id,
        bos_id=bos_id,
        remainder=config.remainder,
        shard_sequences=config.shard_sequences,
        metadata={"tokenizer_sha256": _sha256(tok_art.path / "tokenizer.json"), "seed": seed},
    )
    with writer:
        hist = encode_documents(ctx, config, source, tok, writer, seed)
    index = writer.index
    assert index is not None
    train, val = index["splits"]["train"], index["splits"]["validation"]
    if train["sequences"] == 0:
        raise StageInputError(
            f"tokens: no full training sequence of {config.seq_len} tokens from input "
            f"{source.manifest.get('asset', source.kind)} artifact {source.id} ({source.path}): only "
            f"{train['document_tokens']} tokens in {train['documents']} documents; lower seq_len"
        )
    if val["sequences"] == 0 and config.validation_fraction > 0:
        ctx.log.warning("tokens: the validation split holds no full sequence (%d tokens)", val["document_tokens"])
    return _result(config, index, hist)


def _result(config: TokensConfig, index: Mapping[str, Any], hist: _LengthHistogram) -> StageResult:
    splits = index["splits"]
    doc_tokens = sum(s["document_tokens"] for s in splits.values())
    waste = sum(s["dropped_tokens"] + s["padding_tokens"] for s in splits.values())
    padding = sum(s["padding_tokens"] for s in splits.values())
    nbytes = sum(s["bytes"] for s in splits.values())
    counts: dict[str, int | float] = {
        "train_tokens": splits["train"]["tokens"],
        "train_sequences": splits["train"]["sequences"],
        "validation_tokens": splits["validation"]["tokens"],
        "validation_sequences": splits["validation"]["sequences"],
        "documents": sum(s["documents"] for s in splits.values()),
        "train_documents": splits["train"]["documents"],
        "validation_documents": splits["validation"]["documents"],
        "document_tokens": doc_tokens,
        "bytes": nbytes,
        "bytes_per_token": round(nbytes / doc_tokens, 4) if doc_tokens else 0.0,
        "waste_fraction": round(waste / (doc_tokens + padding), 6) if doc_tokens else 0.0,
        "dropped_tokens": sum(s["dropped_tokens"] for s in splits.values()),
        "padding_tokens": padding,
        "shards": sum(len(s["shards"]) for s in splits.values()),
        "vocab_size": index["vocab_size"],
    }
    rows = [
        {
            "split": name,
            "documents": s["documents"],
            "sequences": s["sequences"],
            "tokens": s["tokens"],
            "document_tokens": s["document_tokens"],
            "dropped": s["dropped_tokens"],
            "padding": s["padding_tokens"],
            "bytes": s["bytes"],
            "bytes_per_token": round(s["bytes"] / s["document_tokens"], 4) if s["document_tokens"] else 0.0,
            "shards": len(s["shards"]),
        }
        for name, s in splits.items()
    ]
    metadata: dict[str, Any] = {
        "splits": Table(rows),
        "format": {k: index[k] for k in ("dtype", "seq_len", "vocab_size", "eos_id", "bos_id", "pad_id", "remainder")},
        "document_length_histogram": hist.plot(),
        "document_tokens_median": hist.quantile(0.5),
        "document_tokens_max": hist.max,
        "bytes_per_token": counts["bytes_per_token"],
    }
    return StageResult(counts=counts, metadata=metadata)


def _waste_ok(counts: Mapping[str, Any], config: TokensConfig) -> CheckOutcome:
    waste = float(counts.get("waste_fraction", 0.0))
    return CheckOutcome(
        waste <= config.max_waste_fraction,
        f"{waste:.3%} of tokens dropped or padded (max {config.max_waste_fraction:.2%})",
    )


def _has_validation(counts: Mapping[str, Any], config: TokensConfig) -> CheckOutcome:
    n = int(counts.get("validation_sequences", 0))
    if config.validation_fraction == 0:
        return CheckOutcome(True, "no validation split requested")
    return CheckOutcome(n > 0, f"{n} validation sequences")


SPEC = StageSpec(
    name="tokens",
    version="1",
    inputs={"documents": "documents", "tokenizer": "tokenizer"},
    output="tokens",
    config=TokensConfig,
    run=run_tokens,
    group="data",
    checks=(
        CheckSpec(
            name="packing_waste",
            description="tokens: dropped + padding tokens ≤ config.max_waste_fraction",
            check=_waste_ok,
            blocking=False,
        ),
        CheckSpec(
            name="validation_sequences",
            description="tokens: the validation split holds at least one sequence",
            check=_has_validation,
            blocking=False,
        ),
    ),
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
