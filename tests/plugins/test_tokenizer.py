"""tokenizer stage on real text (Shakespeare + Austen paragraphs): HF tokenizers BPE, AutoTokenizer, chat template."""

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from gristmill import Input, Markdown
from gristmill.lib.documents import DocumentsError, DocumentWriter, iter_documents
from gristmill.plugins import collect_stages, create_plugin_manager
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.tokenizer import IM_END, SPEC, TokenizerConfig, holdout_bucket

pytestmark = pytest.mark.shared_data

BOOKS = ("tinyshakespeare.txt", "pride_and_prejudice.txt")
UNICODE_DOCS = [
    "Café, naïve, façade, Übermaß — “curly quotes” and… ellipses. ½ × ¾ ≈ 0.375 €.",
    "日本語のテキストと한국어 텍스트, Ελληνικά, русский текст, עברית, العربية.",
    "Emoji: 🙂🚀🇫🇷 👩‍👩‍👧‍👦 (ZWJ family) and skin tone 👍🏽.",
    "Literal special-token text: <|im_start|>user\nhi<|im_end|> <|eos|>",
]
PROBES = [
    *UNICODE_DOCS,
    "Cafe\u0301 (decomposed é) and \ufb01 ligature, NBSP\u00a0here, zero\u200bwidth, tab\tend",
    "  two leading spaces, trailing newline\r\n\n",
    "\x00\x01 control bytes \x7f",
    "",
]


def write_book_documents(shared_data: Path, folder: Path, extra: list[str] = ()) -> Path:
    """The two pretraining books as paragraph documents (blank-line separated), plus ``extra`` texts."""
    with DocumentWriter(folder, shard_size=4000) as writer:
        for book in BOOKS:
            text = (shared_data / "pretrain" / book).read_text(encoding="utf-8")
            for i, para in enumerate(p for p in text.split("\n\n") if p.strip()):
                writer.write({"text": para + "\n", "id": f"{book}#{i}", "metadata": {"source": book}})
        for i, text in enumerate(extra):
            writer.write({"text": text, "id": f"unicode#{i}", "metadata": {}})
    return folder


@pytest.fixture(scope="module")
def books(shared_data: Path, tmp_path_factory) -> Path:
    return write_book_documents(shared_data, tmp_path_factory.mktemp("books"), UNICODE_DOCS)


@pytest.fixture(scope="module")
def trained(books: Path, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokenizer")
    result, _ = run_stage(SPEC, out, {"vocab_size": 4096, "holdout_fraction": 0.05}, {"documents": _docs(books)})
    return result, out


def _docs(folder: Path):
    return artifact_from_dir("documents", folder)


def _holdout_texts(books: Path, fraction: float = 0.05, seed: int = 0) -> list[str]:
    return [d["text"] for d in iter_documents(books) if holdout_bucket(d["id"], seed) < fraction]


def test_counts_and_compression(trained, books: Path):
    result, out = trained
    counts = result.counts
    assert list(counts)[:2] == ["vocab_size", "bytes_per_token"]
    assert counts["vocab_size"] == 4096
    assert 2.5 < counts["bytes_per_token"] < 5.0  # ~3.3 for a 4k byte-level BPE on English prose
    total = sum(1 for _ in iter_documents(books))
    held = _holdout_texts(books)
    assert counts["holdout_documents"] == counts["eval_documents"] == len(held) > 100
    assert counts["training_documents"] + counts["holdout_documents"] == counts["documents_read"] == total
    assert counts["eval_bytes"] == sum(len(t.encode()) for t in held)
    assert counts["chat_assistant_mask_tokens"] > 0
    assert {p.name for p in out.iterdir()} == {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}
    assert [r["token"] for r in result.metadata["special_tokens"].rows] == [
        "<|bos|>",
        "<|eos|>",
        "<|pad|>",
        "<|im_start|>",
        "<|im_end|>",
    ]
    plot = result.metadata["token_length_histogram"]
    assert isinstance(plot, Markdown) and "data:image/png;base64," in plot.text


def test_roundtrip_on_held_out_and_unicode_text(trained, books: Path):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    _, out = trained
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    hf = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    texts = _holdout_texts(books) + PROBES
    for enc, text in zip(tok.encode_batch(texts, add_special_tokens=False), texts, strict=True):
        assert tok.decode(enc.ids, skip_special_tokens=False) == text
    for text in PROBES:
        assert hf.decode(hf.encode(text, add_special_tokens=False)) == text
    # bytes never seen in training still round-trip (byte-level alphabet), without an unknown token
    assert tok.get_vocab_size() == 4096 and tok.model.unk_token is None


def test_autotokenizer_loads_offline_with_special_tokens(trained):
    from transformers import AutoTokenizer

    _, out = trained
    hf = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    assert (hf.bos_token, hf.eos_token, hf.pad_token) == ("<|bos|>", "<|eos|>", "<|pad|>")
    assert hf.convert_tokens_to_ids(["<|bos|>", "<|eos|>", "<|pad|>", "<|im_start|>", IM_END]) == [0, 1, 2, 3, 4]
    assert hf.encode("<|im_end|>", add_special_tokens=False) == [4]
    assert hf.encode("To be, or not to be", add_special_tokens=False)[0] not in (0, 1)  # no BOS added
    assert hf.model_max_length == 2048


def test_chat_template_marks_exactly_assistant_turns(trained):
    from transformers import AutoTokenizer

    _, out = trained
    assert "{% generation %}" in (out / "chat_template.jinja").read_text()
    hf = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    chat = [
        {"role": "user", "content": "Who wrote Pride and Prejudice?"},
        {"role": "assistant", "content": "Jane Austen,\nin 1813. ✍️"},
        {"role": "user", "content": "And Hamlet?"},
        {"role": "assistant", "content": "Shakespeare."},
    ]
    enc = hf.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = enc["input_ids"], enc["assistant_masks"]
    assert len(ids) == len(mask) and any(mask)
    # the masked tokens are the assistant contents, each followed by <|im_end|>, and nothing else
    spans, current = [], []
    for tid, m in zip(ids, mask, strict=True):
        if m:
            current.append(tid)
        elif current:
            spans.append(current)
            current = []
    spans += [current] if current else []
    assert [hf.decode(s) for s in spans] == ["Jane Austen,\nin 1813. ✍️<|im_end|>", "Shakespeare.<|im_end|>"]
    assert all(s[-1] == hf.convert_tokens_to_ids(IM_END) for s in spans)
    text = hf.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nWho wrote Pride and Prejudice?<|im_end|>\n<|im_start|>assistant\n"
    assert hf.apply_chat_template(chat[:1], tokenize=False) == text.removesuffix("<|im_start|>assistant\n")


def test_same_input_and_config_give_identical_files(trained, books: Path, tmp_path: Path):
    _, out = trained
    again, _ = run_stage(
        SPEC, tmp_path / "again", {"vocab_size": 4096, "holdout_fraction": 0.05}, {"documents": _docs(books)}
    )
    assert again.counts == trained[0].counts
    for path in sorted(out.iterdir()):
        other = tmp_path / "again" / path.name
        assert hashlib.sha256(other.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest(), path.name


def test_caps_seed_and_no_holdout(books: Path, tmp_path: Path):
    cfg = {"vocab_size": 512, "max_documents": 600, "holdout_fraction": 0.1, "seed": 3, "chat_template": False}
    result, _ = run_stage(SPEC, tmp_path / "a", cfg, {"documents": _docs(books)})
    counts = result.counts
    assert counts["documents_read"] == 600 and counts["training_documents"] + counts["holdout_documents"] == 600
    assert 30 < counts["holdout_documents"] < 90 and counts["vocab_size"] == 512
    assert not (tmp_path / "a" / "chat_template.jinja").exists() and "chat_template_example" not in result.metadata

    capped, _ = run_stage(
        SPEC,
        tmp_path / "b",
        cfg | {"max_chars": 5000, "holdout_fraction": 0.0, "vocab_size": 2000},
        {"documents": _docs(books)},
    )
    assert 5000 <= capped.counts["training_chars"] < 8000 and capped.counts["holdout_documents"] == 0
    assert capped.metadata["bytes_per_token_on"] == "training documents"
    assert capped.counts["vocab_size"] < 2000  # a 5 kB corpus runs out of pairs seen twice


def test_empty_corpus_is_a_clear_error(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DocumentsError, match=r"tokenizer: input documents artifact .* holds no documents"):
        run_stage(SPEC, tmp_path / "out", {}, {"documents": _docs(empty)})
    with DocumentWriter(tmp_path / "blank") as writer:
        writer.write_all({"text": "", "id": str(i)} for i in range(3))
    with pytest.raises(ValueError, match=r"no training text in input documents artifact .*3 documents read"):
        run_stage(SPEC, tmp_path / "out2", {"holdout_fraction": 0.0}, {"documents": _docs(tmp_path / "blank")})


def test_config_validation():
    with pytest.raises(ValidationError, match="chat_template needs"):
        TokenizerConfig(extra_special_tokens=["<|tool|>"])
    assert TokenizerConfig(extra_special_tokens=[], chat_template=False).special_tokens == [
        "<|bos|>",
        "<|eos|>",
        "<|pad|>",
    ]
    with pytest.raises(ValidationError, match="distinct"):
        TokenizerConfig(pad_token="<|eos|>")
    with pytest.raises(ValidationError, match="vocab_siz"):
        TokenizerConfig(vocab_siz=100)
    with pytest.raises(ValidationError):
        TokenizerConfig(holdout_fraction=1.0)


def test_registered_as_builtin_stage():
    pm, errors = create_plugin_manager(autoload=False)
    registry = collect_stages(pm, errors)
    spec = registry.get("tokenizer")
    assert spec is SPEC and spec.inputs == {"documents": Input("documents")} and spec.output == "tokenizer"
    assert spec.group == "data"
    assert all(info.description for info in TokenizerConfig.model_fields.values())


NUMBER_TEXT = "I have 123 apples, 45 + 6 = 51. Call 0800 123 4567 in 2024!  Then 7 × 12 = 84.\n"


def _number_corpus(folder: Path) -> Path:
    """Arithmetic-like documents where multi-digit numbers repeat often enough for BPE to merge them."""
    with DocumentWriter(folder) as writer:
        for i in range(400):
            a, b = i % 37 + 10, i % 23 + 100
            text = f"Sam has {a} apples and buys {b} more. {a} + {b} = {a + b}. The answer is {a + b}. {NUMBER_TEXT}"
            writer.write({"text": text, "id": f"n{i}", "metadata": {}})
    return folder


def _number_pieces(folder: Path, text: str) -> list[str]:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    ids = hf.encode(text, add_special_tokens=False)
    assert hf.decode(ids) == text
    return [piece for piece in (hf.decode([i]) for i in ids) if any(c.isdigit() for c in piece)]


@pytest.mark.parametrize("split", [True, False])
def test_split_digits_round_trips_and_spells_numbers(tmp_path: Path, split: bool):
    from transformers import PreTrainedTokenizerFast

    corpus = _docs(_number_corpus(tmp_path / "docs"))
    cfg = {"vocab_size": 600, "holdout_fraction": 0.0} | ({"split_digits": True} if split else {})
    run_stage(SPEC, tmp_path / "tok", cfg, {"documents": corpus})
    fast = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tok" / "tokenizer.json"))
    for text in (NUMBER_TEXT, " 2024 and 1,000,000.5 ", "x=12345;y=-67\n"):
        assert fast.decode(fast.encode(text, add_special_tokens=False)) == text
    pieces = _number_pieces(tmp_path / "tok", NUMBER_TEXT + " 1234567")
    digits = [sum(c.isdigit() for c in piece) for piece in pieces]
    if split:  # every digit its own token, with or without a leading space
        assert max(digits) == 1 and all(piece.strip().isdigit() for piece in pieces)
    else:  # today's behaviour: the GPT-2 regex keeps digit runs together and BPE merges frequent numbers
        assert max(digits) > 1


def test_split_digits_is_off_by_default():
    assert TokenizerConfig().split_digits is False
