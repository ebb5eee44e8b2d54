"""The ``ldcodec`` command line: encode / decode / info / modes on files and folder trees, and its errors.

Everything runs ``codec.cli.main`` in-process (fast, output captured by cli_run.run) except one test
that starts the installed ``ldcodec`` console script to prove the entry point works.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

import bitstream
import codec
from bitstream import read_file, read_header
from codec import files
from codec.bundle import Bundle, shipped_bundles
from cli_run import one_line_error, run

DATA = Path(__file__).parent / "data"
CLIP = DATA / "LJ001-0028.flac"
KBPS = 1.5  # mode 2: the cepstrum, 1 s packets


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


def _facts(out: str) -> dict[str, str]:
    """``ldcodec info``'s text → {key: value} (the lines after the file's name)."""
    return dict(line.strip().split(":", 1) for line in out.splitlines()[1:] if line.startswith("  ") and
                not line.startswith("    "))


def test_info_text(encoded):
    code, out, err = run("info", encoded)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == f"{encoded}:"
    facts = {k: v.strip() for k, v in _facts(out).items()}
    assert facts["num_samples"] == str(len(sf.read(CLIP)[0]))
    assert facts["mode_id"] == str(codec.mode_for(KBPS).id) and facts["packets_damaged"] == "0"
    # aligned fields, readable numbers: no Python dicts or 17-digit floats
    columns = {len(line) - len(line.split(":", 1)[1].lstrip()) for line in out.splitlines()[1:]}
    assert len(columns) == 1, out
    assert "{" not in out and "[" not in out and not re.search(r"\d\.\d{7,}", out), out
    assert facts["damaged_packets"] == "none" and facts["errors"] == "none"
    assert re.fullmatch(r"\d\.\d+", facts["kbps"]) and "kbps_range 0.9, 2" in facts["mode"]
    assert json.loads(run("info", "--json", encoded)[1])["kbps"] == codec.info(encoded)["kbps"]  # JSON: full precision


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


# ------------------------------------------------------------------ --resume


def test_resume_refuses_outputs_made_with_other_settings(clips, tmp_path):
    """The README's slip: a resumed run without the first run's --kbps must not mix rates in one archive."""
    src, arc = tmp_path / "in", tmp_path / "arc"
    src.mkdir()
    for i in range(3):
        sf.write(src / f"t{i}.flac", clips[i % 2][:32000], 16000)
    assert run("encode", src, "-o", arc, "--kbps", KBPS)[0] == 0
    (arc / "t1.ldc").unlink()  # the run was interrupted here
    before = {p.name: p.read_bytes() for p in arc.iterdir()}

    code, out, err = run("encode", src, "-o", arc, "--resume")  # default 3 kbps
    assert code == 2 and not out
    line = one_line_error(err)
    assert "2 existing output(s)" in line and "mode 2 (mel" in line and "mode 3 (mel" in line
    assert {p.name: p.read_bytes() for p in arc.iterdir()} == before  # nothing encoded, nothing replaced
    code, _, err = run("encode", src, "-o", arc, "--resume", "--kbps", 1.3)  # the same mode, a lower rate
    assert code == 2 and "over the 1.3 kbps asked" in one_line_error(err)
    code, _, err = run("encode", src, "-o", arc, "--resume", "--kbps", 1.2)  # the latent, mode 8
    assert code == 2 and "mode 8 (latent" in one_line_error(err)

    code, out, err = run("encode", src, "-o", arc, "--resume", "--kbps", KBPS)
    assert code == 0 and out.count("already done") == 2, err
    assert codec.info(arc / "t1.ldc")["mode_id"] == codec.mode_for(KBPS).id
    with pytest.raises(ValueError, match="t0.ldc exists but was made in mode 2"):  # the Python API refuses too
        files.encode_file(src / "t0.flac", arc / "t0.ldc", kbps=3.0, resume=True)


@pytest.mark.filterwarnings("ignore::codec.RateWarning")
def test_resume_accepts_what_the_rate_control_makes(clip, tmp_path):
    """An output is 'made with these settings' for every rate the rate control could have picked it for."""
    # the last two: too short, coarsest step
    for kbps, seconds in ((0.3, 6), (1.2, 6), (3.0, 3), (6.0, 0.2), (1.2, 0.3)):
        data = codec.encode(clip[: int(seconds * 16000)], kbps=kbps)
        mode = codec.mode_for(kbps)
        bundle_id = Bundle.load(shipped_bundles()[0]).writing(mode).stream_id(mode.representation)
        assert files.mismatch(data, len(data), kbps, mode, bundle_id) is None, (kbps, seconds)


def test_decode_resume_redoes_incomplete_wavs(encoded, tmp_path):
    wav = tmp_path / "out.wav"
    wav.write_bytes(b"")  # what a full disk or a killed writer leaves
    code, out, err = run("decode", encoded, "-o", wav, "--resume")
    assert code == 0 and "already done" not in out, err
    n = codec.info(encoded)["num_samples"]
    assert sf.info(str(wav)).frames == n
    sf.write(wav, np.zeros(n // 2), 16000, subtype="PCM_16")  # a valid WAV, but short
    assert "already done" not in run("decode", encoded, "-o", wav, "--resume")[1]
    assert "already done" in run("decode", encoded, "-o", wav, "--resume")[1]


# ------------------------------------------------------------------ your own bundle


@pytest.fixture(scope="module")
def own_bundle(tmp_path_factory) -> Path:
    """A bundle of one's own, as examples/train_on_my_voice.py makes: another id, no latent autoencoder."""
    src, dst = shipped_bundles()[0], tmp_path_factory.mktemp("bundles") / "mine"
    dst.mkdir()
    shutil.copy(src / "vocoder.safetensors", dst)
    config = (src / "config.json").read_text()  # another name: another config.json, another bundle id
    (dst / "config.json").write_text(config.replace('"ldc-mel-v1"', '"ldc-mel-v1-mine"'))
    return dst


def test_bundle_option_and_env_var(own_bundle, encoded, tmp_path, monkeypatch):
    clip = tmp_path / "c.flac"
    sf.write(clip, sf.read(CLIP)[0][:32000], 16000)
    mine = tmp_path / "mine.ldc"
    code, _, err = run("encode", clip, "-o", mine, "--kbps", 3, "--bundle", own_bundle)
    assert code == 0, err
    assert codec.info(mine)["bundle_id"] == Bundle.load(own_bundle).id.hex()
    code, _, err = run("decode", mine, "-o", tmp_path / "x.wav")
    assert code == 1 and "--bundle" in one_line_error(err)  # says how to name the bundle
    code, _, err = run("decode", mine, "-o", tmp_path / "x.wav", "--bundle", own_bundle)
    assert code == 0, err
    code, _, err = run("encode", clip, "-o", tmp_path / "z.ldc", "--bundle", tmp_path)
    assert code == 2 and "not a model bundle" in one_line_error(err)

    monkeypatch.setenv("LDCODEC_BUNDLE", str(own_bundle))  # for apps: the default bundle
    assert run("encode", clip, "-o", tmp_path / "env.ldc", "--kbps", 3)[0] == 0
    assert (tmp_path / "env.ldc").read_bytes() == mine.read_bytes()
    assert run("decode", tmp_path / "env.ldc", "-o", tmp_path / "y.wav")[0] == 0  # found there
    assert run("decode", encoded, "-o", tmp_path / "z.wav")[0] == 0  # the shipped bundle's streams still decode


def test_bundle_without_latent_falls_back_to_mel(own_bundle, tmp_path):
    out = tmp_path / "low.ldc"
    code, stdout, err = run("encode", CLIP, "-o", out, "--kbps", 0.6, "--bundle", own_bundle)
    assert code == 0, err
    assert err.count("ldcodec: note:") == 1 and "no latent autoencoder" in err and "mode 1" in err
    facts = codec.info(out)
    assert facts["representation"] == "mel" and facts["mode_id"] == 1 and facts["kbps"] <= 0.6
    code, _, err = run("encode", CLIP, "-o", tmp_path / "x.ldc", "--kbps", 0.6, "--representation", "latent",
                       "--bundle", own_bundle)
    assert code == 2 and "no latent autoencoder" in one_line_error(err)


# ------------------------------------------------------------------ modes


def test_modes_table():
    code, out, err = run("modes")
    assert code == 0 and err == ""
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| mode")]
    storage = codec.modes.STORAGE_MODES
    assert [int(r.split("|")[1]) for r in rows] == [m.id for m in storage + codec.modes.VOIP_MODES]
    for m, r in zip(storage, rows):  # the decoders the bundle has models for
        assert ("direct, mel2mel" if m.representation == "mel" else "direct, lat2lat") in r
        assert (" file (default at " in r) == (m in codec.LADDER)
    assert "| 2 | file (default at 1.3–2) | 0.9–2 |" in out  # the ladder's rates for the rung, and the mode's own
    assert all("| stream |" in r for r in rows[len(storage):])
    assert "default decoder" in out.splitlines()[0]


# ------------------------------------------------------------------ errors


def test_info_damaged_file(damaged):
    code, out, err = run("info", damaged)
    assert code == 1
    line = one_line_error(err)
    assert str(damaged) in line and "damaged" in line
    assert _facts(out)["packets_damaged"].strip() == "1"  # the facts are still printed

    code, out, err = run("info", "--json", damaged)
    assert code == 1 and str(damaged) in one_line_error(err)
    facts = json.loads(out)
    assert facts["packets_damaged"] == 1 and "CRC" in facts["errors"][0]


def test_info_lists_every_damaged_packet(encoded, tmp_path):
    data = bytearray(encoded.read_bytes())
    c = read_file(bytes(data))
    assert len(c.packets) == 6  # 1.5 kbps: mode 2, 1.02 s packets
    _, start = read_header(bytes(data))
    second = data.index(c.packets[1].payload)  # packet 1's payload
    data[start + 10: second + 20] = bytes(second + 10 - start)  # wipe from inside packet 0 to inside packet 1
    bad = tmp_path / "wiped.ldc"
    bad.write_bytes(bytes(data))
    code, out, err = run("info", "--json", bad)
    facts = json.loads(out)
    assert code == 1 and facts["packets_damaged"] == 2 and facts["damaged_packets"] == [0, 1]
    assert any("packet 0" in e for e in facts["errors"]) and any("packet 1" in e for e in facts["errors"])
    assert one_line_error(err).endswith("2 damaged packet(s): 0, 1")


def test_decode_damaged_file(damaged, tmp_path):
    wav_path = tmp_path / "d.wav"
    code, out, err = run("decode", damaged, "-o", wav_path)
    assert code == 1
    line = one_line_error(err)
    assert str(damaged) in line and "packet 0" in line and "CRC" in line
    assert "--allow-damaged" in line and "strict=False" not in line  # says how to proceed, in the CLI's terms
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
    assert code == 2
    line = one_line_error(err)
    assert "nope" in line and "direct" in line


def test_steps_with_direct_decoder(encoded, tmp_path):
    code, _, err = run("decode", encoded, "-o", tmp_path / "x.wav", "--decoder", "direct", "--steps", 4)
    assert code == 2
    line = one_line_error(err)
    assert "direct" in line and "steps" in line


@pytest.mark.parametrize("options, needle", [(["--steps", 0], "steps"),
                                             (["--decoder", "mel2mel", "--steps", 0], "steps"),
                                             (["--decoder", "nope"], "unknown decoder")])
def test_decoder_options_checked_once_before_any_file(encoded, tmp_path, options, needle):
    """Options that are wrong for every file are a usage error (exit 2, one line), not one failure per file."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.ldc", "b.ldc"):
        shutil.copy(encoded, folder / name)
    code, out, err = run("decode", folder, "-o", tmp_path / "out", *options)
    assert code == 2 and not out and needle in one_line_error(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command, suffix", [("encode", ".wav"), ("decode", ".ldc"), ("info", ".ldc")])
def test_empty_file_is_named_empty(tmp_path, command, suffix):
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    code, _, err = run(command, empty, *(["-o", tmp_path / "out"] if command != "info" else []))
    assert code == 1 and "empty file (0 bytes)" in one_line_error(err)
    text = tmp_path / f"text{suffix}"
    text.write_text("not audio, not a stream\n")
    code, _, err = run(command, text, *(["-o", tmp_path / "out"] if command != "info" else []))
    assert code == 1 and "empty file" not in one_line_error(err)


def _mutants(data: bytes) -> dict[str, bytes]:
    """One file per damage class, the CRCs made to pass where the class allows it."""
    c = read_file(data)
    payloads = [p.payload for p in c.packets]
    flipped = bytearray(data)
    flipped[read_header(data)[1] + 5] ^= 0xFF

    def rewritten(header=c.header, ps=payloads):
        return bitstream.write_file(header, ps)

    return {
        "good": data,
        "trailing byte": data + b"\x00",
        "truncated": data[:-7],
        "packet CRC": bytes(flipped),
        "header representation (CRC fixed)": rewritten(dataclasses.replace(c.header, representation="latent")),
        "header mode (CRC fixed)": rewritten(dataclasses.replace(c.header, mode_id=3)),
        "header decoder (CRC fixed)": rewritten(dataclasses.replace(c.header, decoder="nosuch")),
        "last packet spliced into the middle": rewritten(ps=payloads[:1] + [payloads[-1]] + payloads[2:]),
        "random payload (CRC fixed)": rewritten(ps=payloads[:2] + [bytes(range(37, 137))] + payloads[3:]),
        "payload cut (CRC fixed)": rewritten(ps=payloads[:1] + [payloads[1][:-3]] + payloads[2:]),
    }


def test_info_and_decode_agree_on_every_mutant_class(encoded, tmp_path):
    """``ldcodec info`` exits 1 exactly for the files ``decode`` refuses, and says why on stderr."""
    for kind, data in _mutants(encoded.read_bytes()).items():
        path = tmp_path / "m.ldc"
        path.write_bytes(data)
        try:
            codec.decode(data)
            refused = None
        except bitstream.BitstreamError as exc:
            refused = exc
        code, _, err = run("info", path)
        assert code == (1 if refused else 0), (kind, refused, err)
        if refused:
            assert str(path) in one_line_error(err), kind
        assert (refused is None) == (kind == "good"), (kind, refused)


def test_info_exit_1_for_extra_bytes_and_header_contradictions(encoded, tmp_path):
    path = tmp_path / "extra.ldc"
    path.write_bytes(encoded.read_bytes() + b"\x00")
    code, out, err = run("info", "--json", path)
    assert code == 1 and "1 extra bytes" in one_line_error(err) and json.loads(out)["errors"]
    c = read_file(encoded.read_bytes())
    path.write_bytes(bitstream.write_file(dataclasses.replace(c.header, representation="latent"),
                                          [p.payload for p in c.packets]))
    code, out, err = run("info", path)
    assert code == 1 and "does not match mode" in one_line_error(err) and not out


def test_version():
    code, out, _ = run("--version")
    formats = f"bitstream format {bitstream.FORMAT_VERSION}, raw packets {bitstream.PACKET_VERSION}"
    assert code == 0 and out.strip() == f"ldcodec {codec.__version__} ({formats})"


def test_decode_help_describes_decode():
    from codec.cli import build_parser

    decode = build_parser()._subparsers._group_actions[0].choices["decode"]
    helps = {a.dest: a.help for a in decode._actions}
    assert helps["output"] and ".flac" in helps["output"] and "folder" in helps["output"]
    assert "sample" in helps["resume"] and "CRC" not in helps["resume"] and "settings" not in helps["resume"]


@pytest.mark.parametrize("suffix, fmt", [(".ogg", "OGG"), (".flac", "FLAC"), (".mp3", "MP3")])
def test_decode_format_from_suffix(encoded, tmp_path, suffix, fmt):
    out = tmp_path / f"x{suffix}"
    code, _, err = run("decode", encoded, "-o", out)
    if fmt not in sf.available_formats():  # an older libsndfile: refused up front, naming what works
        assert code == 2 and ".wav" in one_line_error(err)
        return
    assert code == 0, err
    assert sf.info(str(out)).format == fmt and sf.info(str(out)).samplerate == 16000


def test_decode_to_a_format_that_cannot_be_written_says_which_work(encoded, tmp_path):
    code, out, err = run("decode", encoded, "-o", tmp_path / "x.m4a")
    line = one_line_error(err)
    assert code == 2 and not out and "x.m4a" in line and ".wav" in line and ".flac" in line
    assert not (tmp_path / "x.m4a").exists()


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_several_inputs_to_a_file_name_is_refused(encoded, tmp_path, command):
    """``encode a b -o single.ldc`` would make a folder named single.ldc/: refused, naming the fix."""
    if command == "encode":
        inputs, out = [CLIP, DATA / "LJ001-0029.flac"], tmp_path / "single.ldc"
    else:
        inputs, out = [encoded, shutil.copy(encoded, tmp_path / "b.ldc")], tmp_path / "single.wav"
    code, stdout, err = run(command, *inputs, "-o", out)
    assert code == 2 and not stdout and "need a folder" in one_line_error(err)
    assert not out.exists()


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
