"""The example scripts a user copies from: archive.py (resumable, refuses another rate),
train_on_my_voice.py (a complete bundle of one's own) and voip_loopback.py (a call over UDP through
the jitter buffer; refuses rates streaming does not offer, never hangs)."""
from __future__ import annotations

import re
import runpy
import shutil
import sys
import threading
import time
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


@pytest.mark.parametrize("kbps", [1.0, 6.5])
def test_voip_loopback_refuses_rates_streaming_does_not_offer(kbps, monkeypatch, capsys):
    """Issue #32: --kbps 1.2 printed a traceback and hung in the listener's recv(); now a usage error
    naming the range, at once, with no thread left behind."""
    threads, t0 = threading.active_count(), time.monotonic()
    with pytest.raises(SystemExit) as e:
        example("voip_loopback.py", "--kbps", kbps, monkeypatch=monkeypatch)
    assert e.value.code == 2 and "streaming supports 1.2–6 kbps" in capsys.readouterr().err
    assert threading.active_count() == threads and time.monotonic() - t0 < 30


def test_voip_loopback_one_late_packet(monkeypatch, capsys):
    """Issue #32: one packet 200 ms late cost 127 concealed packets and 5 s of audio for a 1 s call.
    Through the jitter buffer it costs its own slot: played ≈ sent, audio ≈ the call."""
    example("voip_loopback.py", "--seconds", 1, "--loss", 0, "--jitter-ms", 20, "--late-ms", 200,
            monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    m = re.search(r"packets sent (\d+), played (\d+), concealed (\d+) \(lost (\d+), late (\d+)\); "
                  r"audio out ([\d.]+) s", out)
    sent, played, concealed, lost, late = map(int, m.groups()[:5])
    # real time on a shared CPU: a little slack over the simulated network's exact counts (test_jitter.py)
    assert sent == 32 and played >= sent - 4 and concealed <= 5 and lost == 0 and late <= 1, out
    assert abs(float(m.group(6)) - 1.0) < 0.2, out  # 1 s of audio for a 1 s call (was 5.04 s)
