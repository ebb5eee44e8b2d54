"""Codec2 and Opus, the codecs ldcodec is measured against, through their command-line tools
(``apt-get install codec2 opus-tools``): encode + decode a 16 kHz clip → (decoded 16 kHz, bytes)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import resample

CODEC2_MODES = ("450", "700C", "1200", "1600", "2400", "3200")
OPUS_KBPS = (6, 8)


def available() -> dict[str, bool]:
    return {"codec2": bool(shutil.which("c2enc") and shutil.which("c2dec")),
            "opus": bool(shutil.which("opusenc") and shutil.which("opusdec"))}


def codec2(wav16k: np.ndarray, mode: str) -> tuple[np.ndarray, int]:
    """Codec2 works on 8 kHz: downsample, c2enc/c2dec, upsample back to 16 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pcm8 = np.clip(resample(wav16k, 16000, 8000) * 32767, -32768, 32767).astype("<i2")
        (tmp / "in.raw").write_bytes(pcm8.tobytes())
        subprocess.run(["c2enc", mode, tmp / "in.raw", tmp / "enc.c2"], check=True, capture_output=True)
        subprocess.run(["c2dec", mode, tmp / "enc.c2", tmp / "out.raw"], check=True, capture_output=True)
        out8 = np.frombuffer((tmp / "out.raw").read_bytes(), dtype="<i2").astype(np.float32) / 32768
        return resample(out8, 8000, 16000), (tmp / "enc.c2").stat().st_size


def opus(wav16k: np.ndarray, kbps: float) -> tuple[np.ndarray, int]:
    """opusenc (Ogg Opus, VBR, speech tuning) at ``kbps``; file bytes include the Ogg container."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sf.write(tmp / "in.wav", wav16k, 16000, subtype="PCM_16")
        subprocess.run(["opusenc", "--quiet", "--bitrate", str(kbps), "--speech", tmp / "in.wav", tmp / "enc.opus"],
                       check=True, capture_output=True)
        subprocess.run(["opusdec", "--quiet", "--rate", "16000", tmp / "enc.opus", tmp / "out.wav"],
                       check=True, capture_output=True)
        out, _ = sf.read(tmp / "out.wav", dtype="float32")
        return out, (tmp / "enc.opus").stat().st_size
