"""Rate–quality evaluation: encode/decode files at several rates, measure, tabulate and plot.

    from codec.evaluate import evaluate, table
    results = evaluate([Path("a.wav")], kbps=[0.6, 3], decoders=[None])
    print(table(results))

Real kbps is counted from the ``.ldc`` bytes (header included) over the input duration.
Metrics (WB-PESQ, STOI, log-mel distance, SI-SDR, energy added in pauses, optionally DNSMOS) are
computed after aligning each decode to its 16 kHz reference; RTF = seconds of processing per
second of audio. Decoders are given as specs ``name`` or ``name:steps`` (``mel2mel:8``).
"""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from . import api
from .audio import SAMPLE_RATE, AudioInputError, load, prepare
from .metrics import all_metrics
from .modes import mode_for

MEANS = ("real_kbps", "pesq", "stoi", "mel", "si_sdr", "pause_db", "rtf_enc", "rtf_dec")
INSTALL_HINT = "pip install 'ldcodec[eval]'"


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


def evaluate(files: list[Path], kbps: list[float], decoders: list[str | None], *, mos: bool = False,
             representations: list[str | None] = (None,), progress: Callable[[], None] | None = None,
             examples: dict | None = None) -> list[dict]:
    """One dict per (rate, representation, decoder spec) that fits together: asked ``kbps``,
    ``representation`` (None → the ladder's), ``decoder`` (a spec ``name[:steps]``; None → the mode's
    default, named), means of ``MEANS`` (+ ``dnsmos`` if ``mos``) over files, and the per-file
    ``rows``. Combinations that cannot work (a latent stream at 3 kbps, mel2mel on a latent stream)
    are left out. ``progress()`` is called after each decode; ``examples``, if given, receives
    {(kbps, decoder): decode of files[0]}."""
    from .decoders import available

    known = available()
    results = {}
    for k in kbps:
        for rep in representations:
            try:
                mode = mode_for(k, rep)
            except ValueError:
                continue
            for d in decoders:
                name = split_spec(d)[0] or mode.default_decoder
                cls = known.get(name)
                if cls is None or mode.representation in cls.representations:
                    results[(k, rep, d)] = {"kbps": k, "representation": mode.representation,
                                            "decoder": d or mode.default_decoder, "rows": []}
    for i, path in enumerate(files):
        wav = read(path)
        seconds = len(wav) / SAMPLE_RATE
        for k in kbps:
            for rep in representations:
                todo = [d for d in decoders if (k, rep, d) in results]
                if not todo:
                    continue
                t0 = time.perf_counter()
                data = api.encode(wav, SAMPLE_RATE, kbps=k, representation=rep)
                t_enc = time.perf_counter() - t0
                for d in todo:
                    r = results[(k, rep, d)]
                    name, steps = split_spec(d)
                    t0 = time.perf_counter()
                    out, _ = api.decode(data, decoder=name, steps=steps)
                    t_dec = time.perf_counter() - t0
                    if i == 0 and examples is not None:
                        examples[(k, r["decoder"])] = out
                    r["rows"].append({
                        "file": str(path), "seconds": seconds, "bytes": len(data),
                        "real_kbps": len(data) * 8 / seconds / 1000, **all_metrics(wav, out, mos),
                        "rtf_enc": t_enc / seconds, "rtf_dec": t_dec / seconds})
                    if progress:
                        progress()
    for r in results.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN PESQ (silent/short input) → NaN mean
            r.update({m: float(np.nanmean([row[m] for row in r["rows"]])) for m in MEANS + ("dnsmos",)
                      if m in r["rows"][0]})
        r["rows"] = r.pop("rows")  # keep the per-file rows after the means
    return list(results.values())


def table(results: list[dict]) -> str:
    """Markdown table of the per-(rate, decoder) means (DNSMOS column when measured)."""
    mos = all("dnsmos" in r for r in results)
    lines = ["| kbps asked | real kbps | representation | decoder | WB-PESQ | STOI | mel dist | pause dB |"
             + (" DNSMOS |" if mos else "") + " RTF enc | RTF dec |",
             "|---|---|---|---|---|---|---|---|" + ("---|" if mos else "") + "---|---|"]
    for r in results:
        lines.append(f"| {r['kbps']:g} | {r['real_kbps']:.2f} | {r['representation']} | {r['decoder']} "
                     f"| {r['pesq']:.2f} | {r['stoi']:.3f} "
                     f"| {r['mel']:.3f} | {r['pause_db']:+.1f} |" + (f" {r['dnsmos']:.2f} |" if mos else "")
                     + f" {r['rtf_enc']:.3f} | {r['rtf_dec']:.3f} |")
    return "\n".join(lines)


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
    """Log-mel of ``file`` and of each decode in ``decoded_examples`` side by side (first
    ``max_seconds``), above the real-kbps → PESQ / STOI curve over ``results``."""
    import torch

    from .features import LogMel

    plt = pyplot()
    ref = read(file)
    n = int(max_seconds * SAMPLE_RATE)
    panels = [("original", ref)] + [
        (f"{r['kbps']:g} kbps" + (f" {r['decoder']}" if len({x['decoder'] for x in results}) > 1 else "")
         + f" ({r['rows'][0]['real_kbps']:.2f} real)", decoded_examples[(r["kbps"], r["decoder"])])
        for r in results if (r["kbps"], r["decoder"]) in decoded_examples]
    lm = LogMel()
    with torch.inference_mode():
        mels = [lm(torch.from_numpy(np.ascontiguousarray(w[:n], dtype=np.float32))[None])[0].numpy()
                for _, w in panels]
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
    ax1 = fig.add_subplot(grid[1, :])
    ax2 = ax1.twinx()
    for dec in dict.fromkeys(r["decoder"] for r in results):
        rs = sorted((r for r in results if r["decoder"] == dec), key=lambda r: r["real_kbps"])
        x = [r["real_kbps"] for r in rs]
        suffix = f" ({dec})" if len({r['decoder'] for r in results}) > 1 else ""
        ax1.plot(x, [r["pesq"] for r in rs], "o-", color="tab:blue", label="WB-PESQ" + suffix)
        ax2.plot(x, [r["stoi"] for r in rs], "s--", color="tab:orange", label="STOI" + suffix)
    ax1.set_xscale("log")
    ticks = sorted({round(r["real_kbps"], 2) for r in results})
    ax1.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax1.minorticks_off()
    ax1.set_xlabel("real kbps (log scale)")
    ax1.set_ylabel("WB-PESQ", color="tab:blue")
    ax2.set_ylabel("STOI", color="tab:orange")
    ax1.set_ylim(1.0, 4.6)
    ax2.set_ylim(0.0, 1.0)
    ax1.grid(alpha=0.3)
    handles = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax1.legend(handles, [h.get_label() for h in handles], loc="lower right", bbox_to_anchor=(1.0, 1.0),
               ncol=len(handles), frameon=False, fontsize=9)  # above the axes: never hides a point
    ax1.set_title(f"bitrate vs quality, mean over {len(results[0]['rows'])} file(s)", fontsize=10, loc="left")
    fig.suptitle(f"{Path(file).name}" + (f" (first {max_seconds:g} s)" if len(ref) > n else ""))
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
