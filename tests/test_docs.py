"""Every code block of README.md and docs/**/*.md runs, so the documentation cannot rot.

Blocks by fence language:

- ```python: executed; each page's Python blocks run in order in one shared namespace, in a fresh
  temporary working directory (shared with the page's shell blocks);
- ```bash / ```sh / ```console: each line that calls `convcoach ...` or `python -m convcoach ...`
  (after a `$ ` prompt in console blocks; `\\` continuations joined, `# comments` dropped) runs
  through `convcoach.cli.main` in this process, in that directory, and must exit 0; other lines (make, pip,
  torchrun, createdb, ...) are not run;
- ```text and any other language: output, not run.

Markers, an HTML comment on the line right before the fence (invisible on the rendered page):

- `<!-- docs-test: skip (REASON) -->`: not run (full-length training, downloads, several machines);
  the reason is required and shown in the test id's skip message;
- `<!-- docs-test: as-is -->`: the commands are already cheap; run them exactly as written;
- `<!-- docs-test: expect-output -->` (console blocks): each `$ ` command may fail, and each
  output line under it must appear in what it printed (errors are checked this way).

Without a marker, shell commands run with cheap overrides appended (argparse keeps the last
value), see CHEAP: `train`/`finetune` get `--subset 600 --epochs 1 --quiet --no-report`, `check`
`--quick --subset 600`, `tune` `--subset 300 --trials 1 --epochs 1`.

Fixtures in every page's directory: `configs/` (a copy of the repository's) and the image files
the examples name (`ankle_boot.png`, `pullover.png`, `trouser.png`: Fashion-MNIST test images when
the dataset is installed, else digits).
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shlex
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SHELL = {"bash", "sh", "shell", "console"}
MARKER = re.compile(r"<!--\s*docs-test:\s*(skip|as-is|expect-output)\s*(?:\((.*?)\))?\s*-->")
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)[^\n]*$")
CHEAP = {
    "train": ["--subset", "600", "--epochs", "1", "--quiet", "--no-report"],
    "finetune": ["--subset", "600", "--epochs", "1", "--quiet", "--no-report"],
    "check": ["--quick", "--subset", "600"],
    "tune": ["--subset", "300", "--trials", "1", "--epochs", "1"],
}


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None = None
    reason: str = ""


def extract_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page, each with the docs-test marker right before it."""
    lines = page.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match.group(1), match.group(2), match.group(3).lower()
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.search(previous)
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        blocks.append(
            Block(
                page,
                i + 1,
                lang,
                "\n".join(body) + "\n",
                marker.group(1) if marker else None,
                (marker.group(2) or "") if marker else "",
            )
        )
        i = j + 1
    return blocks


def shell_commands(block: Block) -> list[tuple[list[str], list[str]]]:
    """(argv after `convcoach`, expected output lines) for each convcoach command of a shell block."""
    commands: list[tuple[list[str], list[str]]] = []
    logical: list[str] = []
    pending = ""
    for raw in block.code.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        logical.append(line)
    for line in logical:
        stripped = line.strip()
        if block.lang == "console":
            if not stripped.startswith("$ "):
                if commands and stripped:
                    commands[-1][1].append(stripped)
                continue
            stripped = stripped[2:]
        words = shlex.split(stripped, comments=True)
        if words[:1] == ["convcoach"]:
            commands.append((words[1:], []))
        elif words[:3] in (["python", "-m", "convcoach"], ["python3", "-m", "convcoach"]):
            commands.append((words[3:], []))
    return commands


def page_blocks(page: Path) -> list[Block]:
    return [b for b in extract_blocks(page) if b.lang == "python" or b.lang in SHELL]


def _write_fixtures(workdir: Path) -> None:
    from PIL import Image

    shutil.copytree(ROOT / "configs", workdir / "configs")
    images = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    if images.exists():
        import gzip

        pixels = np.frombuffer(gzip.open(images).read(), np.uint8, offset=16).reshape(-1, 28, 28)[:3]
    else:
        from sklearn.datasets import load_digits

        pixels = (load_digits().images[:3] * 16).clip(0, 255).astype(np.uint8)
    for name, image in zip(["ankle_boot.png", "pullover.png", "trouser.png"], pixels):
        Image.fromarray(image).save(workdir / name)


def _run_cli(argv: list[str], workdir: Path, where: str, expect: list[str] | None) -> None:
    """`convcoach ARGV` in this process (the page's directory is the working directory): what a user's
    shell would print, without paying Python's and torch's start-up for every command of every page."""
    import io
    import logging

    from convcoach.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(stderr)  # the CLI's log lines go to its stderr
    logger = logging.getLogger("convcoach")
    logger.addHandler(handler)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                returncode = main(list(argv))
            except SystemExit as exc:  # argparse: --help, usage errors
                returncode = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert Path.cwd().resolve() == workdir.resolve(), (
        f"{where}: convcoach {shlex.join(argv)} changed the working directory"
    )
    output = stdout.getvalue() + stderr.getvalue()
    if expect is None:
        assert returncode == 0, f"{where}: convcoach {shlex.join(argv)} exited {returncode}:\n{output[-3000:]}"
        return
    flat = " ".join(output.split())
    for line in expect:
        assert " ".join(line.split()) in flat, (
            f"{where}: convcoach {shlex.join(argv)} no longer prints\n  {line}\nit printed:\n{output[-3000:]}"
        )


@contextlib.contextmanager
def isolated_registries() -> Iterator[None]:
    """Examples register models, ops, rules... (docs/extending.md): undo that after the page, so the
    registries other tests list are the package's own."""
    from convcoach.models.stages import ANATOMIES
    from convcoach.registry import Registry
    from convcoach.train.optim import DEFAULT_LR

    def copied(value: object) -> object:
        return value.copy() if isinstance(value, dict | set | list) else value

    with warnings.catch_warnings():  # isinstance on torch's deprecated module attributes warns
        warnings.simplefilter("ignore")
        registries = [obj for obj in gc.get_objects() if isinstance(obj, Registry)]
    saved = [(registry, {k: copied(v) for k, v in vars(registry).items()}) for registry in registries]
    plain = [(table, table.copy()) for table in (ANATOMIES, DEFAULT_LR)]
    try:
        yield
    finally:
        for registry, state in saved:
            vars(registry).clear()
            vars(registry).update(state)
        for table, state in plain:
            table.clear()
            table.update(state)


def run_page(page: Path, workdir: Path) -> list[str]:
    """Run a page's blocks in order in workdir; returns the skipped blocks' descriptions."""
    _write_fixtures(workdir)
    namespace: dict = {"__name__": "__docs__"}
    skipped = []
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        for block in page_blocks(page):
            where = f"{page.relative_to(ROOT)}:{block.line}"
            if block.marker == "skip":
                assert block.reason.strip(), (
                    f"{where}: a docs-test skip marker needs a reason: <!-- docs-test: skip (REASON) -->"
                )
                skipped.append(f"{where} ({block.reason})")
                continue
            if block.lang == "python":
                try:
                    exec(compile(block.code, where, "exec"), namespace)
                except Exception as exc:
                    raise AssertionError(f"{where}: the Python example fails: {exc!r}") from exc
                continue
            for argv, expected in shell_commands(block):
                if block.marker == "expect-output":
                    _run_cli(argv, workdir, where, expected)
                    continue
                extra = [] if block.marker == "as-is" else CHEAP.get(argv[0] if argv else "", [])
                _run_cli(argv + extra, workdir, where, None)
    finally:
        os.chdir(cwd)
    return skipped


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_code_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    with isolated_registries():
        skipped = run_page(page, tmp_path)
    if skipped:
        print(f"{page.name}: skipped by marker: " + "; ".join(skipped))


def test_markers_and_fences_are_well_formed() -> None:
    """A marker must sit right before a fence (not float in the text), and every fence must close."""
    for page in PAGES:
        lines = page.read_text().splitlines()
        fences = [i for i, line in enumerate(lines) if FENCE.match(line)]
        assert len(fences) % 2 == 0, f"{page.relative_to(ROOT)}: an unclosed code fence"
        for i, line in enumerate(lines):
            if "docs-test:" in line:
                assert MARKER.search(line), (
                    f"{page.relative_to(ROOT)}:{i + 1}: unknown docs-test marker: {line.strip()}"
                )
                following = next((lines[j] for j in range(i + 1, len(lines)) if lines[j].strip()), "")
                assert FENCE.match(following), (
                    f"{page.relative_to(ROOT)}:{i + 1}: a docs-test marker must come right before a code fence"
                )


def test_the_extractor_reads_markers_continuations_and_prompts(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- docs-test: skip (a long run) -->\n```bash\nconvcoach train\n```\n\n"
        '```bash\nconvcoach tune --space "lr=1..2:log" \\\n    --trials 3   # comment\nmake test\n```\n\n'
        "<!-- docs-test: expect-output -->\n```console\n$ convcoach train --model x\n"
        "convcoach: error: unknown model 'x'\n```\n"
        "```text\nnot run\n```\n"
    )
    blocks = extract_blocks(page)
    assert [(b.lang, b.marker, b.reason) for b in blocks] == [
        ("bash", "skip", "a long run"),
        ("bash", None, ""),
        ("console", "expect-output", ""),
        ("text", None, ""),
    ]
    assert shell_commands(blocks[1]) == [(["tune", "--space", "lr=1..2:log", "--trials", "3"], [])]
    assert shell_commands(blocks[2]) == [(["train", "--model", "x"], ["convcoach: error: unknown model 'x'"])]


def test_a_page_s_registrations_are_undone_after_it() -> None:
    from convcoach.models import MODELS
    from convcoach.train.optim import DEFAULT_LR

    with isolated_registries():
        MODELS.register("docs-only-model", anatomy=None)(lambda in_shape, num_classes: None)
        DEFAULT_LR["docs-only-optimizer"] = 1.0
        assert "docs-only-model" in MODELS
    assert "docs-only-model" not in MODELS and "docs-only-model" not in MODELS.anatomies
    assert "docs-only-optimizer" not in DEFAULT_LR
