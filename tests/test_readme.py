"""The README's claims that code can check: its streaming snippet runs and loses nothing, and its facts
(header size, bundle size, latency, commands, examples, install lines, API names) match the code."""
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
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)  # (language, code)


def section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_streaming_snippet_returns_every_sample():
    """Run as written (with a microphone and a network stubbed in), the snippet hands back the whole call."""
    snippet = next(code for lang, code in BLOCKS if lang == "python" and "microphone" in code)
    wav48 = np.repeat(sf.read(ROOT / "tests" / "data" / "LJ001-0028.flac", dtype="float32")[0][:40000], 3)
    network: list[bytes] = []
    scope = {"codec": codec, "microphone": np.array_split(wav48, 37), "send": network.append, "received": network}
    exec(snippet, scope)
    assert sum(map(len, scope["pcm"])) >= len(wav48) // 3


def test_header_size():
    size = int(re.search(r"the (\d+)-byte header", README).group(1))
    assert size == len(Header(16000, 3, "mel", bytes(8), 50, 16000, 2, decoder="direct").to_bytes())


def test_bundle_size():
    total = sum(p.stat().st_size for p in shipped_bundles()[0].iterdir()) / 1e6
    assert float(re.search(r"The default bundle is ([\d.]+) MB", README).group(1)) == round(total, 1)


def test_status_latency_is_the_shipped_one():
    status = section("Status")
    assert f"{codec.StreamEncoder(3).latency_ms:.0f} ms algorithmic latency" in status
    assert "≤ 60 ms" not in status  # shipped, not "not yet done"


def test_every_command_and_example_is_shown():
    cli = section("Command line")
    commands = build_parser()._subparsers._group_actions[0].choices
    assert [c for c in commands if f"ldcodec {c} " not in cli] == []
    assert "--bundle" in cli and "LDCODEC_BUNDLE" in cli
    assert [p.name for p in sorted((ROOT / "examples").glob("*.py")) if p.name not in README] == []


def test_install_lines_work_from_a_checkout():
    assert "pip install 'ldcodec[" not in README  # not on a package index: extras come from the checkout
    assert "pip install -e '.[cluster]'" in README


def test_python_names_exist():
    for name in set(re.findall(r"codec\.cluster\.(\w+)", README)):
        assert callable(getattr(codec.cluster, name)), name
    for name in set(re.findall(r"codec\.([A-Z]\w+)", README)):
        assert hasattr(codec, name), name


def test_honest_summary_near_the_top_and_shared_folder_explained():
    top = README.split("## Python API", 1)[0]
    assert "below Codec2 and Opus" in top and "[Quality](#quality)" in top
    assert "../shared/DESIGN.md` (in the team's shared folder beside the" in top
    training = section("Training your own bundle")
    assert training.index("not part of an install") < training.index("../shared/data/synthetic")
