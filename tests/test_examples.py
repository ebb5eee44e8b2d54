"""The example scripts a user copies from: archive.py (resumable, refuses another rate) and
train_on_my_voice.py (a complete bundle of one's own)."""
from __future__ import annotations

import runpy
import shutil
import sys
import warnings
from pathlib import Path

import pytest

import codec
from codec.bundle import Bundle

ROOT = Path(__file__).parent.parent
DATA = ROOT / "tests" / "data"


def example(name: str, *argv, monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", [name, *map(str, argv)])
    runpy.run_path(str(ROOT / "examples" / name), run_name="__main__")


@pytest.fixture
def speech(tmp_path) -> Path:
    folder = tmp_path / "speech"
    folder.mkdir()
    for clip in DATA.glob("*.flac"):
        shutil.copy(clip, folder / clip.name)
    return folder


def test_archive_example(speech, tmp_path, monkeypatch, capsys):
    arc, restored = tmp_path / "arc", tmp_path / "restored"
    example("archive.py", speech, arc, "--kbps", 1.2, "--restore", restored, monkeypatch=monkeypatch)
    assert "archive: 2 encoded, 0 already done" in capsys.readouterr().out
    assert len(list(restored.glob("*.wav"))) == 2
    example("archive.py", speech, arc, "--kbps", 1.2, "--restore", restored, monkeypatch=monkeypatch)
    assert "archive: 0 encoded, 2 already done" in capsys.readouterr().out
    with pytest.raises(ValueError, match="made with other settings"):  # never a mixed archive
        example("archive.py", speech, arc, "--kbps", 3, monkeypatch=monkeypatch)


def test_train_on_my_voice_makes_a_complete_bundle(speech, tmp_path, monkeypatch):
    out = tmp_path / "mine"
    example("train_on_my_voice.py", speech, "--steps", 1, "--threads", 1, "--out", out, monkeypatch=monkeypatch)
    b = Bundle.load(out)
    assert b.name == "mine" and b.has("latent") and b.has("stream_vocoder")
    with warnings.catch_warnings():
        warnings.simplefilter("error", codec.BundleWarning)
        data = codec.encode(DATA / "LJ001-0028.flac", kbps=0.6, bundle=out)  # the default latent rate: no fallback
    assert codec.info(data)["representation"] == "latent"
