"""The ``tokens`` artifact: packed token shards + ``index.json``, its writer and its reader.

Format (version 1)::

    index.json            dtype, seq_len, vocab_size, eos/bos/pad ids, per split: shards and totals
    train/00000.bin       raw little-endian uint16 (vocab_size < 65 536) or uint32 token ids,
    train/00001.bin       each shard holding whole sequences of exactly seq_len tokens
    validation/00000.bin  (every split has its own shard set)

A shard is ``sequences × seq_len × itemsize`` bytes with no header, so ``np.memmap(path, dtype,
shape=(sequences, seq_len))`` reads it. Documents are concatenated (each followed by EOS, optionally
preceded by BOS) and cut into ``seq_len`` chunks, so a document may span sequences; the trailing
remainder of each split is dropped or padded with ``pad_id`` (``index["remainder"]``).

:class:`TokensWriter` writes the format incrementally (bounded memory); :class:`TokenDataset` is the
reader shared by the ``tokens`` stage, its tests and the pretraining loop: a map-style torch
``Dataset`` that is also a resumable iterator (``state_dict`` / ``load_state_dict``).
"""

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from gristmill.errors import StageInputError
from gristmill.stage import Artifact

FORMAT = "gristmill-tokens"
FORMAT_VERSION = 1
INDEX_NAME = "index.json"
SPLITS = ("train", "validation")
UINT16_VOCAB_LIMIT = 65_536  # vocab_size below this → uint16 shards, else uint32
DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}


class TokensFormatError(StageInputError):
    """A ``tokens`` artifact that cannot be read: missing/corrupt index or shard; the message names the file."""


def dtype_for_vocab(vocab_size: int) -> str:
    """``"uint16"`` when every id fits (vocab_size < 65 536), else ``"uint32"``."""
    if vocab_size <= 0:
        raise StageInputError(f"vocab_size must be positive, got {vocab_size}")
    if vocab_size >= 2**32:
        raise StageInputError(f"vocab_size {vocab_size} does not fit in uint32 token ids")
    return "uint16" if vocab_size < UINT16_VOCAB_LIMIT else "uint32"


def _root_of(source: "str | os.PathLike[str] | Artifact") -> Path:
    return Path(source.path if isinstance(source, Artifact) else source)


# --------------------------------------------------------------------------------------------------
# Writer


class _SplitWriter:
    """Packs one split's token stream into ``seq_len`` sequences and writes shards as they fill."""

    def __init__(self, folder: Path, rel: str, seq_len: int, dtype: np.dtype, shard_sequences: int) -> None:
        self.folder, self.rel = folder, rel
        self.seq_len, self.dtype, self.shard_sequences = seq_len, dtype, shard_sequences
        self.flush_tokens = max(seq_len, 1 << 16)  # write in ~64k-token chunks
        self.pending: list[np.ndarray] = []
        self.pending_len = 0
        self.shards: list[dict[str, Any]] = []
        self._file: Any = None
        self.documents = 0
        self.bytes = 0
        self.document_tokens = 0
        self.dropped_tokens = 0
        self.padding_tokens = 0

    def add(self, ids: np.ndarray, documents: int, nbytes: int) -> None:
        if len(ids):
            self.pending.append(ids)
            self.pending_len += len(ids)
        self.documents += documents
        self.bytes += nbytes
        self.document_tokens += len(ids)
        if self.pending_len >= self.flush_tokens:
            self._flush()

    def _flush(self) -> None:
        """Write every whole sequence pending; keep the remainder (< seq_len tokens)."""
        full = self.pending_len // self.seq_len * self.seq_len
        if not full:
            return
        data = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        rest = data[full:]
        self.pending, self.pending_len = ([rest.copy()], len(rest)) if len(rest) else ([], 0)
        self._write(data[:full])

    def _write(self, data: np.ndarray) -> None:
        pos = 0
        while pos < len(data):
            if self._file is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                name = f"{len(self.shards):05d}.bin"
                self._file = open(self.folder / name, "wb")  # noqa: SIM115 - closed when full or in close()
                self.shards.append({"file": f"{self.rel}/{name}", "sequences": 0})
            shard = self.shards[-1]
            room = (self.shard_sequences - shard["sequences"]) * self.seq_len
            chunk = data[pos : pos + room]
            self._file.write(chunk.tobytes())
            shard["sequences"] += len(chunk) // self.seq_len
            pos += len(chunk)
            if shard["sequences"] == self.shard_sequences:
                self._file.close()
                self._file = None

    def close(self, remainder: str, pad_id: int | None) -> dict[str, Any]:
        self._flush()
        if self.pending_len:
            if remainder == "pad":
                pad = self.seq_len - self.pending_len
                self.pending.append(np.full(pad, pad_id, dtype=self.dtype))
                self.pending_len += pad
                self.padding_tokens += pad
                self._flush()
            else:
                self.dropped_tokens += self.pending_len
                self.pending, self.pending_len = [], 0
        if self._file is not None:
            self._file.close()
            self._file = None
        sequences = sum(s["sequences"] for s in self.shards)
        return {
            "shards": self.shards,
            "sequences": sequences,
            "tokens": sequences * self.seq_len,
            "documents": self.documents,
            "bytes": self.bytes,
            "document_tokens": self.document_tokens,
            "dropped_tokens": self.dropped_tokens,
            "padding_tokens": self.padding_tokens,
        }


class TokensWriter:
    """Writes a ``tokens`` artifact into ``folder``: call :meth:`add` per document (or per batch of
    documents, ids already concatenated with their EOS/BOS), then :meth:`close` to write the index.

    Memory is bounded: at most ~64k pending tokens per split plus one write chunk.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        seq_len: int,
        vocab_size: int,
        eos_id: int,
        pad_id: int | None = None,
        bos_id: int | None = None,
        remainder: Literal["drop", "pad"] = "drop",
        shard_sequences: int = 65_536,
        splits: Sequence[str] = SPLITS,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if seq_len < 1 or shard_sequences < 1:
            raise StageInputError(f"seq_len ({seq_len}) and shard_sequences ({shard_sequences}) must be positive")
        if remainder not in ("drop", "pad"):
            raise StageInputError(f"remainder must be 'drop' or 'pad', got {remainder!r}")
        if remainder == "pad" and pad_id is None:
            raise StageInputError("remainder='pad' needs a pad_id (the tokenizer has no pad token)")
        for name, tid in (("eos_id", eos_id), ("pad_id", pad_id), ("bos_id", bos_id)):
            if tid is not None and not 0 <= tid < vocab_size:
                raise StageInputError(f"{name} {tid} is outside the vocabulary (size {vocab_size})")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.seq_len, self.vocab_size = seq_len, vocab_size
        self.dtype_name = dtype_for_vocab(vocab_size)
        self.dtype = DTYPES[self.dtype_name]
        self.eos_id, self.pad_id, self.bos_id = eos_id, pad_id, bos_id
        self.remainder = remainder
        self.metadata = dict(metadata or {})
        self._splits = {s: _SplitWriter(self.folder / s, s, seq_len, self.dtype, shard_sequences) for s in splits}
        self.index: dict[str, Any] | None = None

    def add(self, split: str, ids: "np.ndarray | Sequence[int]", documents: int = 1, nbytes: int = 0) -> None:
        """Append token ids (one or more whole documents with their EOS) to ``split``'s stream."""
        if self.index is not None:
            raise RuntimeError("TokensWriter is closed")
        if split not in self._splits:
            raise KeyError(f"unknown split {split!r}; splits: {', '.join(self._splits)}")
        arr = np.asarray(ids)
        if arr.size:
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise StageInputError(
                    f"token ids must be a 1-d integer sequence, got {arr.dtype} with shape {arr.shape}"
                )
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= self.vocab_size:
                raise StageInputError(
                    f"token id {hi if hi >= self.vocab_size else lo} is outside [0, {self.vocab_size})"
                )
        self._splits[split].add(arr.astype(self.dtype, copy=False), documents, nbytes)

    def close(self) -> dict[str, Any]:
        """Flush remainders (dropped or padded), close shards, write ``index.json``; returns the index."""
        if self.index is not None:
            return self.index
        splits = {name: w.close(self.remainder, self.pad_id) for name, w in self._splits.items()}
        self.index = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "dtype": self.dtype_name,
            "byte_order": "little",
            "seq_len": self.seq_len,
            "vocab_size": self.vocab_size,
            "eos_id": self.eos_id,
            "bos_id": self.bos_id,
            "pad_id": self.pad_id,
            "remainder": self.remainder,
            "splits": splits,
            **({"metadata": self.metadata} if self.metadata else {}),
        }
        text = json.dumps(self.index, indent=2, sort_keys=False) + "\n"
        (self.folder / INDEX_NAME).write_text(text, encoding="utf-8")
        return self.index

    def __enter__(self) -> "TokensWriter":
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:  # do not write an index for a failed run; just release the files
            for w in self._splits.values():
                if w._file is not None:
                    w._file.close()
                    w._file = None


# --------------------------------------------------------------------------------------------------
# Reader


_REQUIRED = {"dtype": str, "seq_len": int, "vocab_size": int, "eos_id": int, "splits": dict}


def read_index(source: "str | os.PathLike[str] | Artifact") -> dict[str, Any]:
    """The parsed, checked ``index.json`` of a tokens artifact (directory, or the index file itself)."""
    root = _root_of(source)
    path = root if root.name == INDEX_NAME and root.is_file() else root / INDEX_NAME
    if not path.is_file():
        raise TokensFormatError(f"{path}: missing {INDEX_NAME} (not a tokens artifact?)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokensFormatError(f"{path}: corrupt {INDEX_NAME}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(index, dict):
        raise TokensFormatError(f"{path}: corrupt {INDEX_NAME}: expected a JSON object")
    version = index.get("version", FORMAT_VERSION)
    if index.get("format", FORMAT) != FORMAT or not isinstance(version, int) or version > FORMAT_VERSION:
        raise TokensFormatError(
            f"{path}: unsupported format {index.get('format')!r} version {index.get('version')!r} "
            f"(this reader: {FORMAT} ≤ {FORMAT_VERSION})"
        )
    for key, typ in _REQUIRED.items():
        if not isinstance(index.get(key), typ) or isinstance(index.get(key), bool):
            raise TokensFormatError(f"{path}: corrupt {INDEX_NAME}: {key!r} missing or not {typ.__name__}")
    if index["dtype"] not in DTYPES:
        raise TokensFormatError(f"{path}: unknown dtype {index['dtype']!r} (expected one of {sorted(DTYPES)})")
    if index["seq_len"] < 1:
        raise TokensFormatError(f"{path}: seq_len must be positive, got {index['seq_len']}")
    if index["dtype"] == "uint16" and index["vocab_size"] > UINT16_VOCAB_LIMIT:
        raise TokensFormatError(f"{path}: vocab_size {index['vocab_size']} does not fit dtype uint16")
    for name, split in index["splits"].items():
        shards = split.get("shards") if isinstance(split, dict) else None
        ok = isinstance(shards, list) and all(
            isinstance(s, dict) and isinstance(s.get("file"), str) and isinstance(s.get("sequences"), int)
            for s in shards
        )
        if not ok:
            raise TokensFormatError(f"{path}: corrupt {INDEX_NAME}: split {name!r} needs shards [{{file, sequences}}]")
    return index


class TokenDataset(Dataset):
    """One split of a ``tokens`` artifact as a torch ``Dataset`` of ``seq_len`` ``LongTensor`` s.

    Map-style: ``len(ds)`` sequences, ``ds[i]`` reads sequence ``i`` through ``np.memmap`` (shards are
    opened lazily; pickling, e.g. to DataLoader workers, sends no data). Iterating (``for x in ds``)
    yields the rest of the current epoch in order (or in a permutation seeded by ``seed`` and the
    epoch when ``shuffle``) and keeps an exact position: ``state_dict()`` after ``k`` items holds
    ``position == k`` (the next sequence to yield), and ``load_state_dict`` resumes there. Once an
    epoch is exhausted the next iteration starts epoch ``epoch + 1``.

    Opening checks the index and that every shard of the split exists and holds exactly the
    sequences the index says; a problem raises :class:`TokensFormatError` naming the file.
    """

    def __init__(
        self,
        source: "str | os.PathLike[str] | Artifact",
        split: str = "train",
        *,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        self.root = _root_of(source)
        if self.root.name == INDEX_NAME:
            self.root = self.root.parent
        self.index = read_index(self.root)
        if split not in self.index["splits"]:
            known = ", ".join(self.index["splits"]) or "none"
            raise TokensFormatError(f"{self.root / INDEX_NAME}: no split {split!r} (splits: {known})")
        self.split = split
        self.seq_len: int = self.index["seq_len"]
        self.dtype = DTYPES[self.index["dtype"]]
        self.vocab_size: int = self.index["vocab_size"]
        self.eos_id: int = self.index["eos_id"]
        self.pad_id: int | None = self.index.get("pad_id")
        self.bos_id: int | None = self.index.get("bos_id")
        self.shuffle, self.seed = shuffle, seed
        self.shard_paths: list[Path] = []
        counts: list[int] = []
        row_bytes = self.seq_len * self.dtype.itemsize
        for shard in self.index["splits"][split]["shards"]:
            path = self.root / shard["file"]
            if not path.is_file():
                raise TokensFormatError(f"{path}: shard listed in {INDEX_NAME} is missing")
            size = path.stat().st_size
            if size % row_bytes:
                raise TokensFormatError(
                    f"{path}: size {size} bytes is not a multiple of seq_len × itemsize = "
                    f"{self.seq_len} × {self.dtype.itemsize} = {row_bytes} (truncated or corrupt shard)"
                )
            if size // row_bytes != shard["sequences"]:
                raise TokensFormatError(
                    f"{path}: holds {size // row_bytes} sequences but {INDEX_NAME} says {shard['sequences']}"
                )
            self.shard_paths.append(path)
            counts.append(shard["sequences"])
        self._ends = np.cumsum(np.asarray(counts, dtype=np.int64))
        self._len = int(self._ends[-1]) if len(counts) else 0
        self._maps: dict[int, np.memmap] = {}
        self.epoch = 0
        self.position = 0
        self._order: tuple[int, np.ndarray] | None = None

    # -- map-style access
    def __len__(self) -> int:
        return self._len

    @property
    def num_tokens(self) -> int:
        return self._len * self.seq_len

    def _shard(self, k: int) -> np.memmap:
        mm = self._maps.get(k)
        if mm is None:
            rows = int(self._ends[k] - (self._ends[k - 1] if k else 0))
            mm = np.memmap(self.shard_paths[k], dtype=self.dtype, mode="r", shape=(rows, self.seq_len))
            self._maps[k] = mm
        return mm

    def array(self, i: int) -> np.ndarray:
        """Sequence ``i`` as a numpy array of the on-disk dtype (a view of the memmap)."""
        n = self._len
        if not -n <= i < n:
            raise IndexError(f"sequence {i} out of range for {self.split} split with {n} sequences")
        i %= n
        k = int(np.searchsorted(self._ends, i, side="right"))
        start = int(self._ends[k - 1]) if k else 0
        return self._shard(k)[i - start]

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.array(int(i)).astype(np.int64))

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"] = {}
        state["_order"] = None
        return state

    # -- resumable iteration
    def order(self, epoch: int) -> np.ndarray | None:
        """Sequence indices of ``epoch`` in iteration order (``None``: 0…len-1, no shuffling)."""
        if not self.shuffle:
            return None
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = (epoch, rng.permutation(self._len))
        return self._order[1]

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self._len and self.position >= self._len:  # the previous epoch was finished
            self.epoch += 1
            self.position = 0
        while self.position < self._len:
            order = self.order(self.epoch)
            i = self.position if order is None else int(order[self.position])
            item = self[i]
            self.position += 1
            yield item

    def state_dict(self) -> dict[str, Any]:
        """The exact iteration position: ``position`` is the index (in the epoch's order) of the next sequence."""
        return {
            "split": self.split,
            "num_sequences": self._len,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "epoch": self.epoch,
            "position": self.position,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_dict`; a state from another split, size or shuffling raises ``ValueError``."""
        mine = self.state_dict()
        for key in ("split", "num_sequences", "shuffle", "seed"):
            if key in state and state[key] != mine[key]:
                raise TokensFormatError(f"state_dict {key}={state[key]!r} does not match this dataset's {mine[key]!r}")
        position, epoch = int(state["position"]), int(state.get("epoch", 0))
        if not 0 <= position <= self._len or epoch < 0:
            raise TokensFormatError(f"state_dict position {position} out of range [0, {self._len}] (epoch {epoch})")
        self.epoch, self.position = epoch, position

    def __repr__(self) -> str:
        return (
            f"TokenDataset({str(self.root)!r}, split={self.split!r}, sequences={self._len}, "
            f"seq_len={self.seq_len}, dtype={self.dtype.name})"
        )
