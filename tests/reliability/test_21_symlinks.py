"""Case 21: symbolic links in raw sources. Files are named by their link's path, not the target's: a Hugging Face
cache snapshot (files linked into `blobs/<hash>`) loses no document, a linked WARC is read and counted, a model
folder given as a snapshot works. Links that leave the source's folder are skipped and named (in the source
artifact's manifest and the source observation's metadata) unless the source sets `follow_external_links: true`;
a broken link is skipped and named; a `**` glob over link loops ends."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.dagster.sources import source_version
from gristmill.engine.runner import execute
from gristmill.engine.store import ArtifactStore
from gristmill.pipeline.config import SourceDef, validate_pipeline
from gristmill.pipeline.sources import resolve_source
from tests.reliability.test_04_killed_dagster_run import cli_env
from tests.support import toy_registry

REG = toy_registry(builtins=("gristmill_plugins.crawl_filter",))


def _docs(path: Path, prefix: str, n: int) -> bytes:
    data = "".join(
        json.dumps({"id": f"{prefix}-{i}", "text": f"{prefix} {i}", "metadata": {}}) + "\n" for i in range(n)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    return data.encode()


def _hf_repo(repo: Path, files: dict[str, bytes], real: tuple[str, ...] = ()) -> Path:
    """A Hugging Face cache repository: ``blobs/<sha256>`` and ``snapshots/<rev>/<name>`` → ``../../blobs/<sha256>``
    (relative, as huggingface_hub writes them); names in ``real`` are plain files. Returns the snapshot folder."""
    snapshot = repo / "snapshots" / "0123abcd"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text("0123abcd")
    for name, data in files.items():
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if name in real:
            link.write_bytes(data)
            continue
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def _upper(source: dict, tmp_path: Path):
    pipeline = validate_pipeline(
        {"sources": {"raw": source}, "stages": {"upper": {"stage": "toy_upper", "inputs": {"documents": "raw"}}}},
        "links.yaml",
        REG,
        store=tmp_path / "store",
    )
    return pipeline, execute(pipeline, "upper", ArtifactStore(tmp_path / "store"))


def test_a_hugging_face_dataset_snapshot_loses_no_document(tmp_path):
    shards = {f"data/train-{i:05d}.jsonl": b"" for i in range(7)}
    for i, name in enumerate(shards):
        shards[name] = _docs(tmp_path / "scratch" / name, f"shard{i}", 50)
    snapshot = _hf_repo(tmp_path / "hub" / "datasets--org--corpus", shards, real=("data/train-00000.jsonl",))
    pipeline, run = _upper({"kind": "documents", "path": str(snapshot / "data")}, tmp_path)
    assert run.counts["documents_out"] == 350  # 6 of the 7 shards are links into blobs/
    art = resolve_source("raw", pipeline.sources["raw"])
    assert [f.name for f in art.files] == [f"train-{i:05d}.jsonl" for i in range(7)]
    assert art.path == snapshot / "data" and art.manifest["skipped"] == []


def test_links_leaving_the_source_and_broken_links_are_skipped_and_named(tmp_path):
    data = tmp_path / "data"
    _docs(data / "a.jsonl", "a", 3)
    _docs(tmp_path / "private" / "secret.jsonl", "secret", 2)  # outside the source's folder
    (data / "leak.jsonl").symlink_to(tmp_path / "private" / "secret.jsonl")
    (data / "elsewhere").symlink_to(tmp_path / "private", target_is_directory=True)
    (data / "gone.jsonl").symlink_to(tmp_path / "nothing-here.jsonl")
    _docs(data / "sub" / "b.jsonl", "b", 4)
    (data / "inside.jsonl").symlink_to(Path("sub") / "b.jsonl")  # a link within the folder is read
    pipeline, run = _upper({"kind": "documents", "path": str(data / "**" / "*.jsonl")}, tmp_path)
    assert run.counts["documents_out"] == 3 + 4 + 4
    skipped = resolve_source("raw", pipeline.sources["raw"]).manifest["skipped"]
    assert len(skipped) == 3, skipped
    assert any(s.startswith(f"{data / 'leak.jsonl'}: symbolic link to ") and "outside" in s for s in skipped)
    assert any(s.startswith(f"{data / 'elsewhere'}: symbolic link to ") and "outside" in s for s in skipped)
    assert any(s.startswith(f"{data / 'gone.jsonl'}: broken symbolic link") for s in skipped)
    _, meta = source_version(pipeline.sources["raw"])  # what the source observation shows in the UI
    assert meta["files"] == 3 and meta["skipped"] == 3 and meta["skipped_paths"].data == skipped


def test_follow_external_links_reads_links_leaving_the_source(tmp_path):
    data = tmp_path / "data"
    _docs(data / "a.jsonl", "a", 3)
    _docs(tmp_path / "shared" / "b.jsonl", "b", 2)
    (data / "b.jsonl").symlink_to(tmp_path / "shared" / "b.jsonl")
    source = {"kind": "documents", "path": str(data), "follow_external_links": True}
    pipeline, run = _upper(source, tmp_path)
    assert run.counts["documents_out"] == 5
    assert resolve_source("raw", pipeline.sources["raw"]).manifest["skipped"] == []


def test_a_linked_warc_is_read_and_counted(tmp_path):
    from tests.plugins.test_crawl_filter import _good_warc

    crawl = tmp_path / "crawl"
    crawl.mkdir()
    _good_warc(crawl / "2024-01.warc.gz")
    (crawl / "archive").mkdir()
    _good_warc(crawl / "archive" / "blob-7f3a")  # content-addressed, no suffix
    (crawl / "2024-02.warc.gz").symlink_to(Path("archive") / "blob-7f3a")
    pipeline = validate_pipeline(
        {
            "sources": {"raw": {"kind": "warc", "path": str(crawl / "*.warc.gz")}},
            "stages": {"crawl": {"stage": "crawl_filter", "inputs": {"warcs": "raw"}, "config": {"url_filter": False}}},
        },
        "warc.yaml",
        REG,
        store=tmp_path / "store",
    )
    run = execute(pipeline, "crawl", ArtifactStore(tmp_path / "store"))
    assert run.counts["warc_files"] == 2 and run.counts["warc_files_failed"] == 0, run.counts
    assert run.counts["html_pages"] == 2


def test_a_model_folder_given_as_a_hugging_face_snapshot(tmp_path):
    from gristmill.lib.models import inspect_model_folder, load_causal_lm
    from tests.support.hf_models import make_model_folder

    built = make_model_folder("qwen2", tmp_path / "built")
    files = {p.relative_to(built).as_posix(): p.read_bytes() for p in sorted(built.rglob("*")) if p.is_file()}
    snapshot = _hf_repo(tmp_path / "hub" / "models--org--tiny", files)
    assert (snapshot / "config.json").is_symlink()
    art = resolve_source("base", SourceDef(kind="model", path=str(snapshot)))
    assert art.path == snapshot and art.manifest["skipped"] == []
    folder = inspect_model_folder(art.path)
    assert folder.path == snapshot and all(f.parent == snapshot for f in folder.weight_files)
    model = load_causal_lm(art.path)
    assert model.config.model_type == "qwen2"


LOOPS = """
name: loops
sources:
  raw: {{kind: documents, path: "{data}/**/*.jsonl"}}
stages:
  upper: {{stage: toy_upper, inputs: {{documents: raw}}}}
"""


def test_a_glob_over_link_loops_ends(tmp_path, toy_plugin_site):
    data = tmp_path / "data"
    _docs(data / "a.jsonl", "a", 2)
    _docs(data / "sub" / "b.jsonl", "b", 3)
    (data / "self").symlink_to(".", target_is_directory=True)
    (data / "again").symlink_to(".", target_is_directory=True)
    (data / "sub" / "up").symlink_to("..", target_is_directory=True)
    (tmp_path / "p.yaml").write_text(LOOPS.format(data=data))
    try:
        run = subprocess.run(
            [sys.executable, "-m", "gristmill.cli", "run", "p.yaml", "--store", "st"],
            env=cli_env(toy_plugin_site),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`gristmill run` over a `**` glob with link loops did not end within 90 s")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "documents_out=5" in run.stdout  # each file once, under its real name
    script = "from gristmill.lib.jsonl import matching_files; print(len(matching_files(%r, 'test')))"
    lib = subprocess.run(
        [sys.executable, "-c", script % str(data / "**" / "*.jsonl")], capture_output=True, text=True, timeout=60
    )
    assert lib.returncode == 0 and lib.stdout.strip() == "2", lib.stderr[-2000:]
