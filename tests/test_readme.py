"""The README's and docs/'s claims that code can check: the streaming snippet runs and loses nothing, the
facts (header size, bundle size, latency, commands, examples, install lines, API names) match the code,
and every relative link points at a file that exists."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf

import codec
import codec.cluster
from bitstream import Header
from codec.bundle import shipped_bundles
from codec.cli import build_parser

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS = "\n".join(p.read_text() for p in DOC_FILES)  # the documentation: README plus every docs/*.md
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", DOCS, re.S)  # (language, code)


def _sections(text: str) -> list[tuple[int, str, str]]:
    """(level, title, body) of every markdown heading outside code blocks; a body runs to the next
    heading of the same or a higher level (so a "# comment" in a bash block is not a heading)."""
    heads, fence, lines = [], False, text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
        elif not fence and (m := re.match(r"(#+) (.*)", line)):
            heads.append((i, len(m.group(1)), m.group(2)))
    out = []
    for k, (i, level, title) in enumerate(heads):
        end = next((j for j, lv, _ in heads[k + 1:] if lv <= level), len(lines))
        out.append((level, title, "\n".join(lines[i + 1:end])))
    return out


def section(title: str) -> str:
    """A "## title" section of the README, else a "# title" or "## title" section of a docs/ file."""
    for path in DOC_FILES:
        levels = (2,) if path == ROOT / "README.md" else (1, 2)
        for level, name, body in _sections(path.read_text()):
            if name == title and level in levels:
                return body
    raise KeyError(title)


def test_streaming_snippet_returns_every_sample():
    """Run as written (with a microphone and a network stubbed in), the snippet hands back the whole call."""
    snippet = next(code for lang, code in BLOCKS if lang == "python" and "microphone" in code)
    wav48 = np.repeat(sf.read(ROOT / "tests" / "data" / "LJ001-0028.flac", dtype="float32")[0][:40000], 3)
    network: list[bytes] = []
    scope = {"codec": codec, "microphone": np.array_split(wav48, 37), "send": network.append,
             "received": enumerate(network)}  # (the transport's sequence number, packet), in order
    exec(snippet, scope)
    assert sum(map(len, scope["pcm"])) >= len(wav48) // 3


def test_header_size():
    size = int(re.search(r"the (\d+)-byte header", DOCS).group(1))
    assert size == len(Header(16000, 3, "mel", bytes(8), 50, 16000, 2, decoder="direct").to_bytes())


def test_bundle_size():
    total = sum(p.stat().st_size for p in shipped_bundles()[0].iterdir()) / 1e6
    assert float(re.search(r"The default bundle is ([\d.]+) MB", DOCS).group(1)) == round(total, 1)


def test_status_latency_is_the_shipped_one():
    status = section("Status")
    assert f"{codec.StreamEncoder(3).latency_ms:.0f} ms algorithmic latency" in status
    assert "≤ 60 ms" not in status  # shipped, not "not yet done"


def test_every_command_and_example_is_shown():
    cli = section("Command line")
    commands = build_parser()._subparsers._group_actions[0].choices
    assert [c for c in commands if f"ldcodec {c} " not in cli] == []
    assert "--bundle" in cli and "LDCODEC_BUNDLE" in cli
    assert [p.name for p in sorted((ROOT / "examples").glob("*.py")) if p.name not in DOCS] == []


def test_install_lines_work_from_a_checkout():
    assert "pip install 'ldcodec[" not in DOCS  # not on a package index: extras come from the checkout
    assert "pip install -e '.[cluster]'" in DOCS


def test_python_names_exist():
    for name in set(re.findall(r"codec\.cluster\.(\w+)", DOCS)):
        assert callable(getattr(codec.cluster, name)), name
    for name in set(re.findall(r"codec\.([A-Z]\w+)", DOCS)):
        assert hasattr(codec, name), name


def test_honest_summary_near_the_top_and_shared_folder_explained():
    top = README.split("## Python API", 1)[0]
    assert "**below Codec2**" in top and "[Quality](#quality)" in top
    assert "../shared/DESIGN.md` (in the team's shared folder beside the" in top
    training = section("Training your own bundle")
    assert training.index("not part of an install") < training.index("../shared/data/synthetic")


def test_relative_links_point_at_files():
    """Every relative link or image in README.md and docs/*.md names a file of the repository."""
    broken = []
    for path in DOC_FILES:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if target.startswith(("http://", "https://", "#")):
                continue
            if not (path.parent / target.split("#", 1)[0]).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert broken == []
