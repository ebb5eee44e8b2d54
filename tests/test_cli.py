"""The ``ldcodec`` command line: encode / decode / info / modes on files and folder trees, and its errors.

Everything runs ``codec.cli.main`` in-process (fast, output captured by cli_run.run) except one test
that starts the installed ``ldcodec`` console script to prove the entry point works.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

import codec
from bitstream import read_header
from cli_run import one_line_error, run

DATA = Path(__file__).parent / "data"
CLIP = DATA / "LJ001-0028.flac"
KBPS = 1.2


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> Path:
    """CLIP encoded once through the CLI at KBPS."""
    out = tmp_path_factory.mktemp("enc") / "out.ldc"
    assert run("encode", CLIP, "-o", out, "--kbps", KBPS)[0] == 0
    return out


@pytest.fixture
def damaged(encoded, tmp_path) -> Path:
    """A copy of ``encoded`` with one byte flipped inside the first packet record."""
    data = bytearray(encoded.read_bytes())
    _, first_packet = read_header(bytes(data))
    data[first_packet + 5] ^= 0xFF
    path = tmp_path / "damaged.ldc"
    path.write_bytes(bytes(data))
    return path


# ------------------------------------------------------------------ single file


def test_encode_single_file(tmp_path):
    out = tmp_path / "sub" / "one.ldc"  # missing parent folders are created
    code, stdout, err = run("encode", CLIP, "-o", out, "--kbps", KBPS)
    assert code == 0, err
    assert out.is_file() and out.read_bytes()[:4] == b"LDCF"
    assert str(out) in stdout and "kbps" in stdout


def test_info_text(encoded):
    code, out, err = run("info", encoded)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"{encoded}:"
    n = len(sf.read(CLIP)[0])
    assert f"  num_samples: {n}" in out
    assert f"  mode_id: {codec.mode_for(KBPS).id}" in out and "  packets_damaged: 0" in out


def test_info_json(encoded):
    code, out, err = run("info", "--json", encoded)
    assert code == 0 and err == ""
    facts = json.loads(out)
    mode = codec.mode_for(KBPS)
    assert facts["file"] == str(encoded)
    assert facts["kbps"] <= KBPS
    assert facts["kbps"] == pytest.approx(encoded.stat().st_size * 8 / facts["duration_s"] / 1000)
    assert facts["mode_id"] == mode.id
    assert facts["mode"]["kbps_range"] == [mode.min_kbps, mode.max_kbps]
    assert facts["num_samples"] == len(sf.read(CLIP)[0])
    assert facts["sample_rate"] == 16000 and facts["packets_damaged"] == 0


def test_decode_to_wav(encoded, tmp_path):
    wav_path = tmp_path / "decoded.wav"
    code, out, err = run("decode", encoded, "-o", wav_path)
    assert code == 0, err
    wav, sr = sf.read(wav_path)
    assert sr == 16000 and wav.ndim == 1
    assert len(wav) == len(sf.read(CLIP)[0])
    assert np.abs(wav).max() > 0.01  # not silence


def test_decode_output_without_suffix_or_to_new_folder(encoded, tmp_path):
    code, _, err = run("decode", encoded, "-o", tmp_path / "plain")
    assert code == 0, err
    assert sf.info(str(tmp_path / "plain")).format == "WAV"
    code, _, err = run("decode", encoded, "-o", f"{tmp_path / 'newdir'}/")
    assert code == 0, err
    assert sf.info(str(tmp_path / "newdir" / "out.wav")).samplerate == 16000


# ------------------------------------------------------------------ folder trees


def test_folder_tree_encode_decode(clips, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    sf.write(src / "a.flac", clips[0][:32000], 16000)  # 2 s
    sf.write(src / "sub" / "b.flac", clips[1][:24000], 16000)  # 1.5 s
    x48 = resample_poly(clips[1][:16000], 3, 1)  # 1 s at 48 kHz
    stereo = np.stack([x48, 0.5 * x48], axis=1)
    sf.write(src / "sub" / "c48k.wav", (stereo * 32767 * 0.9).astype(np.int16), 48000, subtype="PCM_16")
    (src / "sub" / "notes.txt").write_text("not audio, must be skipped")
    expected_len = {"a": 32000, "sub/b": 24000, "sub/c48k": 16000}

    enc = tmp_path / "enc"
    code, out, err = run("encode", src, "-o", enc, "--kbps", KBPS, "--jobs", 2)
    assert code == 0, err
    assert sorted(p.relative_to(enc).as_posix() for p in enc.rglob("*") if p.is_file()) == \
        ["a.ldc", "sub/b.ldc", "sub/c48k.ldc"]
    assert out.count(" -> ") == 3
    for stem in expected_len:
        facts = codec.info((enc / f"{stem}.ldc").read_bytes())
        assert facts["kbps"] <= KBPS
    facts = codec.info((enc / "sub" / "c48k.ldc").read_bytes())
    assert (facts["source_rate"], facts["source_channels"]) == (48000, 2)

    wavs = tmp_path / "wavs"
    code, out, err = run("decode", enc, "-o", wavs)
    assert code == 0, err
    assert sorted(p.relative_to(wavs).as_posix() for p in wavs.rglob("*") if p.is_file()) == \
        ["a.wav", "sub/b.wav", "sub/c48k.wav"]
    for stem, n in expected_len.items():
        wav, sr = sf.read(wavs / f"{stem}.wav")
        assert sr == 16000 and wav.shape == (n,), stem


# ------------------------------------------------------------------ modes


def test_modes_table():
    code, out, err = run("modes")
    assert code == 0 and err == ""
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| mode")]
    storage = codec.modes.STORAGE_MODES
    assert [int(r.split("|")[1]) for r in rows] == [m.id for m in storage + codec.modes.VOIP_MODES]
    for m, r in zip(storage, rows):
        assert ("direct, mel2mel" if m.representation == "mel" else "direct, lat2lat") in r
        assert (" file |" in r) == (m in codec.LADDER)
    assert all("| stream |" in r for r in rows[len(storage):])
    assert "default decoder" in out.splitlines()[0]


# ------------------------------------------------------------------ errors


def test_info_damaged_file(damaged):
    code, out, err = run("info", damaged)
    assert code == 1
    line = one_line_error(err)
    assert str(damaged) in line and "damaged" in line
    assert "packets_damaged: 1" in out  # the facts are still printed

    code, out, err = run("info", "--json", damaged)
    assert code == 1 and str(damaged) in one_line_error(err)
    facts = json.loads(out)
    assert facts["packets_damaged"] == 1 and "CRC" in facts["errors"][0]


def test_decode_damaged_file(damaged, tmp_path):
    wav_path = tmp_path / "d.wav"
    code, out, err = run("decode", damaged, "-o", wav_path)
    assert code == 1
    line = one_line_error(err)
    assert str(damaged) in line and "packet 0" in line and "CRC" in line
    assert not wav_path.exists()

    code, out, err = run("decode", damaged, "-o", wav_path, "--allow-damaged")
    assert code == 0, err
    assert "concealed 1 damaged" in out + err
    assert sf.info(str(wav_path)).samplerate == 16000


@pytest.mark.parametrize("command", ["encode", "decode", "info"])
def test_missing_input_exits_2(tmp_path, command):
    missing = tmp_path / "nope.ldc"
    code, _, err = run(command, missing)
    assert code == 2
    assert str(missing) in one_line_error(err)


def test_kbps_out_of_range_exits_2(tmp_path):
    code, _, err = run("encode", CLIP, "-o", tmp_path / "x.ldc", "--kbps", 9)
    assert code == 2
    line = one_line_error(err)
    assert "0.3" in line and "6" in line
    assert not (tmp_path / "x.ldc").exists()


def test_encode_latent_representation(tmp_path):
    out = tmp_path / "lat.ldc"
    assert run("encode", CLIP, "-o", out, "--kbps", 0.6, "--representation", "latent")[0] == 0
    code, stdout, _ = run("info", out, "--json")
    assert code == 0 and json.loads(stdout)["representation"] == "latent"
    code, _, err = run("encode", CLIP, "-o", tmp_path / "x.ldc", "--kbps", 3, "--representation", "latent")
    assert code == 2 and "latent representation covers" in one_line_error(err)


def test_jobs_zero_exits_2():
    code, _, err = run("encode", CLIP, "--jobs", 0)
    assert code == 2 and "--jobs" in one_line_error(err)


def test_non_audio_file(tmp_path):
    bogus = tmp_path / "x.wav"
    bogus.write_bytes(bytes(range(256)) * 8)
    code, _, err = run("encode", bogus, "-o", tmp_path / "x.ldc")
    assert code == 1
    assert str(bogus) in one_line_error(err)


def test_unknown_decoder(encoded, tmp_path):
    code, _, err = run("decode", encoded, "-o", tmp_path / "x.wav", "--decoder", "nope")
    assert code == 1
    line = one_line_error(err)
    assert "nope" in line and "direct" in line


def test_steps_with_direct_decoder(encoded, tmp_path):
    code, _, err = run("decode", encoded, "-o", tmp_path / "x.wav", "--decoder", "direct", "--steps", 4)
    assert code == 1
    line = one_line_error(err)
    assert "direct" in line and "steps" in line


# ------------------------------------------------------------------ the installed console script


def test_console_script_entry_point(encoded):
    exe = Path(sys.executable).parent / "ldcodec"
    exe = str(exe) if exe.exists() else shutil.which("ldcodec")
    assert exe, "the ldcodec console script is not installed (pip install -e .)"
    proc = subprocess.run([exe, "info", "--json", str(encoded)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    facts = json.loads(proc.stdout)
    assert facts["file"] == str(encoded) and facts["kbps"] <= KBPS
