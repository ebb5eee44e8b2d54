"""File-level work, shared by the CLI and the Dask cluster: which files to make from which, encoding
or decoding one file atomically, and ``resume``'s test of an output that already exists.

    tasks, settings = encode_plan(["recordings/"], "archive/", kbps=1.2, resume=True)
    for src, dst in tasks:
        print(encode_file(src, dst, *settings))

With ``resume``, an existing output counts as done only when it is complete (an ``.ldc`` reads back
with every CRC intact; a WAV holds every sample its ``.ldc`` announces) and, for ``.ldc`` files, was
made with the settings asked now (mode, so rate rung and representation; bundle; rate, see
:func:`mismatch`). An output made with other settings is refused, never silently mixed in.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import bitstream

from . import api
from .audio import load
from .bundle import ENV_VAR, resolve
from .rate import G_MAX, G_MIN
from .modes import Mode, mode_by_id

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}
LDC_SUFFIX = ".ldc"
# decode's output: the format the suffix names, 16-bit PCM where the format has it; any other suffix gets WAV,
# except these audio suffixes, which name formats libsndfile does not write (refused, never WAV under their name)
OUTPUT_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".opus": ("OGG", "OPUS"), ".mp3": "MP3",
                  ".aiff": "AIFF", ".aif": "AIFF", ".caf": "CAF", ".w64": "W64", ".rf64": "RF64", ".au": "AU"}
UNWRITABLE_SUFFIXES = {".m4a", ".aac", ".mp4", ".wma", ".mka", ".webm", ".amr"}
RATE_TOLERANCE = 0.85  # the rate control lands at or under the request and within 15 % of it (README, Modes)
HEAD_BYTES = 256  # enough for any header and the first packet's step index


def walk(folder: Path, suffixes: set[str]) -> list[Path]:
    """Files below ``folder`` (recursive, sorted) whose suffix is in ``suffixes``."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _check_folder_output(output: str, inputs: list, out_suffix: str) -> None:
    """Several inputs or a folder input go to a folder: refuse an ``output`` that names a file."""
    out = Path(output)
    if out.is_dir():
        return
    why = "is an existing file" if out.exists() else \
        f"ends in {out.suffix}" if out.suffix.lower() in (out_suffix, *OUTPUT_FORMATS, LDC_SUFFIX) else None
    if why:
        what = f"{len(inputs)} inputs" if len(inputs) > 1 else f"the folder {inputs[0]}"
        raise ValueError(f"-o {output} {why}, a file, but {what} need a folder for their outputs: "
                         f"name a folder (e.g. -o {out.with_suffix('')}/) or give one input")


def pairs(inputs: list, output, suffixes: set[str], out_suffix: str, folder: bool = False) -> list[tuple[Path, Path]]:
    """(source, destination) pairs; folders are walked recursively and mirrored under ``output``.
    A single file input goes to ``output`` itself unless it is a folder (exists, ends with a slash,
    or ``folder``). Several inputs, or a folder input, need ``output`` to be a folder: one that looks
    like a file (an existing file, or a name ending in ``out_suffix`` or an audio/.ldc suffix) is a ``ValueError``."""
    output = None if output is None else str(output)
    if output and (len(inputs) > 1 or any(Path(raw).is_dir() for raw in inputs)):
        _check_folder_output(output, inputs, out_suffix)
    found = []
    for raw in inputs:
        src = Path(raw)
        if src.is_dir():
            root = Path(output) if output else src
            for f in walk(src, suffixes):
                found.append((f, (root / f.relative_to(src)).with_suffix(out_suffix)))
        elif src.exists():
            if output and (len(inputs) > 1 or folder):
                dst = Path(output) / src.with_suffix(out_suffix).name
            elif output:
                dst = Path(output)
                if dst.is_dir() or output.endswith(("/", os.sep)):  # "-o newdir/" names a folder
                    dst = dst / src.with_suffix(out_suffix).name
            else:
                dst = src.with_suffix(out_suffix)
            found.append((src, dst))
        else:
            raise FileNotFoundError(f"no such file or folder: {src}")
    if not found:
        raise FileNotFoundError(f"no {'/'.join(sorted(suffixes))} files in {' '.join(map(str, inputs))}")
    seen: dict[Path, Path] = {}
    for src, dst in found:
        if dst.resolve() in seen:
            raise ValueError(f"{src} and {seen[dst.resolve()]} would both be written to {dst}")
        seen[dst.resolve()] = src
    return found


def _writable(spec) -> tuple[str, str] | None:
    """``OUTPUT_FORMATS`` entry (a format, 16-bit PCM if it has it, else its default subtype; or (format,
    subtype)) → the (format, subtype) libsndfile writes, or None."""
    import soundfile as sf

    if isinstance(spec, tuple):
        fmt, subtype = spec
    else:
        fmt, subtype = spec, "PCM_16" if sf.check_format(spec, "PCM_16") else sf.default_subtype(spec)
    return (fmt, subtype) if fmt in sf.available_formats() and subtype and sf.check_format(fmt, subtype) else None


def output_format(dst: Path) -> tuple[str, str]:
    """(libsndfile format, subtype) :func:`decode_file` writes ``dst`` in: the one its suffix names (16-bit
    PCM where the format has it: WAV, FLAC, AIFF, ...; Vorbis for .ogg, Opus for .opus, MP3), WAV for no or
    any other suffix. A ``ValueError`` naming the suffixes that work when libsndfile cannot write it."""
    suffix = Path(dst).suffix.lower()
    spec = OUTPUT_FORMATS.get(suffix, None if suffix in UNWRITABLE_SUFFIXES else "WAV")
    found = _writable(spec) if spec else None
    if found is None:
        works = ", ".join(s for s, f in OUTPUT_FORMATS.items() if _writable(f))
        raise ValueError(f"cannot write {dst}: this installation (libsndfile) does not write {suffix} audio; decode "
                         f"writes {works} (chosen by the output's suffix; any other suffix, or none, gets WAV)")
    return found


def atomic_write(dst: Path, write) -> None:
    """``write(tmp_path)`` then rename onto ``dst``: an interrupted run never leaves a half file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part")
    write(tmp)
    os.replace(tmp, dst)


def _describe(mode: Mode) -> str:
    return f"mode {mode.id} ({mode.representation}, {mode.min_kbps:g}–{mode.max_kbps:g} kbps)"


def mismatch(head: bytes, size: int, kbps: float, mode: Mode, bundle_id: bytes) -> str | None:
    """How the ``.ldc`` file starting with ``head`` (``size`` bytes long) differs from what
    :func:`codec.encode` writes at ``kbps`` in ``mode`` with the bundle of ``bundle_id``, or None.

    The header names the mode and bundle; the requested rate itself is not stored, so the file's
    rate must be one the rate control could have picked for ``kbps``: at or under it (unless its
    step is the coarsest, for inputs too short for any), and within the rate control's 15 % of it
    (unless its step is the finest). An unreadable head is None: :func:`complete` judges it.
    """
    try:
        header, at = bitstream.read_header(head)
    except bitstream.BitstreamError:
        return None
    if header.mode_id != mode.id:
        try:
            made = _describe(mode_by_id(header.mode_id))
        except KeyError:
            made = f"mode {header.mode_id}"
        return f"made in {made}, not {_describe(mode)} as {kbps:g} kbps asks"
    if header.bundle_id != bundle_id:
        return f"made with bundle {header.bundle_id.hex()}, not {bundle_id.hex()}"
    seconds = header.num_samples / header.sample_rate
    if not seconds or header.num_packets == 0:
        return None
    step_index = _step_index(head, at)
    rate = size * 8 / seconds / 1000
    if rate > kbps * (1 + 1e-9) and step_index != G_MAX:
        return f"made at {rate:.3f} kbps, over the {kbps:g} kbps asked"
    if rate < kbps * RATE_TOLERANCE and step_index != G_MIN:
        return f"made at {rate:.3f} kbps, for a lower rate than the {kbps:g} kbps asked"
    return None


def _step_index(head: bytes, at: int) -> int | None:
    """The step index of the record at byte ``at`` (SPEC §2: LEB128 length, seq, then the payload, whose
    first byte it is), or None if ``head`` ends first."""
    length, p = 0, at
    for shift in (0, 7, 14):
        if p >= len(head):
            return None
        length |= (head[p] & 0x7F) << shift
        p += 1
        if head[p - 1] < 0x80:
            break
    return head[p + 1] if length and p + 1 < len(head) else None


def _ldc_mismatch(dst: Path, kbps: float, mode: Mode, bundle_id: bytes) -> str | None:
    with open(dst, "rb") as f:
        head = f.read(HEAD_BYTES)
    return mismatch(head, dst.stat().st_size, kbps, mode, bundle_id)


def check_resume(tasks: list[tuple[Path, Path]], kbps: float, mode: Mode, bundle=None) -> None:
    """Before any work: a ``ValueError`` naming the existing outputs that were made with other settings."""
    bundle_id = resolve(bundle).writing(mode).stream_id(mode.representation)
    bad = [(dst, why) for _, dst in tasks if dst.is_file() and (why := _ldc_mismatch(dst, kbps, mode, bundle_id))]
    if bad:
        dst, why = bad[0]
        raise ValueError(f"{len(bad)} existing output(s) were made with other settings than this run's, e.g. {dst}: "
                         f"{why}. Resume with the settings they were made with, or encode without resuming "
                         f"(no --resume) to replace them")


def complete(dst: Path, src: Path | None = None) -> bool:
    """``resume``: is ``dst`` already whole? An ``.ldc`` must read back with every CRC intact; a
    decoded WAV must hold the sample count and rate the header of its source ``src`` announces."""
    if not dst.is_file():
        return False
    try:
        if dst.suffix == LDC_SUFFIX:
            bitstream.read_file(dst.read_bytes(), strict=True)
            return True
        import soundfile as sf

        header = bitstream.read_header(Path(src).read_bytes()[:HEAD_BYTES])[0]
        wav = sf.info(str(dst))
        return (wav.frames, wav.samplerate) == (header.num_samples, header.sample_rate)
    except (bitstream.BitstreamError, RuntimeError, OSError):  # soundfile raises RuntimeError subclasses
        return False


def _noted(call):
    """``call()`` → (its result, the codec warnings it raised as " (warning: ...)" notes)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, "".join(f" (warning: {w.message})" for w in caught if issubclass(w.category, api.WARNINGS))


def encode_plan(inputs: list, output, kbps: float = 3.0, representation: str | None = None, bundle=None,
                resume: bool = False, folder: bool = False) -> tuple[list[tuple[Path, Path]], tuple]:
    """The (source, destination) pairs of an encode run and the settings :func:`encode_file` takes
    after them, all checked once before any file: rate and representation (with the bundle's mel
    fallback: :class:`codec.api.BundleWarning`), the bundle (``$LDCODEC_BUNDLE`` if None; an
    absolute path, so cluster workers find it) and, with ``resume``, the outputs already there."""
    explicit = bundle or os.environ.get(ENV_VAR)
    b = resolve(explicit)
    mode = api.encode_mode(kbps, representation, b)
    tasks = pairs(inputs, output, AUDIO_SUFFIXES, LDC_SUFFIX, folder)
    if resume:
        check_resume(tasks, float(kbps), mode, b)
    return tasks, (float(kbps), mode.representation, str(b.path) if explicit else None, resume)


def decode_plan(inputs: list, output, decoder: str | None = None, steps: int | None = None,
                allow_damaged: bool = False, bundle=None, resume: bool = False,
                folder: bool = False) -> tuple[list[tuple[Path, Path]], tuple]:
    """The pairs of a decode run and the settings :func:`decode_file` takes after them; the decoder
    and steps are checked once here (what does not depend on a file's representation)."""
    from . import decoders

    decoders.check_spec(decoder, steps)
    explicit = str(resolve(bundle).path) if bundle else None
    tasks = pairs(inputs, output, {LDC_SUFFIX}, ".wav", folder)
    for _, dst in tasks:
        output_format(dst)  # a format that cannot be written: refused before any file
    return tasks, (decoder, steps, allow_damaged, explicit, resume)


def encode_file(src: Path, dst: Path, kbps: float = 3.0, representation: str | None = None, bundle=None,
                resume: bool = False, threads: int = 0) -> str:
    """Encode audio file ``src`` into ``.ldc`` file ``dst`` → a result line. ``resume``: leave a
    complete ``dst`` made with these settings, refuse (``ValueError``) one made with others.
    ``threads``: torch threads (0: leave as is)."""
    import torch

    src, dst = Path(src), Path(dst)
    if resume and complete(dst):
        b = resolve(bundle)
        mode = api.encode_mode(kbps, representation, b)
        why = _ldc_mismatch(dst, kbps, mode, b.writing(mode).stream_id(mode.representation))
        if why:
            raise ValueError(f"{dst} exists but was {why}; delete it or run without resume to replace it")
        return f"{src} -> {dst}: already done"
    if threads:
        torch.set_num_threads(threads)
    wav, sr = load(src)
    data, notes = _noted(lambda: api.encode(wav, sr, kbps=kbps, representation=representation, bundle=bundle))
    atomic_write(dst, lambda tmp: tmp.write_bytes(data))
    seconds = len(wav) / sr
    return f"{src} -> {dst}: {len(data)} bytes, {len(data) * 8 / seconds / 1000:.3f} kbps{notes}"


def decode_file(src: Path, dst: Path, decoder: str | None = None, steps: int | None = None,
                allow_damaged: bool = False, bundle=None, resume: bool = False, threads: int = 0) -> str:
    """Decode ``.ldc`` file ``src`` into a 16 kHz 16-bit WAV (or the format ``dst``'s suffix names:
    :func:`output_format`) → a result line. ``allow_damaged``: conceal damaged packets (else a damaged file
    raises a ``BitstreamError`` that says ``--allow-damaged``). ``resume``: leave a ``dst`` that holds every
    sample already."""
    import soundfile as sf
    import torch

    src, dst = Path(src), Path(dst)
    if resume and complete(dst, src):
        return f"{src} -> {dst}: already done"
    fmt, subtype = output_format(dst)
    if threads:
        torch.set_num_threads(threads)
    (wav, sr), notes = _noted(lambda: api.decode_bytes(src.read_bytes(), decoder, steps, bundle,
                                                       strict=not allow_damaged, hint=api.CLI_DAMAGE_HINT))
    atomic_write(dst, lambda tmp: sf.write(str(tmp), wav, sr, subtype=subtype, format=fmt))
    return f"{src} -> {dst}: {len(wav) / sr:.2f} s{notes}"
