"""Listening page: a self-contained static folder that plays every decode of an evaluation beside
its numbers — ``index.html``, the clips (16 kHz 16-bit FLAC), a log-mel picture per clip (PNG, one
colour scale for the whole page), the rate–quality plot and ``results.json``. No server, no script,
relative links only: it opens from the file system in any browser.

    page = ListeningPage("report", files, seconds=10)       # refuses a non-empty folder it did not make
    results = evaluate(files, kbps=[0.6, 3], floors=True, peers=True, on_decode=page.add)
    page.write(results, command="ldcodec eval ...")          # → report/index.html
"""
from __future__ import annotations

import datetime
import hashlib
import json
import re
import shutil
from html import escape
from pathlib import Path
from urllib.parse import quote

import numpy as np
import soundfile as sf

from bitstream.modes import FRAME_RATE, SAMPLE_RATE

from . import __version__
from .evaluate import group_table_cells, jsonable, plot, pyplot, read, speaker_of, table_cells
from .features import log_mel

GENERATOR = "ldcodec listening page"
CLIPS = "clips"
REFERENCE = "reference"
MAX_WIDTH = 360  # px of the longest clip's picture
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h2{margin-top:1.6em;border-bottom:2px solid #ccc}
table{border-collapse:collapse;margin:.4em 0 1.2em}
th,td{padding:2px 6px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap;vertical-align:middle}
th:first-child,td:first-child,table.clip td:nth-child(-n+3),table.clip th:nth-child(-n+3){text-align:left}
th{background:#f0f0f0}
tr.reference{background:#e8f0ff}tr.floor{background:#f6f6f6}tr.peer{background:#fff6e8}
audio{height:30px;width:200px;vertical-align:middle}
table.clip th{white-space:normal}
img.mel{display:block}
.note{color:#555}
dl.legend{display:grid;grid-template-columns:max-content auto;gap:2px 12px;max-width:60em}
dl.legend dt{font-weight:600}dl.legend dd{margin:0}
footer{margin-top:2em;padding-top:.5em;border-top:1px solid #ccc;color:#555}
"""
# What each column of the tables means, its unit and which way is better (also each header's tooltip).
COLUMNS = {
    "kbps asked": "the rate asked of the codec (ldcodec's kbps, a Codec2 mode, an Opus bitrate)",
    "real kbps": "bits actually written, header and framing included, per second of the clip; lower is "
                 "cheaper (on clips under a few seconds the fixed overhead dominates)",
    "WB-PESQ": "ITU-T P.862.2 wideband PESQ, 1.0–4.64, higher is better; it compares waveforms, so a vocoder "
               "that draws its own phase scores lower than it sounds",
    "STOI": "short-time objective intelligibility, 0–1, higher is better; “—” when the clip has too little "
            "speech for it (under ≈ 0.4 s)",
    "mel dist": "mean absolute difference of the 80-band log-mel spectrograms (natural-log units), 0 = the "
                "same spectrum, lower is better",
    "pause dB": "power in the reference's pauses (frames 40 dB below its loudest) of the decode minus that of "
                "the reference, dB; 0 is best, positive = noise or hiss added in pauses, negative = pauses "
                "made quieter",
    "harmonics dB": "how far the harmonics (1–4 kHz, voiced frames) stand out of the spectrum, decode minus "
                    "reference, dB; 0 is best, negative = harmonics smeared into noise (rough, breathy), "
                    "positive = more peaked than the reference",
    "DNSMOS": "Microsoft DNSMOS P.835 overall quality predicted from the decode alone, 1–5, higher is better",
    "DistillMOS": "DistillMOS mean opinion score predicted from the decode alone, 1–5, higher is better",
    "RTF enc": "real-time factor of encoding: seconds of processing per second of audio on this machine, lower "
               "is faster (under 1: faster than real time); “—” not measured (floors have no encoder)",
    "RTF dec": "real-time factor of decoding, as RTF enc; “—” not measured (a peer's command-line run, encode "
               "and decode together, counts as its encode)",
}
ROWS = ("Rows: <strong>reference</strong> is the clip itself; <strong>input (uncoded)</strong> scores the clip "
        "against itself (the ceiling of each metric; it plays the reference); <strong>copy synthesis</strong> "
        "renders the clip's own unquantised features through a vocoder (the best a decoder using it can do) and "
        "<strong>Griffin-Lim</strong> its log-mel with no model (floors); <strong>ldcodec</strong> rows are "
        "encoded and decoded at each rate; <strong>Codec2</strong> and <strong>Opus</strong> are peers run "
        "through their command-line tools.")


def check(folder: str | Path, seconds: float = 10.0) -> Path:
    """``folder`` as a Path if it is new, empty or a listening page made here before (it will be
    replaced) and ``seconds`` (of each clip) is positive; a ValueError for anything else, so no
    one's files are overwritten."""
    if not seconds > 0:
        raise ValueError(f"a listening page needs clips longer than 0 s, not {seconds:g}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder for the listening page")
    index = folder / "index.html"
    if folder.is_dir() and any(folder.iterdir()) and not (
            index.is_file() and GENERATOR in index.read_text(errors="replace")[:1000]):
        raise ValueError(f"{folder} is neither empty nor a listening page made by ldcodec: give a new or empty folder")
    return folder


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"


def _th(h: str) -> str:
    """A header cell, with :data:`COLUMNS`' explanation of the column as its tooltip."""
    tip = COLUMNS.get(h)
    return f'<th title="{escape(tip)}">{escape(h)}</th>' if tip else f"<th>{escape(h)}</th>"


def _legend() -> str:
    """What the rows are and what each column measures, with its unit and which way is better."""
    items = "".join(f"<dt>{escape(name)}</dt><dd>{escape(text)}</dd>" for name, text in COLUMNS.items())
    return f'<h3>How to read the numbers</h3>\n<p class="note">{ROWS}</p>\n<dl class="legend">{items}</dl>'


def _table(head: list[str], rows: list[list[str]], kinds: list[str] | None = None, cls: str = "") -> str:
    """HTML table of CSS class ``cls``; ``head`` is text (known columns get their explanation as a tooltip),
    ``rows`` hold HTML cells, ``kinds`` name each row's CSS class."""
    out = [f'<table class="{cls}"><tr>' + "".join(_th(h) for h in head) + "</tr>"]
    for cells, kind in zip(rows, kinds or [""] * len(rows)):
        out.append(f'<tr class="{escape(kind)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(out) + "</table>"


def _text_table(head: list[str], rows: list[list[str]]) -> str:
    return _table(head, [[escape(c) for c in cells] for cells in rows])


class ListeningPage:
    """A listening page being made in ``folder`` for ``files``: :meth:`add` (the ``on_decode``
    callback of :func:`codec.evaluate.evaluate`) writes each decode's clip and picture, :meth:`write`
    the page. Clips and pictures hold the first ``seconds`` (s) of each file; metrics stay whole-file."""

    def __init__(self, folder: str | Path, files: list[Path], seconds: float = 10.0):
        import matplotlib

        pyplot()  # matplotlib on Agg, or a RuntimeError naming the extra to install
        self.folder, self.files, self.seconds = check(folder, seconds), list(files), seconds
        self._n = int(seconds * SAMPLE_RATE)  # samples kept of each clip
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.folder / CLIPS, ignore_errors=True)
        (self.folder / "index.html").write_text(self._html(f"<p>Being made by ldcodec {__version__}…</p>"))
        self._palette = (matplotlib.colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
        self._order: dict[str, int] = {REFERENCE: 0}  # system → its number in clip names
        self._first: dict[str, np.ndarray] = {}  # decodes of files[0], for the plot
        self._widths: dict[str, int] = {}  # stem of each clip written → its picture's width (px)
        self._digests: list[str] = []  # of each file's reference clip as played
        self._same: set[tuple[int, str]] = set()  # (file, system) whose decode plays exactly as the reference
        refs = [read(p) for p in self.files]
        self._seconds = [len(w) / SAMPLE_RATE for w in refs]
        mels = [log_mel(w[: self._n]) for w in refs]
        everything = np.concatenate(mels, axis=1)
        self.scale = float(np.percentile(everything, 1)), float(everything.max())  # natural-log mel units
        self.px_per_s = min(FRAME_RATE, MAX_WIDTH * FRAME_RATE / max(m.shape[1] for m in mels))  # one time scale
        for i, (wav, mel) in enumerate(zip(refs, mels)):
            self._save(i, REFERENCE, wav, mel)
            self._digests.append(self._digest(wav))

    def _digest(self, wav: np.ndarray) -> str:
        """Fingerprint of the part of ``wav`` (16 kHz float) a clip plays."""
        return hashlib.sha256(np.clip(wav[: self._n], -1, 1).astype(np.float32).tobytes()).hexdigest()

    def _stem(self, i: int, system: str) -> str:
        """Relative path (no suffix) of the clip and picture of ``system`` on ``files[i]``."""
        number = self._order.setdefault(system, len(self._order))
        return f"{CLIPS}/{i + 1:03d}/{number:02d}-{_slug(system)}"

    def _save(self, i: int, system: str, wav: np.ndarray, mel: np.ndarray | None = None) -> None:
        stem = self._stem(i, system)
        path = self.folder / stem
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(f"{path}.flac", np.clip(wav[: self._n], -1, 1), SAMPLE_RATE, subtype="PCM_16")
        mel = log_mel(wav[: self._n]) if mel is None else mel
        frames = mel.shape[1]
        edges = np.linspace(0, frames, max(1, round(frames * self.px_per_s / FRAME_RATE)) + 1).astype(int)
        columns = np.add.reduceat(mel, edges[:-1], axis=1) / np.diff(edges)  # mean of the frames in each column
        lo, hi = self.scale
        index = np.clip((columns - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)[::-1]  # low bands down
        from PIL import Image

        image = Image.fromarray(index)
        image.putpalette(self._palette.ravel().tolist())
        image.save(f"{path}.png", optimize=True)
        self._widths[stem] = image.width

    def add(self, i: int, system: str, audio: np.ndarray) -> None:
        """Keep the decode of ``system`` on ``files[i]`` (16 kHz float32) as a clip and a picture."""
        if system == REFERENCE:
            raise ValueError(f"a system may not be called {REFERENCE!r} on a listening page")
        if i == 0:
            self._first[system] = audio
        if self._digest(audio) == self._digests[i]:  # e.g. "input (uncoded)": the reference row plays it
            self._same.add((i, system))
            return
        self._save(i, system, audio)

    def _media(self, i: int, system: str) -> list[str]:
        """The <audio> and <img> cells of one row."""
        if (i, system) in self._same:
            return ['<span class="note">the reference (same audio)</span>', "—"]
        stem = self._stem(i, system)
        if stem not in self._widths:
            return ["—", "—"]
        return [f'<audio controls preload="none" src="{escape(quote(stem + ".flac"))}"></audio>',
                f'<img class="mel" src="{escape(quote(stem + ".png"))}" width="{self._widths[stem]}" height="80" '
                f'alt="log-mel of {escape(system)}">']

    def _clip(self, i: int, results: list[dict]) -> str:
        """One file's section: the reference and every system's decode with its own numbers."""
        path, seconds = self.files[i], self._seconds[i]
        speaker, group = speaker_of(path)
        who = f"speaker {speaker}, {group}, " if group != "all" else ""
        head, rows = table_cells([{**r, **r["rows"][i]} for r in results])
        keep = [j for j, h in enumerate(head) if j and not h.startswith("RTF")]  # speed is in the summary
        cut = f"first {self.seconds:g} s" if seconds > self.seconds else "whole clip"
        head = head[:1] + ["listen", f"log-mel ({cut})"] + [head[j] for j in keep]
        cells = [[REFERENCE] + self._media(i, REFERENCE) + ["—"] * len(keep)] + [
            [escape(row[0])] + self._media(i, r["system"]) + [escape(row[j]) for j in keep]
            for r, row in zip(results, rows)]
        return (f'<h2 id="clip-{i + 1}">{i + 1}. {escape(path.name)}</h2>\n'
                f'<p class="note">{escape(str(path))} — {escape(who)}{seconds:.1f} s</p>\n'
                + _table(head, cells, [REFERENCE] + [r["kind"] for r in results], "clip"))

    def _html(self, body: str) -> str:
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
                f'<meta name="generator" content="{GENERATOR} {__version__}">\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>ldcodec listening page</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")

    def write(self, results: list[dict], command: str, notes: list[str] = ()) -> Path:
        """Write the rate–quality plot, ``results.json`` and ``index.html`` (returned) for the
        ``results`` of :func:`codec.evaluate.evaluate` on ``files``; ``command`` made them."""
        parts = [f"<h1>ldcodec listening page</h1>\n<p>{len(self.files)} clip(s), "
                 f"{sum(self._seconds):.1f} s of speech. Each row plays the first {self.seconds:g} s of a clip "
                 "(16 kHz FLAC); its numbers are over the whole clip. The pictures are log-mel spectrograms (80 "
                 f"bands, 0–8 kHz, low at the bottom, {self.px_per_s:.0f} pixels per second) on one colour scale "
                 f"for the whole page (natural-log mel magnitude {self.scale[0]:.1f} … {self.scale[1]:.1f}, dark "
                 "to light).</p>"]
        if any(r["kind"] == "ldcodec" for r in results):
            plot(self.files[0], results, self._first, self.folder / "plot.png", max_seconds=self.seconds)
            parts.append('<img src="plot.png" alt="log-mel of the first clip and the rate–quality curve" '
                         'style="max-width:100%">')
        parts += ["<h2>Summary</h2>", '<p class="note">Means over all clips (a metric a clip cannot give, '
                  '“—”, is left out of its mean); the same numbers as <a href="results.json">results.json</a>. '
                  'Hover over a column\'s name for what it measures.</p>', _text_table(*table_cells(results)),
                  _legend()]
        if len({g for r in results for g in r["groups"]}) > 1:
            parts += ["<h3>Per speaker group</h3>", _text_table(*group_table_cells(results))]
        parts += [f'<p class="note">Note: {escape(n)}</p>' for n in notes]
        parts.append("<p>Clips: " + " · ".join(f'<a href="#clip-{i + 1}">{escape(p.name)}</a>'
                                               for i, p in enumerate(self.files)) + "</p>")
        parts += [self._clip(i, results) for i in range(len(self.files))]
        made = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        parts.append(f"<footer>Made on {escape(made)} by ldcodec {__version__} with<br><code>{escape(command)}"
                     "</code></footer>")
        (self.folder / "results.json").write_text(json.dumps(jsonable(
            {"command": command, "files": [str(f) for f in self.files], "results": results}), indent=1))
        index = self.folder / "index.html"
        index.write_text(self._html("\n".join(parts)))
        return index
