"""``ldcodec eval``: rate–quality table, JSON, PNG plot, and its errors (codec/evaluate.py + cli).

One in-process run on a 4 s cut of a shipped clip at 0.6 and 3 kbps feeds most tests; the error
cases stop before any model runs.
"""
from __future__ import annotations

import json
import math
import shutil
import struct
from pathlib import Path

import pytest
import soundfile as sf

from codec import evaluate as ev
from codec.bundle import resolve
from cli_run import one_line_error, run

DATA = Path(__file__).parent / "data"
KBPS = (0.6, 3.0)
SECONDS = 4.0
HEADER = "| system | kbps asked | real kbps | WB-PESQ | STOI | mel dist | pause dB | harmonics dB | RTF enc | RTF dec |"
FLOORS = ["input (uncoded)", "copy synthesis (direct vocoder)", "copy synthesis (mel2mel vocoder)",
          "Griffin-Lim (100 iterations)"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """(stdout, JSON, PNG path, clip path) of one ``ldcodec eval`` run."""
    tmp = tmp_path_factory.mktemp("eval")
    wav, sr = sf.read(DATA / "LJ001-0028.flac", dtype="float32")
    clip = tmp / "clip.wav"
    sf.write(clip, wav[: int(SECONDS * sr)], sr)
    png, js = tmp / "plots" / "eval.png", tmp / "eval.json"  # plots/ does not exist yet
    code, out, err = run("eval", clip, "--kbps", *KBPS, "--plot", png, "--json", js, "--no-peers")
    assert code == 0, err
    return out, json.loads(js.read_text()), png, clip


def test_table(evaluated):
    out, data, _, _ = evaluated
    lines = out.strip().splitlines()
    assert lines[0] == HEADER
    assert lines[1] == "|---|---|---|---|---|---|---|---|---|---|"
    assert len(lines) == 2 + len(FLOORS) + len(KBPS)  # one speaker group: no per-group table
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    n = len(FLOORS)
    assert [r[0] for r in rows[:n]] == FLOORS
    for cells in rows[:n]:
        assert cells[1] == cells[2] == "—"  # no bitstream, no rate
        assert 0 < float(cells[4]) <= 1
    uncoded = rows[0]  # the input scored against itself: the ceiling of every column
    assert float(uncoded[3]) > 4.5 and float(uncoded[4]) == 1.0
    for cells, kbps, r in zip(rows[n:], KBPS, data["results"][n:]):
        assert len(cells) == 10
        assert float(cells[1]) == kbps
        assert cells[0] == f"ldcodec {kbps:g} kbps {'latent' if kbps < 0.9 else 'mel'} direct"  # the ladder's choice
        assert float(cells[2]) == pytest.approx(r["real_kbps"], abs=0.006)  # table shows the JSON means
        assert float(cells[4]) == pytest.approx(r["stoi"], abs=6e-4)


def test_json(evaluated):
    _, data, _, clip = evaluated
    assert data["files"] == [str(clip)]
    assert data["kbps"] == list(KBPS)
    assert [r["kind"] for r in data["results"]] == ["floor"] * len(FLOORS) + ["ldcodec"] * len(KBPS)
    assert [r["kbps"] for r in data["results"]] == [None] * len(FLOORS) + list(KBPS)
    for r in data["results"][len(FLOORS):]:
        assert r["decoder"] == "direct"  # None → the mode's default, named
        assert {"real_kbps", "pesq", "stoi", "mel", "si_sdr", "pause_db", "harmonic_db", "rtf_enc", "rtf_dec",
                "rows"} <= set(r)
        (row,) = r["rows"]
        assert row["file"] == str(clip) and row["group"] == "all" and list(r["groups"]) == ["all"]
        assert row["seconds"] == pytest.approx(SECONDS)
        assert row["real_kbps"] == pytest.approx(row["bytes"] * 8 / SECONDS / 1000)
        assert r["real_kbps"] == pytest.approx(row["real_kbps"])  # one file: mean == row
        assert 0.0 <= r["stoi"] <= 1.0 and r["mel"] > 0
        assert r["pesq"] is None or 1.0 <= r["pesq"] <= 4.7
        assert r["rtf_enc"] > 0 and r["rtf_dec"] > 0
    by_rate = {r["kbps"]: r for r in data["results"][len(FLOORS):]}
    assert by_rate[3.0]["real_kbps"] <= 3.0  # 0.6 may not fit: the 40-byte header alone is 0.08 kbps
    assert by_rate[3.0]["rows"][0]["bytes"] > by_rate[0.6]["rows"][0]["bytes"]


def test_png(evaluated):
    _, _, png, _ = evaluated
    blob = png.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    assert blob[12:16] == b"IHDR"
    width, height = struct.unpack(">II", blob[16:24])
    assert 600 <= width <= 4000 and 400 <= height <= 2000
    assert 20_000 < len(blob) < 5_000_000


@pytest.mark.parametrize("argv, needle", [
    (["--kbps", "10"], "outside the supported range"),
    (["--kbps", "3", "--decoder", "nosuch"], "unknown decoder"),
    (["--kbps", "3", "--decoder", "direct:4"], "no steps knob"),
    (["--kbps", "3", "--decoder", "mel2mel:x"], "must be an integer"),
])
def test_usage_errors(tmp_path, argv, needle):
    clip = tmp_path / "x.wav"
    sf.write(clip, [0.0] * 1600, 16000)
    code, out, err = run("eval", clip, *argv)
    assert code == 2 and not out
    assert needle in one_line_error(err)


def test_missing_and_empty_inputs(tmp_path):
    code, _, err = run("eval", tmp_path / "nope.wav")
    assert code == 2 and "no such file" in one_line_error(err)
    (tmp_path / "notes.txt").write_text("not audio")
    code, _, err = run("eval", tmp_path)
    assert code == 2 and "files in" in one_line_error(err)


def test_unreadable_file_in_subfolder_fails(tmp_path):
    bad = tmp_path / "sub" / "bad.wav"  # found by the recursive walk, then fails to decode
    bad.parent.mkdir()
    bad.write_bytes(b"RIFF not really a wave file")
    code, out, err = run("eval", tmp_path, "--kbps", "3")
    assert code == 1 and not out
    assert str(bad) in one_line_error(err)


def test_plot_without_matplotlib(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # `import matplotlib` → ImportError
    with pytest.raises(RuntimeError, match=r"pip install 'ldcodec\[eval\]'"):
        ev.pyplot()


def test_jsonable_nan():
    assert ev.jsonable({"a": [float("nan"), 1.0], "b": (math.inf, "x")}) == {"a": [None, 1.0], "b": [None, "x"]}


def test_decoder_specs_with_steps(tmp_path):
    clip = tmp_path / "x.wav"
    sf.write(clip, sf.read(DATA / "LJ001-0028.flac", dtype="float32")[0][:24000], 16000)
    code, out, err = run("eval", clip, "--kbps", "3", "--decoder", "direct", "--decoder", "mel2mel:2",
                         "--no-floors", "--no-peers")
    assert code == 0, err
    assert [line.split("|")[1].strip() for line in out.strip().splitlines()[2:]] == [
        "ldcodec 3 kbps mel direct", "ldcodec 3 kbps mel mel2mel:2"]


def test_incompatible_decoders_are_skipped_with_a_note(tmp_path):
    """At 0.6 kbps (latent) mel2mel cannot run, at 1.2 kbps a bundle without a lat2lat model for the 10-channel latent
    cannot run lat2lat: their rows are left out with a note, the run goes on."""
    clip = tmp_path / "x.wav"
    sf.write(clip, sf.read(DATA / "LJ001-0028.flac", dtype="float32")[0][:24000], 16000)
    code, out, err = run("eval", clip, "--kbps", "0.6", "--decoder", "direct", "--decoder", "lat2lat:2",
                         "--decoder", "mel2mel:2", "--no-floors", "--no-peers")
    assert code == 0, err
    rows = [line.split("|")[1].strip() for line in out.strip().splitlines()[2:] if line.startswith("| ldcodec")]
    assert rows == ["ldcodec 0.6 kbps latent direct", "ldcodec 0.6 kbps latent lat2lat:2"]
    assert "Note: mel2mel:2 skipped at 0.6 kbps: it cannot read latent streams" in out
    code, out, err = run("eval", clip, "--kbps", "3", "--decoder", "lat2lat", "--no-floors", "--no-peers")
    assert code == 2 and "nothing to evaluate" in one_line_error(err)
    # 1.2 kbps: the 10-channel latent, with a bundle that has no lat2lat model for it
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for f in resolve().path.iterdir():
        if not f.name.startswith("lat2lat."):
            shutil.copy(f, bundle / f.name)
    code, out, err = run("eval", clip, "--kbps", "1.2", "--decoder", "direct", "--decoder", "lat2lat:2",
                         "--no-floors", "--no-peers", "--bundle", bundle)
    assert code == 0, err
    assert [line.split("|")[1].strip() for line in out.strip().splitlines()[2:] if line.startswith("| ldcodec")] == [
        "ldcodec 1.2 kbps latent direct"]
    assert "Note: lat2lat:2 skipped at 1.2 kbps: bundle ldc-mel-v1 has no lat2lat model for its latent" in out


def test_bundle_option(tmp_path):
    """--bundle: the rows are made with that bundle (here one without the latent model: mel at 0.6 kbps)."""
    import shutil

    from codec.bundle import shipped_bundles

    bundle = tmp_path / "mine"
    bundle.mkdir()
    for f in ("config.json", "vocoder.safetensors"):
        shutil.copy(shipped_bundles()[0] / f, bundle / f)
    clip = tmp_path / "x.wav"
    sf.write(clip, sf.read(DATA / "LJ001-0028.flac", dtype="float32")[0][:24000], 16000)
    code, out, err = run("eval", clip, "--kbps", "0.6", "--bundle", bundle, "--no-floors", "--no-peers")
    assert code == 0, err
    assert "| ldcodec 0.6 kbps mel direct |" in out


def test_representations_and_compatible_decoders(evaluated):
    """Both representations at one rate: each decoder runs only on the streams it can read."""
    _, _, _, clip = evaluated
    results = ev.evaluate([clip], [0.6], ["direct", "mel2mel:2", "lat2lat:2"], representations=["mel", "latent"])
    assert all(r["kind"] == "ldcodec" for r in results)  # no floors or peers unless asked
    assert [(r["representation"], r["decoder"]) for r in results] == [
        ("mel", "direct"), ("mel", "mel2mel:2"), ("latent", "direct"), ("latent", "lat2lat:2")]
    assert ev.evaluate([clip], [3.0], ["direct"], representations=["latent"]) == []  # latent stops at 1.3 kbps
