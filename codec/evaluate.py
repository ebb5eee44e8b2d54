"""Rate–quality evaluation: ldcodec at several rates beside its floors and its peers, on the same
files in one run; tables (overall and per speaker group), JSON and a plot.

    from codec.evaluate import evaluate, table
    results = evaluate([Path("a.wav")], kbps=[0.6, 3], decoders=[None], floors=True, peers=True)
    print(table(results))

Systems: ``ldcodec`` rows (real kbps from the ``.ldc`` bytes, header included, over the input
duration), ``floor`` rows that need no bitstream (copy synthesis: the input's own features through
each vocoder a decoder renders with; Griffin-Lim on the same log-mel) and ``peer`` rows (Codec2 and
Opus through their CLI tools, when installed). Metrics (WB-PESQ, STOI, log-mel distance, SI-SDR,
energy added in pauses, optionally DNSMOS and DistillMOS) are computed after aligning each decode
to its 16 kHz reference; RTF = seconds of processing per second of audio. Decoders are given as
specs ``name`` or ``name:steps`` (``mel2mel:8``). Files in the team's data layout
(``real/index.tsv`` above them) are also reported per speaker group.
"""
from __future__ import annotations

import csv
import math
import os
import re
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from . import api
from . import peers as peer_tools
from .audio import SAMPLE_RATE, AudioInputError, load, prepare
from .metrics import align, all_metrics, mos_available, stoi

MEANS = ("real_kbps", "pesq", "stoi", "stoi_clean", "mel", "si_sdr", "pause_db", "harmonic_db", "rtf_enc", "rtf_dec",
         "dnsmos", "distillmos")
INSTALL_HINT = "pip install 'ldcodec[eval]'"
# The team's held-out dev speakers. They are not shipped with the package: the default is
# ``shared/data/real/dev`` beside the repository checkout (``<checkout>/../shared``, which is where an
# editable install from the checkout finds it); anywhere else, set ``$LDCODEC_DEV_DATA``.
CHECKOUT = Path(__file__).resolve().parents[1]  # the repository root of an editable install
DEV_SPLIT = Path(os.environ.get("LDCODEC_DEV_DATA", CHECKOUT.parent / "shared" / "data" / "real" / "dev"))


def read(path: Path) -> np.ndarray:
    """Any audio file → mono float32 16 kHz; errors name the file."""
    try:
        return prepare(*load(path))[0]
    except AudioInputError as exc:
        raise AudioInputError(str(exc) if str(path) in str(exc) else f"{path}: {exc}") from None


def split_spec(spec: str | None) -> tuple[str | None, int | None]:
    """Decoder spec ``"name"`` or ``"name:steps"`` (e.g. ``"mel2mel:8"``) → (name, steps); None → (None, None)."""
    if spec is None:
        return None, None
    name, _, steps = spec.partition(":")
    try:
        return name, int(steps) if steps else None
    except ValueError:
        raise ValueError(f"decoder spec {spec!r}: steps after ':' must be an integer") from None


def dev_files(folder: Path = DEV_SPLIT, per_speaker: int | None = None) -> list[Path]:
    """Audio files of the held-out dev speakers (:data:`DEV_SPLIT`: ``$LDCODEC_DEV_DATA``, else
    ``../shared/data/real/dev`` beside the checkout), the first ``per_speaker`` of each speaker folder (all if None)."""
    from .train.data import list_audio

    if not Path(folder).is_dir():
        raise FileNotFoundError(f"no dev split at {folder}: pass audio files or set LDCODEC_DEV_DATA")
    by_speaker: dict[Path, list[Path]] = {}
    for path in list_audio(folder):
        by_speaker.setdefault(path.parent, []).append(path)
    return [p for files in by_speaker.values() for p in files[:per_speaker]]


def select_files(folder: Path, pattern: str | None = None, per_speaker: int | None = None) -> list[Path]:
    """The benches' selection: every audio file under ``folder`` whose name matches the regex
    ``pattern`` if given, else :func:`dev_files` (the first ``per_speaker`` of each speaker folder)."""
    from .train.data import list_audio

    if pattern:
        return [p for p in list_audio(folder) if re.search(pattern, p.name)]
    return dev_files(Path(folder), per_speaker)


@lru_cache(maxsize=4)
def _index(path: Path) -> dict[str, dict]:
    with open(path, newline="") as f:
        return {row["path"]: row for row in csv.DictReader(f, delimiter="\t")}


def speaker_of(path: Path) -> tuple[str, str]:
    """(speaker, group) of a file. Under a data folder with an ``index.tsv`` (the team's layout):
    the indexed speaker and "native adults" (LibriSpeech), "non-native adults" or "non-native
    children" (speechocean762), else the corpus; otherwise (parent folder name, "all")."""
    path = Path(path).resolve()
    for root in path.parents[:4]:
        if (root / "index.tsv").exists():
            row = _index(root / "index.tsv").get(path.relative_to(root).as_posix())
            if row:
                if row["corpus"] == "librispeech":
                    return row["speaker"], "native adults"
                if row["corpus"] == "speechocean762":
                    return row["speaker"], "non-native children" if "child" in row["note"] else "non-native adults"
                return row["speaker"], row["corpus"]
    return path.parent.name, "all"


@dataclass(frozen=True)
class System:
    """One row of a table. ``kind``: "ldcodec" (encode at ``kbps`` with ``representation``, decode
    with the ``decoder`` spec), "floor" or "peer" (``run(wav) → (decoded, bytes or None)``)."""

    name: str
    kind: str
    kbps: float | None = None
    representation: str | None = None
    decoder: str | None = None
    run: Callable[[np.ndarray], tuple[np.ndarray, int | None]] | None = None


def codec_systems(kbps: list[float], decoders: list[str | None], representations: list[str | None] = (None,),
                  bundle=None, skipped: list[str] | None = None) -> list[System]:
    """ldcodec rows for every (rate, representation, decoder spec) that fits together with ``bundle``;
    the others (a latent stream at 3 kbps, mel2mel on a latent stream, a decoder whose model the bundle lacks
    for that stream) are left out, each with a note in ``skipped`` when given."""
    from .bundle import resolve
    from .decoders import available, unusable

    known, out, b = available(), {}, resolve(bundle)
    for k in kbps:
        for rep in representations:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", api.BundleWarning)  # a bundle without latent: the mel rows
                    mode = api.encode_mode(k, rep, b)
            except ValueError as exc:
                if skipped is not None:
                    skipped.append(f"{k:g} kbps {rep}: skipped ({exc})")
                continue
            for d in decoders:
                name = split_spec(d)[0] or mode.default_decoder
                cls = known.get(name)
                why = None if cls is None else unusable(cls, b, mode)
                if why is None:
                    spec = d or mode.default_decoder
                    out[(k, mode.representation, spec)] = System(
                        f"ldcodec {k:g} kbps {mode.representation} {spec}", "ldcodec", k, mode.representation, spec)
                elif skipped is not None:
                    skipped.append(f"{d} skipped at {k:g} kbps: {why}")
    return list(out.values())


def floor_systems(bundle=None) -> list[System]:
    """The input itself (the no-reference MOS a perfect codec would score), copy synthesis through each
    distinct vocoder the decoders render with, and Griffin-Lim."""
    from . import mel2mel
    from .bundle import resolve
    from .decoders import vocoder_for
    from .floors import copy_synthesis, griffin_lim

    b = resolve(bundle)
    vocoders = {"direct": vocoder_for(b)}
    if mel2mel.load(b) is not None and vocoder_for(b, "mel2mel_vocoder") is not vocoders["direct"]:
        vocoders["mel2mel"] = vocoder_for(b, "mel2mel_vocoder")
    out = [System("input (uncoded)", "floor", run=lambda wav: (wav, None))]
    out += [System(f"copy synthesis ({name} vocoder)", "floor",
                   run=lambda wav, v=v: (copy_synthesis(wav, v, b.mel_config), None)) for name, v in vocoders.items()]
    return out + [System("Griffin-Lim (100 iterations)", "floor",
                         run=lambda wav: (griffin_lim(wav, b.mel_config), None))]


def peer_systems() -> tuple[list[System], list[str]]:
    """(Codec2 and Opus rows for the tools on PATH, notes naming the missing ones)."""
    have = peer_tools.available()
    out = []
    if have["codec2"]:
        out += [System(f"Codec2 {m}", "peer", float(m.rstrip("C")) / 1000, run=lambda w, m=m: peer_tools.codec2(w, m))
                for m in peer_tools.CODEC2_MODES]
    if have["opus"]:
        out += [System(f"Opus {k} kbps", "peer", float(k), run=lambda w, k=k: peer_tools.opus(w, k))
                for k in peer_tools.OPUS_KBPS]
    notes = [f"{tool} CLI not found: its rows are skipped (apt-get install {pkg})"
             for (tool, ok), pkg in zip(have.items(), ("codec2", "opus-tools")) if not ok]
    return out, notes


def evaluate(files: list[Path], kbps: list[float] = (), decoders: list[str | None] = (None,), *,
             mos: bool | list[str] = False, representations: list[str | None] = (None,),
             floors: bool = False, peers: bool = False, systems: list[System] | None = None, bundle=None,
             progress: Callable[[], None] | None = None,
             on_decode: Callable[[int, str, np.ndarray], None] | None = None,
             clean_of: Callable[[Path], Path] | None = None,
             group_of: Callable[[Path], tuple[str, str]] = speaker_of) -> list[dict]:
    """One dict per system: ``system``, ``kind``, ``kbps`` (asked or nominal), ``representation`` and
    ``decoder`` (ldcodec rows: None → the ladder's, named), the means of :data:`MEANS` over files
    (neural MOS columns when ``mos``), ``groups`` (the same means per speaker group) and the
    per-file ``rows``. ``systems`` replaces the ones built from ``kbps``/``decoders`` (+ ``floors``,
    ``peers``); ``bundle`` encodes and decodes the ldcodec rows. ``progress()`` is called after each
    decode, ``on_decode(i, system name, audio)`` with each decode of ``files[i]`` (16 kHz float32), e.g.
    to keep examples or write a listening page. Noisy inputs (``codec.noisy_dev``): ``clean_of(file)`` names
    the clean recording of each file, scored as ``stoi_clean`` (STOI of the decode against it; every
    other metric is against the file itself, i.e. what a faithful codec must keep); ``group_of(file)`` →
    (speaker, group) replaces :func:`speaker_of`, e.g. to group by SNR."""
    if systems is None:
        systems = (floor_systems(bundle) if floors else []) \
            + codec_systems(list(kbps), list(decoders), list(representations), bundle) \
            + (peer_systems()[0] if peers else [])
    mos = mos_available() if mos is True else list(mos or [])
    rows: dict[str, list[dict]] = {s.name: [] for s in systems}
    for i, path in enumerate(files):
        wav = read(path)
        seconds = len(wav) / SAMPLE_RATE
        speaker, group = group_of(path)
        clean = read(clean_of(path)) if clean_of else None
        encoded: dict[tuple, tuple[bytes, float]] = {}
        for s in systems:
            t0 = time.perf_counter()
            if s.kind == "ldcodec":
                if (s.kbps, s.representation) not in encoded:
                    data = api.encode(wav, SAMPLE_RATE, kbps=s.kbps, representation=s.representation, bundle=bundle)
                    encoded[(s.kbps, s.representation)] = data, time.perf_counter() - t0
                data, t_enc = encoded[(s.kbps, s.representation)]
                name, steps = split_spec(s.decoder)
                t0 = time.perf_counter()
                out, _ = api.decode(data, decoder=name, steps=steps, bundle=bundle)
                n_bytes, t_dec = len(data), time.perf_counter() - t0
            else:  # floors and peers: the whole run is booked as decode (floors) or encode (peers), the other
                out, n_bytes = s.run(wav)  # is not measured (NaN: "—" in the tables, null in the JSON)
                elapsed = time.perf_counter() - t0
                t_enc, t_dec = (elapsed, math.nan) if s.kind == "peer" else (math.nan, elapsed)
            if on_decode:
                on_decode(i, s.name, out)
            rows[s.name].append({
                "file": str(path), "speaker": speaker, "group": group, "seconds": seconds, "bytes": n_bytes,
                "real_kbps": n_bytes * 8 / seconds / 1000 if n_bytes is not None else float("nan"),
                **all_metrics(wav, out, mos), "rtf_enc": t_enc / seconds, "rtf_dec": t_dec / seconds,
                **({"stoi_clean": stoi(clean, align(clean, out.astype(np.float32)))} if clean is not None else {})})
            if progress:
                progress()
    return [{"system": s.name, "kind": s.kind, "kbps": s.kbps, "representation": s.representation,
             "decoder": s.decoder, **_means(rows[s.name]),
             "groups": {g: _means([r for r in rows[s.name] if r["group"] == g])
                        for g in dict.fromkeys(r["group"] for r in rows[s.name])},
             "rows": rows[s.name]} for s in systems]


def regroup(results: list[dict], key: Callable[[dict], str]) -> list[dict]:
    """:func:`evaluate`'s results with ``groups`` recomputed over ``key(per-file row)`` (e.g. the noise kind
    of each file), for :func:`group_table`; each row's ``group`` is replaced by its key."""
    out = []
    for r in results:
        rows = [{**row, "group": key(row)} for row in r["rows"]]
        names = dict.fromkeys(row["group"] for row in rows)
        out.append({**r, "rows": rows, "groups": {g: _means([x for x in rows if x["group"] == g]) for g in names}})
    return out


def _means(rows: list[dict]) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN PESQ (silent/short input) → NaN mean
        return {m: float(np.nanmean([row[m] for row in rows])) for m in MEANS if rows and m in rows[0]}


def _cell(value, fmt: str) -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, fmt)


def table_cells(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(header, one row of formatted cells per result) of the means table (a column per neural MOS
    measured); a per-file row merged into its result (``{**result, **row}``) formats the same way."""
    mos = [m for m in ("dnsmos", "distillmos") if all(m in r for r in results)]
    clean = bool(results) and all("stoi_clean" in r for r in results)  # a noisy set: STOI against the clean clip too
    head = ["system", "kbps asked", "real kbps", "WB-PESQ", "STOI"] + ["STOI clean"] * clean \
        + ["mel dist", "pause dB", "harmonics dB"] \
        + [{"dnsmos": "DNSMOS", "distillmos": "DistillMOS"}[m] for m in mos] + ["RTF enc", "RTF dec"]
    return head, [[r["system"], _cell(r["kbps"], "g"), _cell(r["real_kbps"], ".2f"), _cell(r["pesq"], ".2f"),
                   _cell(r["stoi"], ".3f")] + [_cell(r.get("stoi_clean"), ".3f")] * clean
                  + [_cell(r["mel"], ".3f"), _cell(r["pause_db"], "+.1f"),
                   _cell(r["harmonic_db"], "+.1f")]
                  + [_cell(r[m], ".2f") for m in mos] + [_cell(r["rtf_enc"], ".3f"), _cell(r["rtf_dec"], ".3f")]
                  for r in results]


def group_table_cells(results: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) per speaker group: WB-PESQ / STOI (/ STOI against the clean clip, on a noisy set)
    (/ the first neural MOS measured) per cell."""
    groups = list(dict.fromkeys(g for r in results for g in r["groups"]))
    mos = next((m for m in ("distillmos", "dnsmos") if all(m in r for r in results)), None)
    clean = bool(results) and all("stoi_clean" in r for r in results)
    what = "WB-PESQ / STOI" + " / STOI clean" * clean \
        + {"distillmos": " / DistillMOS", "dnsmos": " / DNSMOS", None: ""}[mos]
    speakers = {g: len({row["speaker"] for row in results[0]["rows"] if row["group"] == g}) for g in groups}
    head = [f"system ({what})"] + [f"{g} ({n} speaker{'s' * (n != 1)})" for g, n in speakers.items()]
    return head, [[r["system"]] + [
        " / ".join([_cell(m.get("pesq"), ".2f"), _cell(m.get("stoi"), ".3f")]
                   + [_cell(m.get("stoi_clean"), ".3f")] * clean + ([_cell(m.get(mos), ".2f")] if mos else []))
        for m in (r["groups"].get(g, {}) for g in groups)] for r in results]


def markdown(head: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(cells) + " |" for cells in rows])


def table(results: list[dict]) -> str:
    """Markdown table of the per-system means (a column per neural MOS measured)."""
    return markdown(*table_cells(results))


def group_table(results: list[dict]) -> str:
    """Markdown table per speaker group: WB-PESQ / STOI (/ the first neural MOS measured) per cell."""
    return markdown(*group_table_cells(results))


def jsonable(obj):
    """NaN → None, recursively, so the output is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a RuntimeError naming the extra to install."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError(f"--plot needs matplotlib: {INSTALL_HINT}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(file: Path, results: list[dict], decoded_examples: dict, out_png, max_seconds: float = 10.0) -> None:
    """Log-mel of ``file`` and of each ldcodec decode in ``decoded_examples`` ({system name: audio})
    side by side (first ``max_seconds``), above the real-kbps → WB-PESQ / STOI curves of the ldcodec
    ``results`` and of each peer codec (:func:`_curves`)."""
    from .features import log_mel

    plt = pyplot()
    ref = read(file)
    n = int(max_seconds * SAMPLE_RATE)
    peers = [r for r in results if r["kind"] == "peer"]
    results = [r for r in results if r["kind"] == "ldcodec"]
    panels = [("original", ref)] + [
        (f"{r['kbps']:g} kbps" + (f" {r['decoder']}" if len({x['decoder'] for x in results}) > 1 else "")
         + f" ({r['rows'][0]['real_kbps']:.2f} real)", decoded_examples[r["system"]])
        for r in results if r["system"] in decoded_examples]
    mels = [log_mel(w[:n]) for _, w in panels]
    fig = plt.figure(figsize=(max(8.0, 2.8 * len(panels)), 6.5), layout="constrained")
    grid = fig.add_gridspec(2, len(panels), height_ratios=[1, 1.1])
    vmin, vmax = np.percentile(mels[0], 1), mels[0].max()
    extent = [0, min(len(ref), n) / SAMPLE_RATE, 0, mels[0].shape[0]]
    for j, ((title, _), mel) in enumerate(zip(panels, mels)):
        ax = fig.add_subplot(grid[0, j])
        ax.imshow(mel, origin="lower", aspect="auto", extent=extent, vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("mel bin" if j == 0 else "")
        if j:
            ax.tick_params(labelleft=False)
    _curves(fig.add_subplot(grid[1, :]), results, peers)
    fig.suptitle(f"{Path(file).name}" + (f" (first {max_seconds:g} s)" if len(ref) > n else ""))
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


PEER_MARKERS = {"Codec2": "^", "Opus": "v"}  # peer family (first word of the system name) → marker; others "D"
RATE_TICKS = (0.1, 0.2, 0.3, 0.5, 1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 500)  # kbps
FINE_TICKS = (0.15, 0.4, 0.6, 0.8, 1.5, 4, 6, 8, 15, 40, 60, 80, 150)  # kbps, between them, for narrow ranges


def _rate_axis(rates: list[float]) -> tuple[tuple[float, float], list[float]]:
    """A log axis for kbps ``rates``: (limits with a margin, the RATE_TICKS inside them, or with FINE_TICKS
    when fewer than three fall inside; the limits widened to the nearest ticks outside when still fewer)."""
    lo, hi = min(rates) / 1.15, max(rates) * 1.15
    for candidates in (RATE_TICKS, sorted(RATE_TICKS + FINE_TICKS)):
        ticks = [t for t in candidates if lo <= t <= hi]
        if len(ticks) >= 3:
            return (lo, hi), ticks
    ticks = [t for t in candidates if t < lo][-1:] + ticks + [t for t in candidates if t > hi][:1]
    return (min(lo, ticks[0]), max(hi, ticks[-1])), ticks


def _curves(ax1, results: list[dict], peers: list[dict]) -> None:
    """The rate–quality panel: real kbps (log) → WB-PESQ (left axis, blue, filled markers) and STOI (right
    axis, orange, hollow markers): a line per ldcodec decoder (circles / squares) and per peer family
    (Codec2 ▲, Opus ▼, dotted), every one named in the legend above the axes. The points are not
    labelled (the tables hold each one's numbers)."""
    ax2 = ax1.twinx()
    several = len({r["decoder"] for r in results}) > 1
    lines = [(f"ldcodec{f' ({dec})' if several else ''}", [r for r in results if r["decoder"] == dec], ("o", "s"), "-")
             for dec in dict.fromkeys(r["decoder"] for r in results)]
    for family in dict.fromkeys(r["system"].split()[0] for r in peers):
        rows = [r for r in peers if r["system"].split()[0] == family]
        marker = PEER_MARKERS.get(family, "D")
        lines.append((family, rows, (marker, marker), ":"))
    for name, rows, (m_pesq, m_stoi), style in lines:
        rows = sorted(rows, key=lambda r: r["real_kbps"])
        x = [r["real_kbps"] for r in rows]
        ax1.plot(x, [r["pesq"] for r in rows], marker=m_pesq, linestyle=style, color="tab:blue",
                 label=f"{name} WB-PESQ")
        ax2.plot(x, [r["stoi"] for r in rows], marker=m_stoi, linestyle=style, color="tab:orange",
                 markerfacecolor="white", label=f"{name} STOI")
    rates = [r["real_kbps"] for r in results + peers if math.isfinite(r["real_kbps"])]
    ax1.set_xscale("log")
    ax1.minorticks_off()
    if rates:
        limits, ticks = _rate_axis(rates)
        ax1.set_xlim(*limits)
        ax1.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax1.set_xlabel("real kbps (log scale)")
    ax1.set_ylabel("WB-PESQ (filled)", color="tab:blue")
    ax2.set_ylabel("STOI (hollow)", color="tab:orange")
    ax1.set_ylim(1.0, 4.6)
    ax2.set_ylim(0.0, 1.0)
    ax1.grid(alpha=0.3)
    handles = [h for pair in zip(ax1.get_lines(), ax2.get_lines()) for h in pair]  # each system's two together
    ax1.legend(handles, [h.get_label() for h in handles], loc="lower left", bbox_to_anchor=(0.0, 1.0),
               ncol=len(lines), frameon=False, fontsize=8, title=f"bitrate vs quality, mean over "
               f"{len(results[0]['rows'])} file(s)", title_fontsize=9, alignment="left")  # above: hides no point
