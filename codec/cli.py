"""``ldcodec`` command line: encode | decode | info | modes | eval, on files or whole folders.

Exit codes: 0 all done, 1 some file failed (one line each on stderr), 2 bad usage.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from .cluster import error_text
from .modes import REPRESENTATIONS

def _run(tasks, fn, args, *extra) -> int:
    """Run ``fn(src, dst, *extra, threads)`` over tasks with a progress bar, in this process,
    ``--jobs`` local processes or on a Dask cluster (``--scheduler``); returns the exit code."""
    failures = 0
    bar = tqdm(total=len(tasks), unit="file", disable=None if len(tasks) > 1 else True, file=sys.stderr)

    def report(src, result=None, exc=None):
        nonlocal failures
        if exc is not None:
            failures += 1
            if isinstance(exc, Exception):
                exc = error_text(exc)
            tqdm.write(f"ldcodec: error: {src}: {exc}", file=sys.stderr)
        else:
            tqdm.write(result, file=sys.stdout)
        bar.update(1)

    if args.scheduler:
        from . import cluster

        for src, result, error in cluster.map_files(args.scheduler, fn, tasks, extra):
            report(src, result, error)
    elif args.jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [(src, pool.submit(fn, src, dst, *extra, 1)) for src, dst in tasks]
            for src, fut in futures:
                try:
                    report(src, fut.result())
                except Exception as exc:  # noqa: BLE001 - one line per failed file, batch goes on
                    report(src, exc=exc)
    else:
        from .chunked import terminal_progress

        for src, dst in tasks:
            try:
                with terminal_progress(len(tasks) == 1):  # a single long file's blocks, on a terminal
                    result = fn(src, dst, *extra, 0)
                report(src, result)
            except Exception as exc:  # noqa: BLE001
                report(src, exc=exc)
    bar.close()
    return 1 if failures else 0


def cmd_encode(args) -> int:
    from . import files

    with warnings.catch_warnings(record=True) as caught:  # the bundle's mel fallback: said once, not per file
        warnings.simplefilter("always")
        tasks, settings = files.encode_plan(args.inputs, args.output, args.kbps, args.representation, args.bundle,
                                            args.resume)
    for w in caught:
        print(f"ldcodec: note: {w.message}", file=sys.stderr)
    return _run(tasks, files.encode_file, args, *settings)


def cmd_decode(args) -> int:
    from . import files

    tasks, settings = files.decode_plan(args.inputs, args.output, args.decoder, args.steps, args.allow_damaged,
                                        args.bundle, args.resume)
    return _run(tasks, files.decode_file, args, *settings)


def _value(value) -> str:
    """One fact of ``info`` as text: floats to 6 significant digits, lists comma-separated, the mode's dict as
    ``key value`` pairs."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) if value else "none"
    return str(value)


def _print_facts(src, facts: dict) -> None:
    """``info``'s facts as aligned ``key: value`` lines; each error on a line of its own."""
    print(f"{src}:")
    width = max(map(len, facts)) + 1
    for key, value in facts.items():
        if key == "errors" and value:
            print(f"  {'errors:':<{width}} {len(value)}")
            for line in value:
                print(f"    {line}")
        else:
            print(f"  {key + ':':<{width}} {_value(value)}")


def cmd_info(args) -> int:
    """Exit 1 for a file ``decode`` would refuse: one it cannot read (header damage, a header that contradicts
    its mode) or whose facts list errors (damaged packets, extra bytes, a decoder not installed)."""
    from bitstream import BitstreamError

    from . import api
    from .files import LDC_SUFFIX, pairs

    code = 0
    for src, _ in pairs(args.inputs, None, {LDC_SUFFIX}, LDC_SUFFIX):
        try:
            facts = api.info(src.read_bytes())
        except (BitstreamError, OSError) as exc:
            print(f"ldcodec: error: {src}: {exc}", file=sys.stderr)
            code = 1
            continue
        if args.json:
            print(json.dumps({"file": str(src), **facts}))
        else:
            _print_facts(src, facts)
        damaged, errors = facts["damaged_packets"], facts["errors"]
        if damaged:
            listed = ", ".join(map(str, damaged[:20])) + (f" … ({len(damaged) - 20} more)" if len(damaged) > 20 else "")
            print(f"ldcodec: error: {src}: {len(damaged)} damaged packet(s): {listed}", file=sys.stderr)
        elif errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            print(f"ldcodec: error: {src}: {errors[0]}{more}", file=sys.stderr)
        code = 1 if damaged or errors else code
    return code


def cmd_modes(args) -> int:
    from . import decoders
    from .bundle import resolve
    from .modes import LADDER, RETIRED_MODES, STORAGE_MODES, VOIP_LADDER, VOIP_MODES

    available, b = decoders.available(), resolve(args.bundle)
    # the rates the ladder gives each of its rungs: from the rung below's top
    ladder = {m.id: (LADDER[i - 1].max_kbps if i else m.min_kbps, m.max_kbps) for i, m in enumerate(LADDER)}

    print("| mode | use | kbps | representation | coefficients | frame rate (Hz) | packet (ms) | default decoder "
          "| decoders |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in STORAGE_MODES + VOIP_MODES:
        streaming = m in VOIP_MODES
        use = ("stream" if m in VOIP_LADDER else f"stream (packet_ms={m.packet_ms:.0f})") if streaming else \
            "file (default at {:g}–{:g})".format(*ladder[m.id]) if m.id in ladder else \
            "file (decode only)" if m in RETIRED_MODES else f"file (representation={m.representation})"
        names = ", ".join(sorted(n for n, c in available.items() if not streaming and not decoders.unusable(c, b, m)))
        if streaming:
            names = "StreamDecoder (causal vocoder)"
        print(f"| {m.id} | {use} | {m.min_kbps:g}–{m.max_kbps:g} | {m.representation} | {m.n_coefs} | {m.group_rate:g} "
              f"| {m.packet_ms:.0f} | {'stream' if streaming else m.default_decoder} | {names} |")
    return 0


def _eval_files(inputs: list[str]) -> list[Path]:
    """The audio files ``ldcodec eval`` scores: those named and those under the folders named, each once,
    or without any, the first 3 files of each dev speaker."""
    from . import evaluate as ev
    from .files import AUDIO_SUFFIXES, walk

    files = [] if inputs else ev.dev_files(per_speaker=3)
    for raw in inputs:
        src = Path(raw)
        if not src.exists():
            raise FileNotFoundError(f"no such file or folder: {src}")
        files += walk(src, AUDIO_SUFFIXES) if src.is_dir() else [src]
    files = list(dict.fromkeys(files))
    if not files:
        raise FileNotFoundError(f"no {'/'.join(sorted(AUDIO_SUFFIXES))} files in {' '.join(inputs)}")
    return files


def cmd_eval(args) -> int:
    import importlib.util

    from . import decoders
    from . import evaluate as ev
    from . import report
    from .bundle import resolve
    from .metrics import mos_available
    from .modes import check_kbps

    rates = list(dict.fromkeys(check_kbps(k) for k in args.kbps))
    for spec in args.decoder or []:  # unknown decoder or bad steps → usage error; incompatible pairs are skipped
        decoders.check_spec(*ev.split_spec(spec))
    bundle = str(resolve(args.bundle).path) if args.bundle else None
    decs = list(dict.fromkeys(args.decoder or [None]))
    skipped: list[str] = []
    codec_rows = ev.codec_systems(rates, decs, [args.representation], bundle, skipped)
    if not codec_rows:
        raise ValueError("nothing to evaluate: " + "; ".join(skipped))
    missing = [m for m in ("pesq", "pystoi") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"eval needs {', '.join(missing)}: {ev.INSTALL_HINT}")
    if args.mos and not mos_available():
        print("ldcodec: error: --mos needs speechmos and/or distillmos: pip install 'ldcodec[eval]' "
              "and pip install --no-deps distillmos xls-r-sqa==0.1.0", file=sys.stderr)
        return 2
    if args.plot or args.html:
        try:
            ev.pyplot()
        except RuntimeError as exc:
            print(f"ldcodec: error: {exc}", file=sys.stderr)
            return 2
    if args.html:
        report.check(args.html, args.html_seconds)  # a folder that is not ours or no clip length: usage error
    files = _eval_files(args.inputs)
    peers, notes = ([], []) if args.no_peers else ev.peer_systems()
    notes = skipped + notes
    systems = ([] if args.no_floors else ev.floor_systems(bundle)) + codec_rows + peers
    examples: dict = {}  # decodes of files[0], for --plot
    page = None

    def on_decode(i: int, system: str, audio) -> None:
        if i == 0 and args.plot:
            examples[system] = audio
        if page:
            page.add(i, system, audio)

    bar = tqdm(total=len(systems) * len(files), unit="run", disable=None, file=sys.stderr)
    try:
        page = report.ListeningPage(args.html, files, args.html_seconds) if args.html else None
        results = ev.evaluate(files, systems=systems, mos=args.mos, bundle=bundle, progress=lambda: bar.update(1),
                              on_decode=on_decode)
        if args.plot:
            ev.plot(files[0], results, examples, args.plot)
        if page:
            index = page.write(results, "ldcodec " + shlex.join(args.argv), notes)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(ev.jsonable(
                {"files": [str(f) for f in files], "kbps": rates, "results": results}), indent=1))
    except Exception as exc:  # noqa: BLE001 - one line, no traceback
        expected = isinstance(exc, (ValueError, OSError, RuntimeError))
        print(f"ldcodec: error: {exc if expected else f'{type(exc).__name__}: {exc}'}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    print(ev.table(results))
    if len({g for r in results for g in r["groups"]}) > 1:
        print("\nPer speaker group:\n\n" + ev.group_table(results))
    for note in notes:
        print(f"\nNote: {note}")
    if page:
        size = sum(f.stat().st_size for f in index.parent.rglob("*") if f.is_file())
        print(f"\nListening page: {index} ({size / 1e6:.1f} MB)")
    return 0


def _add_bundle_option(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--bundle", metavar="DIR", help=f"model bundle folder ({default})")


def _add_batch_options(p: argparse.ArgumentParser, resume: str) -> None:
    p.add_argument("--jobs", type=int, default=1, help="files processed in parallel on this machine")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster (tcp://host:8786); workers must see the same paths")
    p.add_argument("--resume", action="store_true", help=resume)


def build_parser() -> argparse.ArgumentParser:
    from bitstream import FORMAT_VERSION, PACKET_VERSION

    from . import __version__

    ap = argparse.ArgumentParser(prog="ldcodec", description="Neural speech codec, 0.3–6 kbps.")
    ap.add_argument("--version", action="version",
                    version=f"ldcodec {__version__} (bitstream format {FORMAT_VERSION}, raw packets {PACKET_VERSION})")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("encode", help="audio file(s) or folder(s) → .ldc")
    p.add_argument("inputs", nargs="+")
    p.add_argument("-o", "--output", help="output file, or folder for several inputs / a folder input")
    p.add_argument("--kbps", type=float, default=3.0, help="target average bitrate, 0.3–6 (default 3)")
    p.add_argument("--representation", choices=REPRESENTATIONS,
                   help="mel or latent (default: the ladder's choice for the rate; see `ldcodec modes`)")
    _add_bundle_option(p, "default: $LDCODEC_BUNDLE, else the shipped one")
    _add_batch_options(p, "skip outputs that already exist complete (every CRC verified) and made with these "
                          "settings (mode, bundle, a rate --kbps could give); stop before any work if one was made "
                          "with others")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help=".ldc file(s) or folder(s) → 16 kHz WAV")
    p.add_argument("inputs", nargs="+")
    p.add_argument("-o", "--output",
                   help="output file, its format from the suffix (.wav, the default; .flac, .ogg, .mp3, .aiff, ...), "
                        "or folder for several inputs / a folder input (WAVs, mirrored)")
    p.add_argument("--decoder", help="override the stream's default decoder (see `ldcodec modes`)")
    p.add_argument("--steps", type=int, help="diffusion steps (diffusion decoders only)")
    p.add_argument("--allow-damaged", action="store_true",
                   help="conceal damaged packets (hold the last sound, then fade) instead of failing")
    _add_bundle_option(p, "default: the one the stream names, looked up in $LDCODEC_BUNDLE and the shipped ones")
    _add_batch_options(p, "skip outputs that already exist complete (every sample the stream announces)")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("info", help="print .ldc header facts and damage (no model needed); exit 1 for a file "
                                    "decode would refuse")
    p.add_argument("inputs", nargs="+")
    p.add_argument("--json", action="store_true", help="one JSON object per file (full-precision numbers)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("modes", help="the bitrate ladder and the decoders each mode allows")
    _add_bundle_option(p, "default: $LDCODEC_BUNDLE, else the shipped one; its models decide the decoders")
    p.set_defaults(func=cmd_modes)

    p = sub.add_parser("eval", help="rate–quality table (PESQ, STOI, mel, RTF) of audio at several rates, "
                                    "beside the floors (the input, copy synthesis, Griffin-Lim) and Codec2/Opus")
    p.add_argument("inputs", nargs="*", help="audio files or folders (walked recursively; default: the dev split "
                                             "../shared/data/real/dev or $LDCODEC_DEV_DATA, 3 files per speaker)")
    p.add_argument("--kbps", type=float, nargs="+", default=[0.6, 1.5, 3.0, 6.0],
                   help="rates to evaluate, each 0.3–6 (default 0.6 1.5 3 6)")
    p.add_argument("--decoder", action="append",
                   help="decoder to evaluate, NAME or NAME:STEPS (repeatable; default: each mode's)")
    p.add_argument("--representation", choices=REPRESENTATIONS, help="encode with this representation")
    _add_bundle_option(p, "default: $LDCODEC_BUNDLE, else the shipped one")
    p.add_argument("--plot", metavar="PNG", help="write log-mel spectrograms + bitrate–quality curve here")
    p.add_argument("--json", metavar="FILE", help="write means, per-group means and per-file rows as JSON")
    p.add_argument("--html", metavar="DIR", help="write a listening page here: index.html with every clip's "
                                                 "decodes (FLAC), log-mel pictures, tables and plot")
    p.add_argument("--html-seconds", type=float, default=10.0, metavar="S",
                   help="seconds of each clip the listening page plays and draws (default 10)")
    p.add_argument("--no-floors", action="store_true",
                   help="leave out the floor rows: the uncoded input, copy synthesis, Griffin-Lim")
    p.add_argument("--no-peers", action="store_true", help="leave out Codec2 and Opus")
    p.add_argument("--mos", action="store_true", help="add DNSMOS and DistillMOS (installed with ldcodec[eval]; slow)")
    p.set_defaults(func=cmd_eval)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command, for the pages it makes
    if getattr(args, "jobs", 1) < 1:
        print("ldcodec: error: --jobs must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"ldcodec: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. the Dask scheduler is unreachable
        print(f"ldcodec: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
