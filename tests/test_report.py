"""Listening page (codec/report.py, ``ldcodec eval --html``): every clip plays and decodes, the
numbers match the table and the JSON, names are escaped, links are relative, someone else's folder
is never overwritten, and a real browser (headless Chromium, when installed) renders it.

One in-process ``ldcodec eval`` on two 2 s cuts of a shipped clip at 3 kbps (peers only when their
tools are installed) feeds most tests.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec import evaluate as ev
from codec import peers
from codec.report import COLUMNS, ListeningPage
from cli_run import one_line_error, run

DATA = Path(__file__).parent / "data"
SECONDS, PLAYED = 2.0, 1.5  # clip length, --html-seconds
NAMES = ['clip <b>&"x".wav', "plain.wav"]  # the first must be escaped everywhere
CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


class Page(HTMLParser):
    """Tags of interest (audio/img src, a href) and every table as rows of cell texts."""

    def __init__(self, text: str):
        super().__init__()
        self.audio, self.img, self.links, self.tables, self._cell = [], [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        {"audio": self.audio, "img": self.img, "a": self.links}.get(tag, []).append(attrs.get("src", attrs.get("href")))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """(folder, parsed page, raw HTML, stdout, JSON, clip paths) of one ``ldcodec eval --html`` run."""
    tmp = tmp_path_factory.mktemp("report")
    wav, sr = sf.read(DATA / "LJ001-0028.flac", dtype="float32")
    clips = [tmp / name for name in NAMES]
    for k, clip in enumerate(clips):
        start = int(k * SECONDS * sr)
        sf.write(clip, wav[start: start + int(SECONDS * sr)], sr)
    folder, js = tmp / "page", tmp / "eval.json"
    no_peers = [] if all(peers.available().values()) else ["--no-peers"]
    code, out, err = run("eval", *clips, "--kbps", "3", "--html", folder, "--html-seconds", PLAYED, "--json", js,
                         *no_peers)
    assert code == 0, err
    text = (folder / "index.html").read_text()
    return folder, Page(text), text, out, json.loads(js.read_text()), clips


def local(folder: Path, src: str) -> Path:
    """The file a relative link names; fails on absolute or remote links."""
    assert src and "://" not in src and not src.startswith(("/", "\\")) and ".." not in src, src
    path = (folder / src).resolve()
    assert path.is_relative_to(folder.resolve()) and path.is_file(), src
    return path


def test_every_clip_plays(made):
    folder, page, _, _, data, clips = made
    systems = [r["system"] for r in data["results"] if r["system"] != "input (uncoded)"]
    assert len(page.audio) == len(clips) * (1 + len(systems))  # the reference and every system, per clip
    lengths = []
    for src in page.audio:
        wav, sr = sf.read(local(folder, src), dtype="float32")
        assert sr == 16000 and wav.ndim == 1 and np.abs(wav).max() > 0.01
        lengths.append(len(wav) / sr)
    assert max(lengths) <= PLAYED and min(lengths) > PLAYED - 0.1  # cut to --html-seconds
    ref = sf.read(local(folder, page.audio[0]))[0]  # first row: the first clip's 16 kHz reference
    assert np.abs(ref - ev.read(clips[0])[: len(ref)]).max() < 1e-4
    ldc = sf.read(local(folder, page.audio[1 + systems.index("ldcodec 3 kbps mel direct")]))[0]
    for section in page.tables[1:]:  # the uncoded input is the reference: its row says so instead of playing it
        uncoded = next(row for row in section if row[0] == "input (uncoded)")
        assert uncoded[1] == "the reference (same audio)" and uncoded[2] == "—"
    assert not np.allclose(ldc[: len(ref)], ref[: len(ldc)], atol=0.01)  # a decode, not the reference again
    for src in page.img:
        assert local(folder, src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(page.img) == 1 + len(page.audio)  # the plot, then a picture per row
    assert "results.json" in page.links and json.loads((folder / "results.json").read_text())["results"]


def test_numbers_match_table_and_json(made):
    _, page, _, out, data, clips = made
    table = [[c.strip() for c in line.strip().strip("|").split("|")] for line in out.split("\n\n")[0].splitlines()]
    assert page.tables[0] == [table[0]] + table[2:]  # the summary is the printed table, cell for cell
    for i, section in enumerate(page.tables[1:]):
        head, reference, *rows = section
        assert head[:3] == ["system", "listen", f"log-mel (first {PLAYED:g} s)"] and reference[0] == "reference"
        assert [row[0] for row in rows] == [r["system"] for r in data["results"]]
        for row, r in zip(rows, data["results"]):
            cells = dict(zip(head, row))
            assert r["rows"][i]["file"] == str(clips[i])
            assert float(cells["STOI"]) == pytest.approx(r["rows"][i]["stoi"], abs=6e-4)  # this clip's own numbers
            if r["kind"] == "ldcodec":
                assert float(cells["real kbps"]) == pytest.approx(r["rows"][i]["real_kbps"], abs=0.006)
    assert len(page.tables) == 1 + len(clips)  # one speaker group: no per-group table


def test_names_escaped_links_relative(made):
    _, page, text, _, _, clips = made
    assert "<b>" not in text and 'clip &lt;b&gt;&amp;&quot;x&quot;.wav' in text
    assert {link for link in page.links if link.startswith("#")} == {"#clip-1", "#clip-2"}
    assert "http" not in text and "<script" not in text  # nothing fetched, nothing run
    footer = text[text.index("<footer>"):]
    assert "ldcodec eval " in footer and "--html-seconds 1.5" in footer and "clip &lt;b&gt;" in footer


def test_refuses_a_folder_it_did_not_make(tmp_path):
    clip = tmp_path / "x.wav"
    sf.write(clip, np.zeros(1600, np.float32), 16000)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    for argv, needle in [(["--html", tmp_path / "mine"], "neither empty nor a listening page"),
                         (["--html", clip], "is a file"),
                         (["--html", tmp_path / "new", "--html-seconds", "0"], "longer than 0 s")]:
        code, out, err = run("eval", clip, "--kbps", "3", *argv)
        assert code == 2 and not out and needle in one_line_error(err)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me" and not (tmp_path / "new").exists()


def test_remade_page_replaces_its_clips(tmp_path):
    """A page made again in its folder drops the clips of systems no longer measured."""
    clip = tmp_path / "x.wav"
    sf.write(clip, sf.read(DATA / "LJ001-0029.flac", dtype="float32")[0][:16000], 16000)
    quiet = ev.System("half volume", "floor", run=lambda wav: (wav / 2, None))
    flipped = ev.System("inverted", "floor", run=lambda wav: (-wav, None))
    for systems in ([quiet, flipped], [flipped]):
        page = ListeningPage(tmp_path / "page", [clip], seconds=0.5)
        page.write(ev.evaluate([clip], systems=systems, on_decode=page.add), "test")
    clips = sorted(p.name for p in (tmp_path / "page" / "clips" / "001").iterdir())
    assert clips == ["00-reference.flac", "00-reference.png", "01-inverted.flac", "01-inverted.png"]
    assert "half volume" not in (tmp_path / "page" / "index.html").read_text()
    with pytest.raises(ValueError, match="reference"):
        page.add(0, "reference", np.zeros(100, np.float32))


def test_numbers_are_explained(made):
    """Every column of the summary is explained (unit, which way is better) in the legend and as its header's
    tooltip; RTF a row did not measure reads "—", not 0.000."""
    _, page, text, _, data, _ = made
    head, *rows = page.tables[0]
    legend = text[text.index("<h3>How to read the numbers</h3>"):text.index("</dl>")]
    for column in head[1:]:
        assert f"<dt>{column}</dt>" in legend and f'title="{escape(COLUMNS[column])}">{column}</th>' in text
    for name in ("mel dist", "pause dB", "harmonics dB", "RTF enc"):
        assert any(word in COLUMNS[name] for word in ("is best", "is better", "is faster"))
    for row, r in zip(rows, data["results"]):
        cells = dict(zip(head, row))
        if r["kind"] == "floor":
            assert cells["RTF enc"] == "—" and r["rtf_enc"] is None and float(cells["RTF dec"]) >= 0
        elif r["kind"] == "peer":
            assert cells["RTF dec"] == "—" and float(cells["RTF enc"]) > 0
        else:
            assert float(cells["RTF enc"]) > 0 and float(cells["RTF dec"]) > 0


def test_short_clip_has_no_stoi_and_no_warning(tmp_path):
    """STOI of a clip too short for it (0.05 s) is "—" (NaN, null in the JSON), silently."""
    import warnings

    clip = tmp_path / "short.wav"
    sf.write(clip, sf.read(DATA / "LJ001-0029.flac", dtype="float32")[0][16000:16800], 16000)
    same = ev.System("half volume", "floor", run=lambda wav: (wav / 2, None))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (result,) = ev.evaluate([clip], systems=[same])
    assert np.isnan(result["stoi"]) and ev.table_cells([result])[1][0][4] == "—"
    assert not [w for w in caught if "STFT frames" in str(w.message)]


def test_plot_names_every_curve(tmp_path):
    """The rate–quality panel: WB-PESQ and STOI of ldcodec and of each peer family, all in the legend; the rate
    axis has round ticks across every point, not only ldcodec's."""
    plt = ev.pyplot()

    def row(system, kind, kbps, pesq, stoi):
        return {"system": system, "kind": kind, "decoder": "direct" if kind == "ldcodec" else None,
                "real_kbps": kbps, "pesq": pesq, "stoi": stoi, "rows": [{}]}

    results = [row("ldcodec 3", "ldcodec", 2.9, 2.2, 0.89), row("ldcodec 6", "ldcodec", 5.8, 2.8, 0.93)]
    peer_rows = [row("Codec2 1200", "peer", 1.3, 1.5, 0.85), row("Codec2 3200", "peer", 3.3, 1.7, 0.9),
                 row("Opus 6 kbps", "peer", 7.0, 2.0, 0.91)]
    fig, ax = plt.subplots()
    ev._curves(ax, results, peer_rows)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == [f"{name} {metric}" for name in ("ldcodec", "Codec2", "Opus") for metric in ("WB-PESQ", "STOI")]
    ticks = [float(t.get_text()) for t in ax.get_xticklabels()]
    assert ticks == [2, 3, 5] and ax.get_xlim()[0] < 1.3 and ax.get_xlim()[1] > 7.0
    assert ev._rate_axis([2.9])[1] == [2, 3, 4] and ev._rate_axis([2.9, 5.8])[1] == [3, 4, 5, 6]
    plt.close(fig)


def test_html_without_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    code, _, err = run("eval", tmp_path / "x.wav", "--html", tmp_path / "page")
    assert code == 2 and "ldcodec[eval]" in one_line_error(err)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium): "
                                             "the listening page is not rendered in a browser")
def test_renders_in_chromium(made, tmp_path):
    from PIL import Image

    folder = made[0]
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
                    (folder / "index.html").resolve().as_uri()], check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    assert len(pixels) == 1280 * 2000
    assert (pixels.min(axis=1) < 200).mean() > 0.02  # text and tables: not a blank page
    colourful = (pixels.max(axis=1) - pixels.min(axis=1) > 60).mean()
    assert colourful > 0.01, colourful  # the plot and the spectrograms loaded (broken images: < 0.001)
