"""``tokenizer``: documents → a byte-level BPE tokenizer saved as a Hugging Face tokenizer directory.

Training uses Hugging Face ``tokenizers``: a ``BPE`` model with the ``ByteLevel`` pre-tokenizer (GPT-2
regex, no prefix space), ``ByteLevel`` decoder and post-processor (offsets not trimmed), no normalizer,
and a ``BpeTrainer`` whose initial alphabet is the 256-symbol ByteLevel alphabet, so every byte string
round-trips (``decode(encode(x)) == x``) and no unknown token is needed. Text is streamed from the
documents into ``train_from_iterator``; a deterministic slice of documents (by a hash of seed and
document id) is held out of training and used to measure compression (UTF-8 bytes per token).

The directory is written by ``transformers.PreTrainedTokenizerFast.save_pretrained`` (``tokenizer.json``,
``tokenizer_config.json``, ``chat_template.jinja``) with bos/eos/pad tokens, the extra special tokens
(``<|im_start|>``, ``<|im_end|>`` by default) and a ChatML chat template whose assistant turns sit in
``{% generation %}…{% endgeneration %}`` with ``<|im_end|>`` inside, as TRL's assistant-only loss needs.
Before returning, the stage reloads the directory with ``AutoTokenizer`` (local files only) and checks
round-tripping and the assistant-token mask. BPE training in ``tokenizers`` is deterministic (merge ties
are broken by the pair's ids, not by hash order or thread timing), so equal input and config give
byte-identical files.
"""

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from gristmill import (
    Artifact,
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
from gristmill.lib.plots import histogram

log = logging.getLogger("gristmill.tokenizer")

IM_START, IM_END = "<|im_start|>", "<|im_end|>"

# ChatML. Assistant content and its <|im_end|> are inside {% generation %} so that
# apply_chat_template(..., return_assistant_tokens_mask=True) marks exactly the tokens a model must learn.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Strings every trained tokenizer must round-trip (checked in the stage, on top of held-out text).
ROUNDTRIP_PROBES = (
    "Hello, world!  Two spaces,\ttabs\nand newlines.\n\n",
    "Ünïcödé café naïve — “quotes” … 日本語のテキスト 🙂🚀 👩‍👩‍👧",
    " leading space and trailing space ",
    "I have 123 apples, 45 + 6 = 51. Call 0800 123 4567 in 2024!",
)

CHAT_PROBE = [
    {"role": "system", "content": "You are brief."},
    {"role": "user", "content": "What is 2 + 2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 3 + 3?"},
    {"role": "assistant", "content": "Six — 6 🙂"},
]


class TokenizerConfig(StageConfig):
    """Options of the ``tokenizer`` stage."""

    vocab_size: int = Field(
        4096,
        ge=300,
        le=1_000_000,
        description="Target vocabulary size including the 256 byte symbols and the special tokens "
        "(training may stop below it when no pair reaches min_frequency).",
    )
    min_frequency: int = Field(2, ge=1, description="A pair must occur at least this often to be merged.")
    bos_token: str = Field("<|bos|>", min_length=1, description="Beginning-of-sequence special token.")
    eos_token: str = Field(
        "<|eos|>",
        min_length=1,
        description="End-of-sequence special token (the tokens stage appends it to every document).",
    )
    pad_token: str = Field("<|pad|>", min_length=1, description="Padding special token.")
    extra_special_tokens: list[str] = Field(
        [IM_START, IM_END],
        description="Further special tokens (ids right after bos/eos/pad, in this order); the ChatML chat "
        "template needs <|im_start|> and <|im_end|>.",
    )
    chat_template: bool = Field(
        True,
        description="Save a ChatML chat template with {% generation %} blocks around assistant turns "
        "(for TRL's assistant-only loss) and an add_generation_prompt branch.",
    )
    max_documents: int | None = Field(
        None, ge=1, description="Read at most this many documents (training + held out); None: all."
    )
    max_chars: int | None = Field(
        None,
        ge=1,
        description="Stop training once this many characters of training text were read (the last "
        "document is taken whole); None: no limit.",
    )
    holdout_fraction: float = Field(
        0.02,
        ge=0.0,
        lt=1.0,
        description="Share of documents (chosen by a hash of seed and document id) excluded from training "
        "and used to measure bytes/token; 0: measure on the training documents.",
    )
    seed: int | None = Field(None, description="Seed of the held-out selection; None: the pipeline/instance seed.")
    model_max_length: int = Field(
        2048, ge=1, description="model_max_length written to tokenizer_config.json (the context length models use)."
    )
    split_digits: bool = Field(
        False,
        description="Split every digit into its own token (a Digits(individual_digits=True) pre-tokenizer before "
        "ByteLevel, as Llama 1 and PaLM do), so numbers are spelled digit by digit and arithmetic is easier to "
        "learn; False: the GPT-2 regex keeps runs of digits together and BPE may merge them.",
    )

    @model_validator(mode="after")
    def _check_tokens(self) -> "TokenizerConfig":
        special = self.special_tokens
        if len(set(special)) != len(special):
            raise ValueError(f"special tokens must be distinct, got {special}")
        if any(not t for t in special):
            raise ValueError("special tokens must be non-empty strings")
        if self.chat_template and not {IM_START, IM_END} <= set(self.extra_special_tokens):
            raise ValueError(f"chat_template needs {IM_START} and {IM_END} in extra_special_tokens")
        if self.vocab_size < 256 + len(special):
            raise ValueError(f"vocab_size {self.vocab_size} is below 256 byte symbols + {len(special)} special tokens")
        return self

    @property
    def special_tokens(self) -> list[str]:
        return [self.bos_token, self.eos_token, self.pad_token, *self.extra_special_tokens]


def holdout_bucket(doc_id: str, seed: int) -> float:
    """A uniform number in [0, 1) from seed and document id (stable across runs and machines)."""
    digest = hashlib.blake2b(f"{seed}:{doc_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _doc_id(doc: dict[str, Any], index: int) -> str:
    ident = doc.get("id")
    return str(ident) if ident is not None and ident != "" else f"#{index}"


def build_tokenizer(config: TokenizerConfig) -> tuple[Any, Any]:
    """An untrained byte-level BPE ``tokenizers.Tokenizer`` and its ``BpeTrainer``.

    With ``config.split_digits`` the pre-tokenizer is ``Sequence([Digits(individual_digits=True), ByteLevel])``,
    so every digit is a separate pre-token and no learned merge spans two digits.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if config.split_digits:
        # Digits first: "123" → "1", "2", "3" before the GPT-2 regex and byte mapping, so no merge can join digits.
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=config.special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    return tok, trainer


class _Corpus:
    """One pass over the documents: training texts streamed out, held-out docs counted (caps applied)."""

    def __init__(self, source: Artifact, config: TokenizerConfig, seed: int) -> None:
        self.source, self.config, self.seed = source, config, seed
        self.scanned = 0
        self.train_documents = self.train_chars = 0
        self.holdout_documents = 0

    def is_holdout(self, doc: dict[str, Any], index: int) -> bool:
        frac = self.config.holdout_fraction
        return frac > 0 and holdout_bucket(_doc_id(doc, index), self.seed) < frac

    def training_texts(self) -> Iterator[str]:
        cfg = self.config
        for index, doc in enumerate(iter_documents(self.source)):
            if cfg.max_documents is not None and index >= cfg.max_documents:
                break
            if cfg.max_chars is not None and self.train_chars >= cfg.max_chars:
                break
            self.scanned = index + 1
            if self.is_holdout(doc, index):
                self.holdout_documents += 1
                continue
            text = doc["text"]
            self.train_documents += 1
            self.train_chars += len(text)
            if text:
                yield text

    def eval_texts(self, holdout: bool) -> Iterator[str]:
        """Held-out texts among the scanned documents (or the training ones when nothing is held out)."""
        for index, doc in enumerate(iter_documents(self.source)):
            if index >= self.scanned:
                break
            if self.is_holdout(doc, index) == holdout:
                yield doc["text"]


def _batched(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def measure_compression(tok: Any, texts: Iterator[str], max_chars: int | None = None) -> dict[str, Any]:
    """UTF-8 bytes, tokens and round-trip failures of ``texts`` under ``tok`` (a ``tokenizers.Tokenizer``)."""
    docs = nbytes = ntokens = chars = 0
    failures: list[str] = []
    samples: list[str] = []
    for batch in _batched(texts, 512):
        encodings = tok.encode_batch_fast(batch, add_special_tokens=False)
        ids = [e.ids for e in encodings]
        decoded = tok.decode_batch(ids, skip_special_tokens=False)
        for text, tids, back in zip(batch, ids, decoded, strict=True):
            docs += 1
            chars += len(text)
            nbytes += len(text.encode("utf-8"))
            ntokens += len(tids)
            if back != text and len(failures) < 5:
                failures.append(text[:80])
            if len(samples) < 5 and len(text) >= 40:
                samples.append(text)
        if max_chars is not None and chars >= max_chars:
            break
    return {"documents": docs, "bytes": nbytes, "tokens": ntokens, "failures": failures, "samples": samples}


def verify_hf_directory(folder: Path, config: TokenizerConfig) -> dict[str, Any]:
    """Reload ``folder`` with ``AutoTokenizer`` (local files only) and check specials, round-trips and the
    chat template's assistant mask; raises ``RuntimeError`` describing the first problem."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    for attr in ("bos_token", "eos_token", "pad_token"):
        if getattr(hf, attr) != getattr(config, attr):
            raise RuntimeError(
                f"reloaded tokenizer has {attr}={getattr(hf, attr)!r}, expected {getattr(config, attr)!r}"
            )
    for probe in ROUNDTRIP_PROBES:
        back = hf.decode(hf.encode(probe, add_special_tokens=False))
        if back != probe:
            raise RuntimeError(f"AutoTokenizer round trip changed {probe!r} into {back!r}")
    result: dict[str, Any] = {"tokenizer_class": type(hf).__name__}
    if not config.chat_template:
        return result
    out = hf.apply_chat_template(CHAT_PROBE, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    got = hf.decode([i for i, m in zip(ids, mask, strict=True) if m], skip_special_tokens=False)
    want = "".join(m["content"] + IM_END for m in CHAT_PROBE if m["role"] == "assistant")
    if not any(mask) or got != want:
        raise RuntimeError(f"chat template assistant mask covers {got!r}, expected {want!r}")
    prompt = hf.apply_chat_template(CHAT_PROBE[:2], tokenize=False, add_generation_prompt=True)
    if not prompt.endswith(f"{IM_START}assistant\n"):
        raise RuntimeError(f"add_generation_prompt does not end with the assistant header: {prompt[-40:]!r}")
    result.update(
        assistant_mask_tokens=int(sum(mask)),
        chat_example=hf.apply_chat_template(CHAT_PROBE, tokenize=False),
    )
    return result


def _token_length_histogram(vocab: dict[str, int], tok: Any) -> Markdown:
    """Histogram of the learned tokens' lengths in bytes (special tokens left out).

    A ByteLevel vocabulary string holds one alphabet symbol per byte, so ``len()`` is the length in bytes.
    """
    special = set(tok.get_added_tokens_decoder())
    return histogram(
        [len(t) for t, i in vocab.items() if i not in special],
        "vocabulary token lengths",
        "bytes per token",
        ylabel="tokens",
    )


def run_tokenizer(ctx: StageContext, config: TokenizerConfig, inputs: dict[str, Artifact]) -> StageResult:
    """Train a byte-level BPE tokenizer on the documents and save it as a Hugging Face tokenizer directory
    with bos/eos/pad, ChatML special tokens and a TRL-ready chat template."""
    source = inputs["documents"]
    require_documents(source, "tokenizer")
    seed = ctx.seed if config.seed is None else config.seed
    corpus = _Corpus(source, config, seed)
    tok, trainer = build_tokenizer(config)

    ctx.progress(0, None, f"training BPE (vocab {config.vocab_size})")
    tok.train_from_iterator(corpus.training_texts(), trainer=trainer)
    if corpus.train_chars == 0:
        raise StageInputError(
            f"tokenizer: no training text in input {source.manifest.get('asset', source.kind)} artifact "
            f"{source.id} ({source.path}): {corpus.scanned} documents read, {corpus.holdout_documents} held out, "
            "the rest empty"
        )
    vocab = tok.get_vocab_size(with_added_tokens=True)
    if vocab < config.vocab_size:
        ctx.log.warning(
            "tokenizer: vocabulary stopped at %d < %d (no pair left with frequency ≥ %d)",
            vocab,
            config.vocab_size,
            config.min_frequency,
        )

    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=config.bos_token,
        eos_token=config.eos_token,
        pad_token=config.pad_token,
        extra_special_tokens=list(config.extra_special_tokens),
        clean_up_tokenization_spaces=False,
        model_max_length=config.model_max_length,
        **({"chat_template": CHAT_TEMPLATE} if config.chat_template else {}),
    )
    hf.save_pretrained(str(ctx.output_dir))
    ctx.progress(1, 2, "saved; measuring held-out compression")

    on_holdout = corpus.holdout_documents > 0
    if not on_holdout:
        ctx.log.warning("tokenizer: no held-out documents; bytes/token is measured on training text")
    stats = measure_compression(tok, corpus.eval_texts(on_holdout), None if on_holdout else 5_000_000)
    if stats["failures"]:
        raise RuntimeError(
            f"tokenizer: decode(encode(x)) != x for {len(stats['failures'])} texts, e.g. {stats['failures'][0]!r}"
        )
    for probe in ROUNDTRIP_PROBES:
        if tok.decode(tok.encode(probe, add_special_tokens=False).ids, skip_special_tokens=False) != probe:
            raise RuntimeError(f"tokenizer: round trip failed for {probe!r}")
    checked = verify_hf_directory(ctx.output_dir, config)
    ctx.progress(2, 2, "verified")

    bytes_per_token = stats["bytes"] / stats["tokens"] if stats["tokens"] else 0.0
    counts: dict[str, int | float] = {
        "vocab_size": vocab,
        "bytes_per_token": round(bytes_per_token, 4),
        "training_documents": corpus.train_documents,
        "training_chars": corpus.train_chars,
        "holdout_documents": corpus.holdout_documents,
        "eval_documents": stats["documents"],
        "eval_bytes": stats["bytes"],
        "eval_tokens": stats["tokens"],
        "documents_read": corpus.scanned,
        "special_tokens": len(config.special_tokens),
    }
    specials = Table(
        [
            {"token": t, "id": tok.token_to_id(t), "role": r}
            for t, r in zip(
                config.special_tokens, ["bos", "eos", "pad", *["extra"] * len(config.extra_special_tokens)], strict=True
            )
        ]
    )
    samples = []
    for text in stats["samples"]:
        snippet = text[:120]
        pieces = [tok.decode([i]) for i in tok.encode(snippet, add_special_tokens=False).ids]
        samples.append({"text": snippet, "tokens": len(pieces), "pieces": " | ".join(pieces)})
    learned = tok.get_vocab(with_added_tokens=False)
    longest = sorted(learned.items(), key=lambda kv: (-len(tok.decode([kv[1]])), kv[1]))
    metadata: dict[str, Any] = {
        "bytes_per_token_on": "held-out documents" if on_holdout else "training documents",
        "special_tokens": specials,
        "sample_tokenization": Table(samples),
        "longest_tokens": Table([{"id": i, "token": tok.decode([i])} for _, i in longest[:15]]),
        "tokenizer_class": checked["tokenizer_class"],
        "token_length_histogram": _token_length_histogram(learned, tok),
    }
    if config.chat_template:
        metadata["chat_template_example"] = Markdown(f"```\n{checked['chat_example']}```")
        counts["chat_assistant_mask_tokens"] = checked["assistant_mask_tokens"]
    return StageResult(counts=counts, metadata=metadata)


SPEC = StageSpec(
    name="tokenizer",
    version="1",
    inputs={"documents": "documents"},
    output="tokenizer",
    config=TokenizerConfig,
    run=run_tokenizer,
    group="data",
)


@hookimpl
def gristmill_register_stages() -> list[StageSpec]:
    return [SPEC]
