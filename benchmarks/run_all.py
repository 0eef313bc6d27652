"""Run every benchmark script and print one table: gristmill against the bare libraries, measured in the same run.

Usage::

    .venv/bin/python benchmarks/run_all.py [--quick] [--only NAME ...] [--markdown] [--logs DIR] [--verbose]

Each script in ``benchmarks/`` runs as its own process (``sys.executable benchmarks/NAME.py ...``, offline: the
``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE`` and ``HF_HUB_DISABLE_TELEMETRY`` variables set), one after the other,
so they do not compete for the CPU. Its stdout is parsed by a parser written for that script (the lines it prints,
matched explicitly; a line that is missing makes the script a failed row, never a silently empty one) into rows of

    benchmark | gristmill | bare library | ratio | goal / notes

where **ratio** is always *gristmill's time ÷ the bare library's time* for the same work (throughputs are inverted),
so above 1 means gristmill is slower and below 1 faster. A row whose goal is stated (by the script or the issue)
and missed is flagged ``OVER GOAL``. A script whose input data (``../shared/data``) is absent is a "skipped" row;
one that exits non-zero, times out or prints output its parser cannot read is a "FAILED" row with the reason, and
this script then exits 1. The wall time of every script is printed below the table.

Without ``--quick`` every script runs with its own defaults, except ``dagster_ops.py --repeat 3`` (its headline
row, the Dagster overhead, is noisy at ±10 %); that takes 30–60 minutes on 2 cores. ``--quick`` passes each
script smaller sizes, one repeat and no Ray: about 10 minutes on 2 cores, most of it fixed costs the scripts do
not scale down (``post_training.py`` pretrains its policy for 150 steps, ``crawl.py`` warms up 4 times); its
ratios are noise, it checks that everything runs and parses. ``--markdown`` prints the tables as Markdown (what
``docs/performance.md`` holds).
"""

import argparse
import contextlib
import dataclasses
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
NUM = r"([0-9][0-9,]*\.?[0-9]*)"  # 12  12.5  12,345  (thousands separators allowed)


class ParseError(Exception):
    """The script's output lacks a line (or a field) its parser expects."""


@dataclasses.dataclass
class Row:
    benchmark: str
    gristmill: str  # the measured value with its unit, e.g. "19.1 s" or "12,345 tok/s"
    bare: str
    ratio: float | None  # gristmill time / bare time; None where there is no baseline
    limit: float | None = None  # the goal: ratio <= limit
    goal: str = ""  # the goal as people state it (e.g. "≥ 0.95× tok/s")
    notes: str = ""

    @property
    def over_goal(self) -> bool:
        return self.limit is not None and self.ratio is not None and self.ratio > self.limit


@dataclasses.dataclass
class Outcome:
    name: str
    status: str  # ok | goal missed | skipped | FAILED
    wall_s: float
    rows: list[Row]
    reason: str = ""


@dataclasses.dataclass
class Bench:
    name: str
    script: str
    what: str  # one line: gristmill vs which bare library
    args: list[str]
    quick_args: list[str]
    parse: Callable[[str], list[Row]]
    needs: tuple[str, ...] = ()  # globs under ../shared/data that must match at least one file
    # exit codes that still mean "measured; a goal the script checks was missed" (output complete)
    goal_rcs: tuple[int, ...] = ()


# --------------------------------------------------------------------------------------------------
# Parsing helpers


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _search(pattern: str, out: str, what: str) -> re.Match[str]:
    match = re.search(pattern, out, re.MULTILINE)
    if match is None:
        raise ParseError(f"no {what} line (pattern {pattern!r})")
    return match


def _table_row(out: str, label: str, columns: int) -> list[float]:
    """The numbers after ``label`` at the start of a line of a fixed-width table (``columns`` of them)."""
    pattern = rf"^{re.escape(label)}\s+" + r"\s+".join([NUM] * columns) + r"(?=\s|×|$)"
    match = re.search(pattern, out, re.MULTILINE)
    if match is None:
        raise ParseError(f"no table line {label!r} followed by {columns} numbers")
    return [_num(g) for g in match.groups()]


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 1 else f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def _rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.3g} {unit}"


def _ratio(r: float | None) -> str:
    return "" if r is None else f"{r:#.3g}"  # 3 significant digits: 1.06, 0.103, 0.0229, 14.5


# --------------------------------------------------------------------------------------------------
# One parser per script: what it prints is in the script's main()


def parse_crawl(out: str) -> list[Row]:
    """crawl.py prints a table ``variant  median s  pages/s  note``, medians of --repeat runs."""
    bare, _ = _table_row(out, "bare datatrove (trafilatura)", 2)
    stage, _ = _table_row(out, "crawl_filter stage (trafilatura)", 2)
    dagster, _ = _table_row(out, "gristmill via Dagster + store", 2)
    hit, _ = _table_row(out, "same, cache hit", 2)
    resi, _ = _table_row(out, "crawl_filter stage (resiliparse)", 2)
    pages = _search(r"^(\d+) HTML pages in, (\d+) documents kept.*stage output == bare output: (\w+)", out, "pages")
    best = _search(r"on medians, ([+-][0-9.]+)% on best runs", out, "best-run overhead").group(1)
    identical = "identical output" if pages.group(3) == "True" else "OUTPUT DIFFERS"
    return [
        Row(
            "crawl: `crawl_filter` stage (trafilatura)",
            _s(stage),
            _s(bare),
            stage / bare,
            1.05,
            "≤ 1.05",
            f"bare: datatrove pipeline on `LocalPipelineExecutor`; {pages.group(1)} pages; {identical}; "
            f"best runs {best} %",
        ),
        Row(
            "crawl: same, materialized by Dagster into the store",
            _s(dagster),
            _s(bare),
            dagster / bare,
            1.05,
            "≤ 1.05",
            f"cache hit re-run {_s(hit)}",
        ),
        Row(
            "crawl: `crawl_filter` stage, resiliparse extractor",
            _s(resi),
            _s(bare),
            resi / bare,
            None,
            "",
            f"vs bare trafilatura: extractor choice, {stage / resi:.1f}× faster than the trafilatura stage",
        ),
    ]


def _dedup_block(out: str, label: str) -> str:
    """The lines from ``[label]`` to the next ``[...]`` header (or the end)."""
    start = _search(rf"^\[{re.escape(label)}\] ", out, f"[{label}] header").start()
    end = re.compile(r"^\[", re.MULTILINE).search(out, start + 1)
    return out[start : end.start() if end else len(out)]


def parse_dedup(out: str) -> list[Row]:
    """dedup.py prints one block per config: ``[label] ...``, ``stage: X s``, ``datasketch: Y s``, agreements."""
    rows = []
    corpus = _search(r"^corpus: (\d+) documents", out, "corpus").group(1)
    goals = {"default": (0.1, "≥ 10× faster (≤ 0.10)")}
    names = {"stock-sha1": "sha1, stock `MinHash`", "default": "default config (xxh32)", "edits": "`edits` config"}
    for label in ("stock-sha1", "default", "edits"):
        block = _dedup_block(out, label)
        stage = _num(_search(rf"^\s+stage:\s+{NUM} s", block, f"[{label}] stage").group(1))
        bare = _num(_search(rf"^\s+datasketch:\s+{NUM} s", block, f"[{label}] datasketch").group(1))
        agree = _search(r"agreement ([0-9.]+)%; removed documents agreement ([0-9.]+)%", block, f"[{label}] pairs")
        notes = f"{bare / stage:.1f}× faster; candidate pairs agree {agree.group(1)} %"
        if label == "edits":
            pr = _search(r"planted pairs: precision ([0-9.]+), recall ([0-9.]+)", block, "[edits] planted")
            notes += f"; planted pairs P {pr.group(1)} / R {pr.group(2)} (goal ≥ 0.95 / ≥ 0.94)"
        if label == "stock-sha1":
            notes += f"; {corpus} documents"
        limit, goal = goals.get(label, (None, ""))
        rows.append(
            Row(
                f"dedup: `minhash_dedup` stage, {names[label]}",
                _s(stage),
                _s(bare),
                stage / bare,
                limit,
                goal,
                f"bare: datasketch `MinHash` + `MinHashLSH` loop; {notes}",
            )
        )
    return rows


def parse_tokens(out: str) -> list[Row]:
    """tokens.py prints a table ``variant  median s  MB/s  stage ×  best s  stage ×  CPU s`` (medians)."""
    stage = _table_row(out, "tokens stage", 6)
    bare = _table_row(out, "bare encode_batch", 6)
    fast = _table_row(out, "bare encode_batch_fast + ids", 6)
    mb = _search(r"^(\d+) documents, ([0-9.]+) MB of text", out, "corpus")
    _search(r"^identical ids: stage output == bare encode_batch ids", out, "identical-ids check")
    return [
        Row(
            "tokenize: `tokens` stage vs `encode_batch`",
            _s(stage[0]),
            _s(bare[0]),
            stage[0] / bare[0],
            1.0,
            "≤ 1.0",
            f"stage reads gzipped JSONL, packs, writes shards; bare: texts in memory; {mb.group(2)} MB; identical ids",
        ),
        Row(
            "tokenize: same vs `encode_batch_fast` + `.ids`",
            _s(stage[0]),
            _s(fast[0]),
            stage[0] / fast[0],
            None,
            "",
            "the call the stage makes, ids taken",
        ),
    ]


def parse_pretrain(out: str) -> list[Row]:
    """pretrain.py prints a table ``variant  tokens/s  × bare  best  × bare  tok/CPU-s  × bare  setup  ckpt``."""
    bare = _table_row(out, "bare", 8)
    rows = []
    for variant in ("gristmill (lean)", "gristmill (default metrics)"):
        v = _table_row(out, variant, 8)
        losses = _search(rf"^losses {re.escape(variant)} vs bare: (.+)$", out, f"{variant} losses").group(1)
        rows.append(
            Row(
                f"pretrain: `train()` {variant.removeprefix('gristmill ')} vs a hand-written torch loop",
                _rate(v[0], "tok/s"),
                _rate(bare[0], "tok/s"),
                bare[0] / v[0],
                1 / 0.95,
                "≥ 0.95× tok/s (≤ 1.053)",
                f"tokens per CPU-second {v[5]:.3f}× bare; best run {v[3]:.3f}×; losses {losses}",
            )
        )
    return rows


def parse_quality(out: str) -> list[Row]:
    """quality.py prints a Markdown table: ``| training ... | N/s (X s) | N/s (Y s) | R× time |`` and inference."""
    seconds = rf"\({NUM} s\)"
    train = _search(
        rf"^\| training, examples/s \((\d+) examples, 1 thread\) \| [^|]*{seconds} \| [^|]*{seconds} \|",
        out,
        "training",
    )
    infer = _search(
        rf"^\| inference, documents/s \((\d+) documents\) \| [^|]*{seconds} \| [^|]*{seconds} \|", out, "inference"
    )
    auc = _search(r"^held-out AUC, DCLM human labels[^:]*: ([0-9.]+ ± [0-9.]+)", out, "DCLM AUC").group(1)
    ts, tb = _num(train.group(2)), _num(train.group(3))
    fs, fb = _num(infer.group(2)), _num(infer.group(3))
    return [
        Row(
            "quality: `quality_classifier` training",
            _s(ts),
            _s(tb),
            ts / tb,
            None,
            "",
            f"bare: `fasttext.train_supervised` on the written file; {train.group(1)} examples; "
            f"DCLM held-out AUC {auc}",
        ),
        Row(
            "quality: `quality_filter` inference",
            _s(fs),
            _s(fb),
            fs / fb,
            None,
            "",
            f"bare: `model.predict` on normalized texts in memory; {infer.group(1)} documents",
        ),
    ]


def parse_post_training(out: str) -> list[Row]:
    """post_training.py prints ``what  gristmill  bare  ratio`` with steps/s and samples/s (ratio = throughputs)."""
    sft = _table_row(out, "SFT steps/s (trainer.train)", 3)
    dpo = _table_row(out, "DPO steps/s (trainer.train)", 3)
    gen = _table_row(out, "generation samples/s: batch 64 vs batch 1", 3)
    totals = _search(
        r"^stage totals: sft ([0-9.]+)s \((\d+) steps.*; dpo ([0-9.]+)s \(sampling (\d+)×(\d+), (\d+) pairs",
        out,
        "totals",
    )
    sft_total, steps, dpo_total, prompts, k, pairs = totals.groups()
    sft_note = f"`trainer.train()` only, {steps} steps; the whole stage {sft_total} s (scoring, save, reload)"
    sampled = f"{pairs} pair{'' if pairs == '1' else 's'} the stage sampled ({prompts}×{k})"
    dpo_note = f"`trainer.train()` only, on the {sampled}; the whole stage {dpo_total} s"
    return [
        Row(
            "post-training: `sft` stage vs TRL `SFTTrainer`",
            _rate(sft[0], "steps/s"),
            _rate(sft[1], "steps/s"),
            sft[1] / sft[0],
            None,
            "",
            sft_note,
        ),
        Row(
            "post-training: `dpo` stage vs TRL `DPOTrainer`",
            _rate(dpo[0], "steps/s"),
            _rate(dpo[1], "steps/s"),
            dpo[1] / dpo[0],
            None,
            "",
            dpo_note,
        ),
        Row(
            "post-training: `generate` batch 64 vs one prompt at a time",
            _rate(gen[0], "samples/s"),
            _rate(gen[1], "samples/s"),
            gen[1] / gen[0],
            None,
            "",
            "not a bare library: batching vs no batching",
        ),
    ]


def parse_dagster_ops(out: str) -> list[Row]:
    """dagster_ops.py prints ``measurement  gristmill  baseline  ratio`` and the runs of the first row."""
    dag, runner, _ = _table_row(out, "data stages: Dagster vs runner alone (s)", 3)
    noop, full, _ = _table_row(out, "no-op re-run through Dagster (s)", 3)
    tick = _num(_search(rf"^automation tick, demo graph \(s\)\s+{NUM}", out, "automation tick").group(1))
    obs = _search(rf"^observe (\d+) source files \(s\)\s+{NUM}\s+{NUM}", out, "observe")
    runs = _search(r"^runs: dagster (\[.*\]), runner (\[.*\])$", out, "runs").group(1, 2)
    o, stat = _num(obs.group(2)), _num(obs.group(3))
    return [
        Row(
            "Dagster overhead: demo's data stages, `materialize` vs runner",
            _s(dag),
            _s(runner),
            dag / runner,
            1.10,
            "≤ 1.10",
            f"same stage functions and store commits without Dagster; runs {runs[0]} vs {runs[1]}",
        ),
        Row(
            "Dagster: no-op re-run (every stage a cache hit)",
            _s(noop),
            _s(full),
            noop / full,
            None,
            "",
            "baseline: the full materialization",
        ),
        Row(
            "Dagster: one automation tick over the demo graph",
            _s(tick),
            "",
            None,
            None,
            "",
            "the `<pipeline>_automation` sensor's work every 30 s",
        ),
        Row(
            f"Dagster: observe-sources tick, {obs.group(1)} files",
            _s(o),
            _s(stat),
            o / stat,
            None,
            "",
            "bare: `os.stat` of the files",
        ),
    ]


def parse_executors(out: str) -> list[Row]:
    """executors.py prints ``variant  median s  vs bare`` (Ray rows only when Ray is installed)."""
    kit = _table_row(out, "kit keyword filter (stage)", 2)[0]
    lam = _table_row(out, "datatrove LambdaFilter (bare)", 2)[0]
    local = _table_row(out, "crawl_filter local (stage)", 2)[0]
    lpe = _table_row(out, "datatrove LocalPipelineExecutor (bare)", 2)[0]
    docs = _search(r"^kit filter: (\d+) documents", out, "kit filter").group(1)
    rows = [
        Row(
            "executors: `gristmill.lib.kit` filter stage vs `LambdaFilter`",
            _s(kit),
            _s(lam),
            kit / lam,
            None,
            "",
            f"datatrove reader → `LambdaFilter` → writer; {docs} documents, 4 tasks",
        ),
        Row(
            "executors: `crawl_filter` on local vs `LocalPipelineExecutor`",
            _s(local),
            _s(lpe),
            local / lpe,
            None,
            "",
            "resiliparse, 4 tasks, 2 workers",
        ),
    ]
    if re.search(r"^crawl_filter ray \(stage\)", out, re.MULTILINE):
        ray = _table_row(out, "crawl_filter ray (stage)", 2)[0]
        rpe = _table_row(out, "datatrove RayPipelineExecutor (bare)", 2)[0]
        start = _search(r"local Ray start-up \(2 CPUs\): ([0-9.]+) s", out, "Ray start-up").group(1)
        same = _search(r"stage output on ray == on local, byte for byte: (\w+)", out, "ray output check").group(1)
        rows.append(
            Row(
                "executors: `crawl_filter` on Ray vs `RayPipelineExecutor`",
                _s(ray),
                _s(rpe),
                ray / rpe,
                None,
                "",
                f"local Ray, 2 CPUs (start-up {start} s apart); output identical to local: {same}",
            )
        )
    else:
        note = "not run: --no-ray (passed by --quick) or Ray not installed"
        rows.append(Row("executors: `crawl_filter` on Ray", "", "", None, None, "", note))
    return rows


BENCHES = [
    Bench(
        "crawl",
        "crawl.py",
        "crawl_filter vs datatrove run bare (LocalPipelineExecutor); via Dagster + store",
        [],
        ["--repeat", "1"],
        parse_crawl,
        needs=("web/*.warc.gz",),
    ),
    Bench(
        "dedup",
        "dedup.py",
        "minhash_dedup vs a datasketch MinHash + MinHashLSH loop",
        [],
        ["--copies", "1", "--repeat", "1"],
        parse_dedup,
        needs=("pretrain/*.txt",),
        goal_rcs=(1,),
    ),
    Bench(
        "tokens",
        "tokens.py",
        "tokens stage vs tokenizers' encode_batch",
        [],
        ["--copies", "1", "--repeat", "1"],
        parse_tokens,
        needs=("pretrain/tinyshakespeare.txt", "pretrain/pride_and_prejudice.txt"),
    ),
    Bench(
        "pretrain",
        "pretrain.py",
        "gristmill.lib.train.train vs a hand-written torch loop",
        [],
        ["--quick"],
        parse_pretrain,
    ),
    Bench(
        "post_training",
        "post_training.py",
        "sft / dpo stages vs TRL's SFTTrainer / DPOTrainer",
        [],
        ["--steps", "10"],
        parse_post_training,
    ),
    Bench(
        "quality",
        "quality.py",
        "quality_classifier / quality_filter vs bare fastText",
        [],
        ["--repeat", "1"],
        parse_quality,
        needs=("MANIFEST.md", "quality/*.jsonl", "pretrain/*.txt"),
    ),
    Bench(
        "dagster_ops",
        "dagster_ops.py",
        "the demo's data stages through Dagster vs gristmill's runner alone",
        ["--repeat", "3"],
        ["--repeat", "1", "--files", "2000"],
        parse_dagster_ops,
    ),
    Bench(
        "executors",
        "executors.py",
        "kit filter vs LambdaFilter; crawl_filter on local/Ray vs datatrove's executors",
        [],
        ["--repeat", "1", "--docs", "10000", "--no-ray"],
        parse_executors,
        needs=("web/*.warc.gz", "pretrain/*.txt"),
    ),
]


# --------------------------------------------------------------------------------------------------
# Running


def _missing(bench: Bench) -> str | None:
    for pattern in bench.needs:
        if not any(SHARED.glob(pattern)):
            return f"no {SHARED.name}/{pattern} (../shared/data absent or incomplete)"
    return None


def _pump(stream, sink: list[str], echo: str | None) -> None:
    for line in stream:
        sink.append(line)
        if echo is not None:
            print(f"[{echo}] {line}", end="", file=sys.stderr, flush=True)


def run_script(bench: Bench, quick: bool, timeout: float, verbose: bool) -> tuple[int | None, str, str, float]:
    """Run one script; returns (exit code or None on timeout, stdout, stderr, wall seconds)."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / bench.script), *(bench.quick_args if quick else bench.args)]
    env = {**os.environ, **OFFLINE, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )
    out: list[str] = []
    err: list[str] = []
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, out, bench.name if verbose else None), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err, bench.name if verbose else None), daemon=True),
    ]
    for t in pumps:
        t.start()
    try:
        rc: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the script and its workers (datatrove, Ray) started for it
        proc.wait()
    for t in pumps:
        t.join(timeout=10)
    return rc, "".join(out), "".join(err), time.perf_counter() - start


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def run_bench(bench: Bench, args: argparse.Namespace) -> Outcome:
    missing = _missing(bench)
    if missing:
        return Outcome(bench.name, "skipped", 0.0, [], missing)
    argv = " ".join(bench.quick_args if args.quick else bench.args)
    print(f"running {' '.join([bench.script, argv]).strip()} ({bench.what}) ...", file=sys.stderr, flush=True)
    rc, out, err, wall = run_script(bench, args.quick, args.timeout, args.verbose)
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
        (args.logs / f"{bench.name}.out").write_text(out, encoding="utf-8")
        (args.logs / f"{bench.name}.err").write_text(err, encoding="utf-8")
    print(f"  {bench.name}: {'timed out' if rc is None else f'exit {rc}'}, {wall:.0f} s", file=sys.stderr, flush=True)
    if rc is None:
        return Outcome(bench.name, "FAILED", wall, [], f"timed out after {args.timeout:.0f} s")
    if rc == 0 and re.search(r"^skipped: ", err, re.MULTILINE):
        return Outcome(bench.name, "skipped", wall, [], _last_line(err))
    if rc != 0 and rc not in bench.goal_rcs:
        return Outcome(bench.name, "FAILED", wall, [], f"exit {rc}: {_last_line(err or out)}")
    try:
        rows = bench.parse(out)
    except ParseError as exc:
        why = f"exit {rc}, then " if rc else ""
        return Outcome(bench.name, "FAILED", wall, [], f"{why}unreadable output: {exc}")
    return Outcome(bench.name, "ok" if rc == 0 else "goal missed", wall, rows, "" if rc == 0 else f"exit {rc}")


# --------------------------------------------------------------------------------------------------
# Printing

HEADER = ("benchmark", "gristmill", "bare library", "ratio", "goal / notes")


def table_rows(outcomes: list[Outcome], markdown: bool) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for o in outcomes:
        if not o.rows:
            rows.append((f"{o.name}.py", "", "", "", f"{o.status.upper()}: {o.reason.removeprefix('skipped: ')}"))
            continue
        for r in o.rows:
            notes = "; ".join(x for x in (f"goal {r.goal}" if r.goal else "", r.notes) if x)
            if r.over_goal:
                notes = ("**OVER GOAL**" if markdown else "OVER GOAL") + f" — {notes}"
            name = r.benchmark if markdown else r.benchmark.replace("`", "")
            if not markdown:
                notes = notes.replace("`", "")
            rows.append((name, r.gristmill, r.bare, _ratio(r.ratio), notes))
    return rows


def print_tables(outcomes: list[Outcome], markdown: bool, total_s: float) -> None:
    rows = table_rows(outcomes, markdown)
    print(
        "\nratio = gristmill's time / the bare library's time for the same work (throughputs inverted): "
        "> 1 slower, < 1 faster\n"
    )
    if markdown:
        print("| " + " | ".join(HEADER) + " |")
        print("|---|---:|---:|---:|---|")
        for row in rows:
            print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        print("\n| script | status | wall time |\n|---|---|---:|")
        for o in outcomes:
            print(f"| `{o.name}.py` | {o.status}{': ' + o.reason if o.reason and o.rows else ''} | {o.wall_s:.0f} s |")
        print(f"| total | | {total_s:.0f} s |")
        return
    widths = [max(len(HEADER[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    fmt = f"{{:<{widths[0]}}}  {{:>{widths[1]}}}  {{:>{widths[2]}}}  {{:>{widths[3]}}}  {{}}"
    print(fmt.format(*HEADER))
    print("-" * (sum(widths) + 8 + len(HEADER[4])))
    for row in rows:
        print(fmt.format(*row))
    print(f"\n{'script':<20} {'status':<12} {'wall s':>8}")
    for o in outcomes:
        print(f"{o.name + '.py':<20} {o.status:<12} {o.wall_s:>8.0f}")
    print(f"{'total':<20} {'':<12} {total_s:>8.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [b.name for b in BENCHES]
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat: checks it all runs (minutes)")
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=f"run only these: {', '.join(names)}")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per script (default 3600)")
    parser.add_argument("--logs", type=Path, help="write each script's stdout/stderr to DIR/NAME.out/.err")
    parser.add_argument("--verbose", action="store_true", help="echo the scripts' output to stderr as they run")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    start = time.perf_counter()
    outcomes = [run_bench(b, args) for b in BENCHES if not args.only or b.name in args.only]
    total = time.perf_counter() - start
    print_tables(outcomes, args.markdown, total)
    print(f"\n{os.cpu_count()} CPUs; load average (1 min) {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after")
    failed = [o.name for o in outcomes if o.status == "FAILED"]
    over = [r.benchmark.replace("`", "") for o in outcomes for r in o.rows if r.over_goal]
    if over:
        print(f"\nover goal: {'; '.join(over)}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
