"""Test data of the quality stages: spam web text, document shards, and a classifier of Austen vs spam."""

import hashlib
import random
from pathlib import Path

from gristmill.lib.documents import DocumentWriter
from gristmill.testing import artifact_from_dir, run_stage
from gristmill_plugins.quality_classifier import SPEC as CLASSIFIER_SPEC

FAST = {"bucket": 20_000, "dim": 16, "seed": 1}

SPAM = "buy cheap click here free casino bonus win now best price loans offer subscribe deal discount viagra replica"
SPAM_WORDS = SPAM.split()
NAV = ("Home", "About us", "Contact", "Privacy policy", "Terms of use", "Login", "Register", "Sitemap", "Cart")


def spam_texts(n: int, seed: int = 0) -> list[str]:
    """Low-quality web text: keyword stuffing, navigation/cookie boilerplate, repeated lines."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            words = [rng.choice(SPAM_WORDS) for _ in range(rng.randint(30, 90))]
            out.append(" ".join(w.upper() if rng.random() < 0.3 else w for w in words) + "!!!")
        elif kind == 1:
            items = rng.sample(NAV, 6)
            out.append(
                " | ".join(items)
                + "\nWe use cookies to improve your experience. Accept all cookies. "
                + "\n".join(f"{rng.choice(NAV)} » {rng.choice(SPAM_WORDS)}" for _ in range(8))
            )
        else:
            line = f"{rng.choice(SPAM_WORDS).title()} {rng.choice(SPAM_WORDS)} {rng.randint(1, 99)}% off today"
            out.append("\n".join([line] * rng.randint(4, 12)))
    return out


def write_docs(folder: Path, texts: list[str], prefix: str, metadata: list[dict] | None = None):
    with DocumentWriter(folder) as writer:
        for i, text in enumerate(texts):
            writer.write({"text": text, "id": f"{prefix}-{i}", "metadata": dict(metadata[i]) if metadata else {}})
    return artifact_from_dir("documents", folder)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def austen_paragraphs(shared_data: Path) -> list[str]:
    """The paragraphs of Pride and Prejudice longer than 200 characters."""
    text = (shared_data / "pretrain" / "pride_and_prejudice.txt").read_text(encoding="utf-8")
    return [p for p in text.split("\n\n") if len(p) > 200]


def train_austen_classifier(tmp: Path, paragraphs: list[str]):
    """Positives: 300 Pride and Prejudice paragraphs (reference input); negatives: spam crawl."""
    reference = write_docs(tmp / "reference", paragraphs[:300], "pp")
    crawl = write_docs(tmp / "crawl", spam_texts(400), "spam")
    return run_stage(CLASSIFIER_SPEC, tmp / "classifier", FAST, {"documents": crawl, "reference": reference})
