"""Input handling: any PCM (numpy/torch, int/float, any rate, any channels) → mono float32 at 16 kHz."""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
from scipy.signal import firwin, lfilter, resample_poly

from bitstream.modes import SAMPLE_RATE

MIN_RATE, MAX_RATE = 1000, 768000


class AudioInputError(ValueError):
    """The PCM handed to the codec is unusable (empty, non-finite, wrong dtype or rate)."""


# How each dtype is read (README, "Python API"): float16/32/64 (and torch bfloat16) as samples in
# [-1, 1]; int8/int16/int32 as signed PCM scaled by its full range; uint8 as unsigned 8-bit PCM (the WAV
# format) centred on 128. Every other dtype is refused, naming the cast to make: int64 in particular is
# numpy's and torch's default integer, not a PCM format, and dividing it by 2^63 would silently give silence.
SIGNED_PCM = ("int8", "int16", "int32")


def _to_numpy(wav) -> np.ndarray:
    if hasattr(wav, "detach") and hasattr(wav, "cpu"):  # torch.Tensor without importing torch here
        wav = wav.detach().cpu()
        if wav.is_floating_point() and wav.element_size() < 4 and str(wav.dtype) != "torch.float16":
            wav = wav.float()  # bfloat16 and 8-bit floats have no numpy dtype
        try:
            wav = wav.numpy()
        except (TypeError, RuntimeError) as exc:
            raise AudioInputError(
                f"unsupported audio dtype {wav.dtype} (use float, int16, int32, int8 or uint8)") from exc
    if not isinstance(wav, np.ndarray):
        try:
            wav = np.asarray(wav)
        except Exception as exc:  # noqa: BLE001
            raise AudioInputError(f"audio must be a numpy array or torch tensor, got {type(wav).__name__}") from exc
    return wav


def to_float(wav) -> np.ndarray:
    """PCM → float32 in [-1, 1]: float as is; int8/16/32 scaled by 2^(bits-1); uint8 (8-bit WAV) centred on 128.
    Any other dtype raises :class:`AudioInputError` naming it."""
    wav = _to_numpy(wav)
    kind, name = wav.dtype.kind, wav.dtype.name
    if kind == "f":
        wav = wav.astype(np.float32, copy=False)
        if not np.isfinite(wav).all():
            raise AudioInputError("audio contains NaN or infinite samples")
        return wav
    if name == "uint8":
        return ((wav.astype(np.float32) - 128) / 128).astype(np.float32)
    if name in SIGNED_PCM:
        return (wav.astype(np.float64) / -np.iinfo(wav.dtype).min).astype(np.float32)
    if kind in "iu":
        why = " (numpy's and torch's default integer type)" if name == "int64" else ""
        raise AudioInputError(f"unsupported audio dtype {name}: not a PCM sample format{why}; cast to the format the "
                              f"samples are in, e.g. wav.astype(np.int16), or to float in [-1, 1]")
    raise AudioInputError(f"unsupported audio dtype {wav.dtype} (use float, int16, int32, int8 or uint8 samples; "
                          f"codec.encode also takes a path to an audio file)")


def to_mono(wav: np.ndarray, channels_first: bool | None = None) -> np.ndarray:
    """(samples,), (samples, channels) or (channels, samples) → (samples,) by averaging channels.

    A 2-D array is read as (samples, channels) like soundfile, unless its first axis is much
    shorter (≤ 16 rows and more columns), which is the torch/torchaudio (channels, samples) layout.
    """
    if wav.ndim == 1:
        return wav
    if wav.ndim != 2:
        raise AudioInputError(f"audio must be 1-D (samples,) or 2-D (samples, channels), got shape {wav.shape}")
    if channels_first is None:
        channels_first = wav.shape[0] <= 16 and wav.shape[1] > wav.shape[0]
    return (wav if not channels_first else wav.T).mean(axis=1, dtype=np.float32)


def resample(wav: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (scipy resample_poly) between integer rates."""
    if rate_in == rate_out:
        return wav
    ratio = Fraction(rate_out, rate_in)
    return resample_poly(wav, ratio.numerator, ratio.denominator).astype(np.float32)


def check_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        if isinstance(sample_rate, float) and sample_rate.is_integer():
            sample_rate = int(sample_rate)
        else:
            raise AudioInputError(f"sample_rate must be an integer number of Hz, got {sample_rate!r}")
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise AudioInputError(f"sample_rate {sample_rate} Hz is outside {MIN_RATE}..{MAX_RATE} Hz")
    return int(sample_rate)


def prepare(wav, sample_rate) -> tuple[np.ndarray, int]:
    """Validate and convert input audio → (mono float32 16 kHz samples, input channel count)."""
    sample_rate = check_rate(sample_rate)
    x = to_float(wav)
    channels = 1 if x.ndim == 1 else min(x.shape)
    x = to_mono(x)
    if x.size == 0:
        raise AudioInputError("audio is empty (0 samples)")
    return resample(x, sample_rate), channels


def load(path) -> tuple[np.ndarray, int]:
    """Read an audio file with soundfile → (float32 (samples,) or (samples, channels), rate)."""
    import soundfile as sf

    try:
        if os.path.getsize(path) == 0:
            raise AudioInputError(f"cannot read audio file {path}: empty file (0 bytes)")
        wav, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except AudioInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - soundfile (and os) raise several types
        raise AudioInputError(f"cannot read audio file {path}: {exc}") from None
    return wav, sr


class StreamResampler:
    """Chunk-by-chunk polyphase resampling (integer ratio) with filter state carried across chunks.

    The same Kaiser-window low-pass as ``resample_poly``; output is delayed by the filter's half
    length (10 input-rate samples at most per unit of ratio, e.g. 0.6 ms for 48 → 16 kHz).
    """

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE):
        ratio = Fraction(rate_out, rate_in)
        self.up, self.down = ratio.numerator, ratio.denominator
        if self.up == self.down == 1:
            return
        half = 10 * max(self.up, self.down)
        self.taps = firwin(2 * half + 1, 1.0 / max(self.up, self.down), window=("kaiser", 5.0)) * self.up
        self.state = np.zeros(len(self.taps) - 1)
        self.phase = 0  # index, in the next chunk's upsampled samples, of the next output sample

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.up == self.down == 1:
            return x
        u = np.zeros(len(x) * self.up)
        u[:: self.up] = x
        y, self.state = lfilter(self.taps, 1.0, u, zi=self.state)
        out = y[self.phase:: self.down]
        self.phase = (self.phase - len(u)) % self.down
        return out.astype(np.float32)
