"""The token data of ``long_context``: re-chunked copies of a tokens artifact, filler text for needle haystacks."""

import math
import os
import shutil
from pathlib import Path

from gristmill import Artifact
from gristmill_plugins.long_context.config import LongContextInputError


def rechunk(src: Path, split: str, dest: Path, seq_len: int, max_sequences: int | None = None) -> Path:
    """``split`` of the tokens artifact ``src`` re-packed into ``seq_len`` rows (a tokens folder with that one
    split) at ``dest``; reused when ``dest`` is complete (its index exists)."""
    from gristmill.lib.tokens import TokenDataset, TokensWriter

    if (dest / "index.json").is_file():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    data = TokenDataset(src, split)
    idx = data.index
    with TokensWriter(
        tmp,
        seq_len=seq_len,
        vocab_size=idx["vocab_size"],
        eos_id=idx["eos_id"],
        pad_id=idx.get("pad_id"),
        bos_id=idx.get("bos_id"),
        splits=(split,),
    ) as writer:
        per_row = max(data.seq_len // seq_len, 1)
        rows = len(data) if max_sequences is None else min(len(data), math.ceil(max_sequences / per_row) + 1)
        for i in range(rows):
            writer.add(split, data.array(i), documents=0)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


def filler_ids(source: Artifact, longest: int, trials: int) -> list[int]:
    """A token stream of real text for needle haystacks: validation rows first, then train rows."""
    from gristmill.lib.tokens import TokenDataset, read_index

    want = longest * (trials + 1)
    out: list[int] = []
    splits = read_index(source)["splits"]
    for split in ("validation", "train"):
        if not splits.get(split, {}).get("sequences"):
            continue
        data = TokenDataset(source, split)
        for i in range(len(data)):
            out.extend(int(t) for t in data.array(i))
            if len(out) >= want:
                return out
    if len(out) < longest:
        raise LongContextInputError(
            f"long_context: {source.describe()} holds {len(out)} tokens, too few for a needle haystack of {longest}"
        )
    return out
