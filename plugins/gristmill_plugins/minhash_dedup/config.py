"""Options of the ``minhash_dedup`` stage."""

from typing import Literal

from pydantic import Field, model_validator

from gristmill import StageConfig


class MinHashDedupConfig(StageConfig):
    """Options of the ``minhash_dedup`` stage."""

    method: Literal["minhash", "exact"] = Field(
        "minhash",
        description="minhash: near duplicates via MinHash + LSH; exact: documents whose normalized text is identical.",
    )
    shingle: Literal["word", "char"] = Field("word", description="Shingles are word n-grams or character n-grams.")
    ngram: int = Field(5, ge=1, le=64, description="n of the shingle n-grams (a shorter text is one shingle).")
    lowercase: bool = Field(True, description="Lowercase the text before shingling.")
    strip_punctuation: bool = Field(True, description="Replace punctuation (non-word, non-space) by spaces.")
    unicode_normalization: Literal["NFKC", "NFC", "none"] = Field(
        "NFKC", description="Unicode normal form applied before shingling."
    )
    num_perm: int = Field(112, ge=2, le=1024, description="MinHash permutations (signature length).")
    bands: int = Field(14, ge=1, description="LSH bands (b); ignored when threshold is set.")
    rows: int = Field(8, ge=1, description="Signature values per band (r); bands x rows must be <= num_perm.")
    threshold: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Jaccard threshold; when set, bands/rows are derived from it as datasketch MinHashLSH does "
        "(minimizing false_positive_weight*FP + (1-false_positive_weight)*FN integrated probabilities).",
    )
    false_positive_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight of false positives vs negatives when deriving bands/rows."
    )
    verify: bool = Field(
        False,
        description="Also require estimated Jaccard (signature agreement) >= threshold for a candidate pair "
        "(threshold, or (1/bands)^(1/rows) when unset); false = datasketch/FineWeb semantics.",
    )
    hash_function: Literal["xxh32", "sha1"] = Field(
        "xxh32",
        description="32-bit shingle hash: xxh32 (xxhash.xxh32_intdigest; signatures equal datasketch's with "
        "hashfunc=xxhash.xxh32_intdigest) or sha1 (datasketch's default sha1_hash32: equal to a stock "
        "datasketch MinHash; hashing is ~3x slower).",
    )
    scheme: Literal["affine32", "legacy"] = Field(
        "affine32", description="datasketch permutation scheme: affine32 (datasketch >= 2.0) or legacy (< 2.0)."
    )
    seed: int | None = Field(
        None, ge=0, lt=2**32, description="Permutation seed (np.random.RandomState); None uses the run's seed."
    )
    keep: Literal["first", "longest"] = Field(
        "first",
        description="Document kept per cluster: first (earliest by shard order, position) or longest "
        "(most characters; ties: smallest id, then earliest).",
    )
    line_dedup_min_repeats: int | None = Field(
        None,
        ge=1,
        description="Llama-3-style line dedup, applied before document dedup: remove every line (stripped, "
        "non-blank) that occurs more than this many times in the corpus; None = off.",
    )
    annotate: bool = Field(
        True, description="Add metadata.dedup_cluster / dedup_cluster_size to kept documents that had duplicates."
    )
    shard_size: int = Field(100_000, ge=1, description="Documents per output shard.")
    max_line_bytes: int = Field(
        64 << 20,
        ge=1,
        description="An input line (one document) longer than this many bytes is skipped, a chunk at a time without "
        "reading it whole, and counted (documents_skipped_too_long).",
    )
    min_documents: int = Field(1, ge=0, description="Check: at least this many documents kept.")

    @model_validator(mode="after")
    def _check_bands(self) -> "MinHashDedupConfig":
        if self.threshold is not None and {"bands", "rows"} & self.model_fields_set:
            raise ValueError("set either threshold or bands/rows, not both")
        if self.threshold is None and self.bands * self.rows > self.num_perm:
            raise ValueError(
                f"bands x rows = {self.bands} x {self.rows} = {self.bands * self.rows} exceeds num_perm "
                f"({self.num_perm}); lower bands/rows, raise num_perm or set threshold"
            )
        return self
