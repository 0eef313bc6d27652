"""``minhash_dedup``: datasketch as the oracle, real text with planted near duplicates, the synthetic crawl."""

import gzip
import hashlib
import random
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
from datasketch import MinHash, MinHashLSH
from pydantic import ValidationError
from resiliparse.extract.html2text import extract_plain_text
from warcio.archiveiterator import ArchiveIterator

from gristmill import Input, Markdown, Table
from gristmill.lib.documents import DocumentsError, DocumentWriter, iter_documents
from gristmill.plugins import collect_stages, create_plugin_manager
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins import minhash_dedup
from gristmill_plugins.demo_data import SyntheticCrawlConfig, parse_synthetic_url, write_synthetic_crawl
from gristmill_plugins.minhash_dedup import SPEC, MinHashDedupConfig
from gristmill_plugins.minhash_dedup.lsh import lsh_pairs, optimal_bands_rows, resolve_lsh
from gristmill_plugins.minhash_dedup.minhash import minhash_signatures, normalize_text, shingles
from tests.support.near_duplicates import paragraph_documents, plant_near_duplicates

EDITS = {"ngram": 3, "bands": 28, "rows": 4}  # suited to 5–10 % word edits (Jaccard of word 3-grams ≈ 0.45–0.75)


def _write(folder: Path, docs: list[dict[str, Any]] | list[str], shard_size: int = 1000) -> Path:
    with DocumentWriter(folder, shard_size=shard_size) as writer:
        for i, doc in enumerate(docs):
            writer.write(doc if isinstance(doc, dict) else {"text": doc, "id": f"doc-{i:05d}", "metadata": {}})
    return folder


def _run(
    tmp_path: Path,
    docs: list[dict[str, Any]] | list[str],
    name: str = "out",
    shard_size: int = 1000,
    seed: int = 0,
    **config: Any,
) -> tuple[Any, list[dict[str, Any]]]:
    folder = _write(tmp_path / f"{name}-in", docs, shard_size)
    result, art = run_stage(SPEC, tmp_path / name, config, {"documents": artifact_from_dir("documents", folder)}, seed)
    return result, list(iter_documents(art.path))


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _datasketch(texts: list[str], config: MinHashDedupConfig, seed: int = 1) -> list[MinHash]:
    hashfunc = xxhash.xxh32_intdigest if config.hash_function == "xxh32" else None  # None: sha1_hash32
    out = []
    for text in texts:
        m = MinHash(num_perm=config.num_perm, seed=seed, scheme=config.scheme, hashfunc=hashfunc)
        m.update_batch(shingles(text, config))
        out.append(m)
    return out


def _datasketch_lsh(texts: list[str], config: MinHashDedupConfig, seed: int = 1) -> tuple[set, set]:
    """The straightforward loop: candidate pairs from query-then-insert, and the documents union-find (keep
    first) removes."""
    bands, rows, _ = resolve_lsh(config)
    lsh = MinHashLSH(num_perm=config.num_perm, params=(bands, rows))
    pairs: set[tuple[int, int]] = set()
    for i, m in enumerate(_datasketch(texts, config, seed)):
        if m.is_empty():
            continue
        pairs.update((j, i) for j in lsh.query(m))
        lsh.insert(i, m)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in sorted(pairs):
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return pairs, {i for i in range(len(texts)) if find(i) != i}


def _random_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(300)] + ["Café", "naïve", "Ärger", "東京", "ﬁnance", "Straße", "déjà-vu"]
    texts = [" ".join(rng.choice(vocab) for _ in range(rng.randint(20, 80))) for _ in range(n)]
    near = [" ".join(w if rng.random() > 0.03 else rng.choice(vocab) for w in t.split()) for t in texts[: n // 3]]
    long = " ".join(rng.choice(vocab) for _ in range(9000))  # > one 8192-shingle chunk: running minimum path
    return texts + near + [long, "", "  ...  ", "one two", "Hello, World!"]


# ------------------------------------------------------------------------------------------------
# oracle: datasketch
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"hash_function": "sha1"},
        {"hash_function": "sha1", "scheme": "legacy"},
        {"shingle": "char", "ngram": 7, "hash_function": "sha1"},
        {"num_perm": 64, "bands": 8, "rows": 8, "seed": 42, "lowercase": False, "strip_punctuation": False},
    ],
)
def test_signatures_equal_datasketch_bitwise(options: dict[str, Any]) -> None:
    config = MinHashDedupConfig(**options)
    texts = _random_texts(60)
    ours = minhash_signatures(texts, config, seed=1)
    seed = config.seed if config.seed is not None else 1
    theirs = _datasketch(texts, config, seed)
    assert ours.dtype == np.uint32 and ours.shape == (len(texts), config.num_perm)
    for sig, m in zip(ours, theirs, strict=True):
        assert np.array_equal(sig.astype(np.uint64), m.hashvalues.astype(np.uint64))
    for i, j in [(0, 60), (1, 61), (5, 6), (0, len(texts) - 5)]:  # near duplicates and unrelated pairs
        assert float(np.mean(ours[i] == ours[j])) == theirs[i].jaccard(theirs[j])
    # datasketch's per-shingle update gives the same values as its update_batch used above
    one = MinHash(
        num_perm=config.num_perm,
        seed=seed,
        scheme=config.scheme,
        hashfunc=xxhash.xxh32_intdigest if config.hash_function == "xxh32" else None,
    )
    for s in shingles(texts[3], config):
        one.update(s)
    assert np.array_equal(ours[3].astype(np.uint64), one.hashvalues.astype(np.uint64))


def test_shingles_and_normalization() -> None:
    config = MinHashDedupConfig(ngram=3)
    assert shingles("The  QUICK, brown fox!\njumps", config) == [
        b"the quick brown",
        b"quick brown fox",
        b"brown fox jumps",
    ]
    assert shingles("Hi there", config) == [b"hi there"]  # fewer words than ngram: one shingle
    assert shingles(" ... ", config) == []
    chars = MinHashDedupConfig(shingle="char", ngram=4)
    assert shingles("Café au", chars) == [b"caf\xc3\xa9", "afé ".encode(), "fé a".encode(), "é au".encode()]
    assert normalize_text("ﬁne Straße—ok", MinHashDedupConfig()) == "fine straße ok"  # NFKC, lowercase, punct
    assert normalize_text("ﬁne", MinHashDedupConfig(unicode_normalization="none")) == "ﬁne"

    def reference(text: str, c: MinHashDedupConfig) -> str:
        text = unicodedata.normalize(c.unicode_normalization, text)
        text = text.lower() if c.lowercase else text
        text = re.sub(r"[^\w\s]+", " ", text) if c.strip_punctuation else text
        return " ".join(text.split())

    rng = random.Random(0)  # the ASCII fast path equals the str path, control characters included
    for lowercase in (True, False):
        for strip in (True, False):
            c = MinHashDedupConfig(lowercase=lowercase, strip_punctuation=strip)
            for _ in range(2000):
                text = "".join(chr(rng.randrange(128)) for _ in range(rng.randrange(40)))
                assert normalize_text(text, c) == reference(text, c)


def test_threshold_derives_bands_and_rows_like_datasketch() -> None:
    for threshold, num_perm, fp_weight in [(0.5, 112, 0.5), (0.8, 112, 0.5), (0.7, 64, 0.3)]:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=(fp_weight, 1 - fp_weight))
        assert optimal_bands_rows(threshold, num_perm, fp_weight) == (lsh.b, lsh.r)
    config = MinHashDedupConfig(threshold=0.5)
    assert resolve_lsh(config) == (22, 5, 0.5)
    bands, rows, threshold = resolve_lsh(MinHashDedupConfig())
    assert (bands, rows) == (14, 8) and threshold == pytest.approx((1 / 14) ** (1 / 8))


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError, match="either threshold or bands/rows"):
        MinHashDedupConfig(threshold=0.7, bands=10)
    with pytest.raises(ValidationError, match="exceeds num_perm"):
        MinHashDedupConfig(num_perm=64)  # 14 x 8 = 112 > 64
    with pytest.raises(ValidationError, match="no_such_option"):
        MinHashDedupConfig(no_such_option=1)
    with pytest.raises(ValidationError, match="keep"):
        MinHashDedupConfig(keep="last")
    assert MinHashDedupConfig(num_perm=64, threshold=0.8).threshold == 0.8
    for name, field in MinHashDedupConfig.model_fields.items():
        assert field.description, name


# ------------------------------------------------------------------------------------------------
# real text with planted near duplicates
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paragraphs(shared_data: Path) -> list[str]:
    """Paragraph documents (100–300 words) of both pretraining texts (Shakespeare, Austen)."""
    texts: list[str] = []
    for path in sorted((shared_data / "pretrain").glob("*.txt")):
        texts += paragraph_documents(path.read_text(encoding="utf-8"))
    return texts


@pytest.fixture(scope="module")
def planted(paragraphs: list[str]) -> tuple[list[str], set[tuple[int, int]]]:
    """The paragraphs plus a near duplicate (5–10 % of words substituted, deleted or inserted) of 20 % of them
    at a later position; and the planted (original, duplicate) index pairs."""
    return plant_near_duplicates(paragraphs, 0.2, rate=(0.05, 0.10), seed=0)


def test_planted_near_duplicates_found_with_high_precision_and_recall(
    planted: tuple[list[str], set[tuple[int, int]]], tmp_path: Path
) -> None:
    texts, pairs = planted
    assert len(texts) > 2500 and len(pairs) > 400
    config = MinHashDedupConfig(**EDITS, seed=7)
    predicted = lsh_pairs(minhash_signatures(texts, config), 28, 4)
    hits = len(predicted & pairs)
    assert hits / len(predicted) >= 0.95  # precision
    assert hits / len(pairs) >= 0.94  # recall

    result, out = _run(tmp_path, texts, **EDITS, seed=7)  # the stage (seed from the run) removes the duplicates
    kept = {int(d["id"].removeprefix("doc-")) for d in out}
    removed = set(range(len(texts))) - kept
    duplicates = {b for _, b in pairs}
    assert len(removed & duplicates) / len(removed) >= 0.95
    assert len(removed & duplicates) / len(duplicates) >= 0.94
    assert all(a in kept for a, _ in pairs)  # keep=first: originals come first
    counts = result.counts
    assert counts["documents_in"] == len(texts) and counts["documents_out"] == len(out)
    assert counts["duplicates_removed"] == len(removed) == counts["documents_in"] - counts["documents_out"]


def test_lsh_pairs_and_removals_agree_with_datasketch_minhash_lsh(paragraphs: list[str], tmp_path: Path) -> None:
    texts, _ = plant_near_duplicates(paragraphs[:500], 0.3, rate=(0.01, 0.10), seed=1)  # Jaccard all over the curve
    for options in ({}, {**EDITS, "hash_function": "sha1"}):
        config = MinHashDedupConfig(**options)
        bands, rows, _ = resolve_lsh(config)
        theirs, their_removed = _datasketch_lsh(texts, config, seed=1)
        ours = lsh_pairs(minhash_signatures(texts, config, seed=1), bands, rows)
        assert len(ours & theirs) / len(ours | theirs) >= 0.99  # identical in practice: bitwise-equal signatures
        assert ours == theirs
        result, out = _run(tmp_path, texts, f"run-{len(options)}", seed=1, **options)
        removed = set(range(len(texts))) - {int(d["id"].removeprefix("doc-")) for d in out}
        assert removed == their_removed and result.counts["duplicates_removed"] == len(removed) > 5


# ------------------------------------------------------------------------------------------------
# stage behaviour
# ------------------------------------------------------------------------------------------------


BASE = (
    "The old mill by the river ground wheat for the whole valley until the flood of 1893 carried away its wheel. "
    "For a decade the building stood empty, and children dared each other to climb through the broken windows. "
    "Then a cooperative of farmers bought it, rebuilt the wheel from oak, and opened a bakery in the granary. "
    "Today visitors can watch the stones turn on summer weekends and buy bread made from the flour."
)


def test_exact_mode_removes_identical_normalized_text_only(tmp_path: Path) -> None:
    docs = [BASE, BASE.upper().replace(".", "!"), BASE.replace("wheat", "barley"), "Something else entirely."]
    result, out = _run(tmp_path, docs, method="exact")
    assert [d["id"] for d in out] == ["doc-00000", "doc-00002", "doc-00003"]
    assert result.counts["duplicates_removed"] == 1 and result.counts["clusters"] == 1
    assert out[0]["metadata"] == {"dedup_cluster": 0, "dedup_cluster_size": 2}
    _, near = _run(tmp_path, docs, "minhash")  # MinHash also catches the one-word edit
    assert [d["id"] for d in near] == ["doc-00000", "doc-00003"]


def test_keep_rules_first_and_longest_with_id_ties(tmp_path: Path) -> None:
    docs = [
        {"text": BASE, "id": "m", "metadata": {"n": 0}},
        {"text": "Something unrelated about tomatoes and their care in a cold spring.", "id": "x", "metadata": {}},
        {"text": BASE + " !!", "id": "z", "metadata": {}},
        {"text": BASE + " ??", "id": "b", "metadata": {}},  # as long as "z": the tie goes to the smaller id
    ]
    for method in ("exact", "minhash"):
        _, first = _run(tmp_path, docs, f"{method}-first", shard_size=2, method=method)  # two input shards
        assert [d["id"] for d in first] == ["m", "x"]
        _, longest = _run(tmp_path, docs, f"{method}-longest", shard_size=2, method=method, keep="longest")
        assert [d["id"] for d in longest] == ["x", "b"]
        assert longest[1]["metadata"] == {"dedup_cluster": 0, "dedup_cluster_size": 3}
    docs[2]["text"] += "."  # now "z" is the longest
    _, longest = _run(tmp_path, docs, "longest-2", keep="longest")
    assert [d["id"] for d in longest] == ["x", "z"]
    _, plain = _run(tmp_path, docs, "no-annotate", annotate=False)
    assert plain[0] == docs[0]


def test_line_dedup_runs_before_document_dedup(tmp_path: Path) -> None:
    boiler = "Subscribe to our newsletter for more stories."
    cookie = "We use cookies."
    stories = [
        "Tomatoes need warm soil and steady water through the summer months.",
        "The bakery sells rye loaves on Saturdays, baked in the old brick oven.",
        "A footpath runs along the canal from the lock to the village green.",
        "Bees visit the lavender border from June until the first frosts.",
    ]
    docs = [f"{s}\n{boiler}\n{cookie}" for s in stories]
    docs.append(f"{stories[0]}\n{boiler}\nSee you next week.")  # differs from doc 0 only in lines...
    docs.append(f"{boiler}\n{cookie}\n")  # only repeated lines: emptied
    docs.append("Unique words, all on one line.\n" + "\n".join(["Repeat me."] * 3))  # 3 times: kept at N = 3
    result, out = _run(tmp_path, docs, method="exact", line_dedup_min_repeats=3)
    counts = result.counts
    assert counts["lines_removed"] == 6 + 5 and counts["documents_emptied"] == 1
    texts = [d["text"] for d in out]
    assert texts[:4] == [f"{s}\n" for s in stories]  # other lines' endings kept
    assert "See you next week." in texts[4] and boiler not in texts[4]
    assert texts[5].count("Repeat me.") == 3
    assert counts["documents_out"] == 6 == counts["documents_in"] - counts["documents_emptied"]

    docs2 = [f"{s}\n{boiler}" for s in stories] + [f"{stories[1]}\n{boiler}\n{boiler}"]
    result2, out2 = _run(tmp_path, docs2, "order", method="exact", line_dedup_min_repeats=2)
    assert result2.counts["duplicates_removed"] == 1 and len(out2) == 4  # equal once the boilerplate is gone


def test_same_input_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    texts = _random_texts(90, seed=3)
    folder = _write(tmp_path / "in", texts, shard_size=40)
    inputs = {"documents": artifact_from_dir("documents", folder)}
    one, a1 = run_stage(SPEC, tmp_path / "one", {"shard_size": 50, "keep": "longest"}, inputs, seed=5)
    two, a2 = run_stage(SPEC, tmp_path / "two", {"shard_size": 50, "keep": "longest"}, inputs, seed=5)
    assert _hashes(a1.path) == _hashes(a2.path)
    files = sorted(_hashes(a1.path))  # only the shards, of at most 50 documents: no plot or other files
    assert len(files) == -(-one.counts["documents_out"] // 50) and all(f.endswith(".jsonl.gz") for f in files)
    assert one.counts == two.counts and one.counts["duplicates_removed"] > 10
    assert one.metadata["params"]["seed"] == 5
    three, _ = run_stage(SPEC, tmp_path / "three", {"seed": 5}, inputs, seed=99)
    assert three.metadata["params"]["seed"] == 5


def test_metadata_and_check(tmp_path: Path) -> None:
    texts = _random_texts(60, seed=1)
    result, out = _run(tmp_path, texts)
    md = result.metadata
    assert list(result.counts)[:4] == ["documents_out", "documents_in", "duplicates_removed", "clusters"]
    histogram = md["cluster_size_histogram"]
    assert sum(int(k) * v for k, v in histogram.items()) == result.counts["duplicates_removed"] + sum(
        histogram.values()
    )
    assert isinstance(md["cluster_sizes"], Markdown) and "data:image/png;base64," in md["cluster_sizes"].text
    assert isinstance(md["duplicate_examples"], Table)
    rows = md["duplicate_examples"].rows
    assert 1 <= len(rows) <= 10
    assert {"removed_id", "kept_id", "jaccard_estimate", "removed_text", "kept_text"} <= set(rows[0])
    assert all(len(r["removed_text"]) <= 120 and 0 < r["jaccard_estimate"] <= 1 for r in rows)
    assert md["params"]["bands"] == 14 and md["params"]["rows"] == 8 and md["params"]["hash_function"] == "xxh32"
    assert result.counts["documents_without_shingles"] == 2  # "" and "  ...  "
    (check,) = SPEC.checks
    assert check.name == "min_documents_kept"
    kept = result.counts["documents_out"]
    assert check.check(result.counts, MinHashDedupConfig(min_documents=kept)).passed
    outcome = check.check(result.counts, MinHashDedupConfig(min_documents=kept + 1))
    assert not outcome.passed and f"{kept} documents kept" in outcome.description


def test_verify_drops_candidates_below_the_threshold(tmp_path: Path) -> None:
    rng = random.Random(2)
    vocab = [f"v{i}" for i in range(2000)]
    bases = [[rng.choice(vocab) for _ in range(100)] for _ in range(40)]
    variants = [[w if rng.random() > 0.1 else rng.choice(vocab) for w in b] for b in bases]  # bigram J ≈ 0.68
    texts = [" ".join(words) for words in bases + variants]
    options = {"ngram": 2, "threshold": 0.8, "false_positive_weight": 0.05}  # 14 x 8: many candidates below 0.8
    plain, out_plain = _run(tmp_path, texts, "plain", **options)
    checked, out_checked = _run(tmp_path, texts, "checked", **options, verify=True)
    assert checked.metadata["params"]["bands"] == 14 and checked.metadata["params"]["threshold"] == 0.8
    assert {d["id"] for d in out_plain} <= {d["id"] for d in out_checked}
    assert checked.counts["duplicates_removed"] < plain.counts["duplicates_removed"]
    assert all(r["jaccard_estimate"] >= 0.8 for r in checked.metadata["duplicate_examples"].rows)
    assert any(r["jaccard_estimate"] < 0.8 for r in plain.metadata["duplicate_examples"].rows)


def test_documents_without_words_are_kept_and_not_clustered(tmp_path: Path) -> None:
    for method in ("minhash", "exact"):
        result, out = _run(tmp_path, ["...", "!!!", "", "..."], method, method=method)
        assert [d["text"] for d in out] == ["...", "!!!", "", "..."]
        assert result.counts["documents_without_shingles"] == 4 and result.counts["clusters"] == 0


def test_empty_input_fails_naming_the_artifact(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "blank").mkdir()
    with gzip.open(tmp_path / "blank" / "00000.jsonl.gz", "wt") as f:
        f.write("\n")  # a shard without documents
    for name in ("empty", "blank"):
        with pytest.raises(DocumentsError, match=f"minhash_dedup: input .*{name}.* holds no documents"):
            run_stage(SPEC, tmp_path / name / "out", {}, {"documents": artifact_from_dir("documents", tmp_path / name)})


def test_registered_as_builtin_plugin() -> None:
    assert minhash_dedup.gristmill_register_stages() == [SPEC]
    assert SPEC.inputs == {"documents": Input("documents")} and SPEC.output == "documents" and SPEC.group == "data"
    pm, errors = create_plugin_manager(autoload=False)
    registry = collect_stages(pm, errors)
    assert registry.stages["minhash_dedup"].plugin == "gristmill_plugins.minhash_dedup"


# ------------------------------------------------------------------------------------------------
# the synthetic crawl
# ------------------------------------------------------------------------------------------------


def _crawl_documents(folder: Path) -> list[dict[str, Any]]:
    """English pages of the synthetic crawl (what crawl_filter keeps) with resiliparse's main-content text."""
    docs = []
    for path in sorted(folder.glob("*.warc.gz")):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                url = record.rec_headers.get_header("WARC-Target-URI")
                if record.rec_type != "response" or url.endswith("robots.txt"):
                    continue
                if parse_synthetic_url(url)["category"] not in ("good", "pii", "exact_dup", "near_dup"):
                    continue
                charset = "iso-8859-1" if "8859" in record.http_headers.get_header("Content-Type") else "utf-8"
                html = record.content_stream().read().decode(charset)
                docs.append({"text": extract_plain_text(html, main_content=True), "id": url, "metadata": {"url": url}})
    return docs


def test_synthetic_crawl_duplicates_are_removed_and_originals_kept(tmp_path: Path) -> None:
    counts = write_synthetic_crawl(tmp_path / "crawl", SyntheticCrawlConfig(pages=240), seed=0)
    docs = _crawl_documents(tmp_path / "crawl")
    assert len(docs) == counts["good"] + counts["pii"] + counts["exact_dup"] + counts["near_dup"]
    result, out = _run(tmp_path, docs)  # default config
    kept = {parse_synthetic_url(d["id"])["page"]: parse_synthetic_url(d["id"]) for d in out}
    pages = [parse_synthetic_url(d["id"]) for d in docs]
    removed = [p for p in pages if p["page"] not in kept]
    assert all(p["category"] in ("exact_dup", "near_dup") for p in removed)  # precision 1
    assert sum(p["category"] == "exact_dup" for p in removed) == counts["exact_dup"]
    assert sum(p["category"] == "near_dup" for p in removed) >= 0.9 * counts["near_dup"]
    assert all(p["dup_of"] in kept for p in removed)  # the original is the one kept
    assert result.counts["duplicates_removed"] == len(removed)
    exact, exact_out = _run(tmp_path, docs, "exact", method="exact")
    assert exact.counts["duplicates_removed"] == counts["exact_dup"]
