"""Long recordings in bounded memory: the encoder's analysis and the vocoder, block by block.

Encoding (:func:`analyse`, :func:`encode_latent`): the log-mel and the pitch track of each block of
frames come from that block's samples plus the half window either side, and the latent encoder sees
each block with its reach either side, so they equal the whole-signal values bit for bit and the
bytes are the same as a one-pass encode (tests/test_chunked.py).

Decoding (:func:`vocode`): the vocoder renders blocks of frames with ``context`` frames of features
either side and keeps each block's own samples. Every stage is local in time: the ConvNeXt backbone
sees ±3 frames per convolution (7 convolutions: ±21 frames), each fast Griffin-Lim iteration
(iSTFT then STFT) mixes ±4 frames (``phase_iterations`` + 1 passes: ±100 frames for 24 iterations),
and the excitation's STFT ±2. The only whole-signal quantities, the loudest frame's level (the
``quiet_db`` gate), the harmonic phase accumulated from the start (the excitation's pulse train, the
sinusoidal phase's fundamental) and the seeded noise sequence, are computed beforehand or read from one
generator in order, and handed to the vocoder's own ``spectrum`` and ``excitation_phase`` for each block,
whatever its phase (``codec.vocoder.PHASE_INITS``). So with enough context a block equals the
one-pass output up to floating-point rounding: the harmonic phase, re-anchored at each block,
differs in the last bits, which Griffin-Lim carries to ≈ 70 dB SNR against the one-pass waveform
(tests/test_chunked.py bounds it). The latent decoder (:func:`decode_latent`) goes the same way.
Streams up to ``min_seconds`` decode in one pass, unchanged (the golden vectors).

Long runs report progress through :func:`progress` (the CLI shows it on a terminal).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch

from bitstream.modes import FRAME_RATE

from . import pitch
from .excitation import fundamental, voicing_and_f0
from .features import LogMel, MelConfig


@dataclass(frozen=True)
class ChunkConfig:
    """How long inputs are cut. ``block``: frames (62.5 Hz) per block, analysis and synthesis;
    ``context``: frames of features either side of a decoded block (≥ the vocoder's reach, see the
    module docstring); ``min_seconds``: streams up to this long decode in one pass."""

    block: int = 2048  # 32.8 s
    context: int = 160  # 2.56 s
    min_seconds: float = 60.0


DEFAULT = ChunkConfig()
_progress: ContextVar[Callable[[str, int, int], None] | None] = ContextVar("ldcodec_progress", default=None)


@contextmanager
def progress(callback: Callable[[str, int, int], None]) -> Iterator[None]:
    """Within the ``with``, :func:`analyse` and :func:`vocode` call ``callback(stage, done, total)``
    after each block of a long input: ``stage`` "encode" or "decode", ``done`` of ``total`` frames."""
    token = _progress.set(callback)
    try:
        yield
    finally:
        _progress.reset(token)


def _report(stage: str, done: int, total: int) -> None:
    callback = _progress.get()
    if callback is not None:
        callback(stage, done, total)


def _reflected(x: np.ndarray, lo: int, hi: int, pad: int) -> np.ndarray:
    """Samples [lo, hi) of ``x`` (samples,) reflect-padded by ``pad`` either side (``torch.stft``'s centring)."""
    idx = np.abs(np.arange(lo - pad, hi - pad))
    over = idx >= len(x)
    idx[over] = 2 * (len(x) - 1) - idx[over]
    return x[idx]


def analyse(x: np.ndarray, mel_cfg: MelConfig, block: int | None = None) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(samples,) float32 16 kHz → the encoder's analysis over ``frames = samples // hop + 1``: (log-mel
    (1, n_mels, frames), f0 Hz (frames,), voiced bool (frames,)), equal to ``LogMel`` and
    ``pitch.estimate`` over the whole signal, ``block`` frames at a time (None: ``DEFAULT.block``;
    memory ≈ 20 kB a frame of the block, whatever the length)."""
    block = block or DEFAULT.block
    frames = len(x) // mel_cfg.hop + 1
    mel_of = LogMel(mel_cfg)
    if frames <= block or len(x) < mel_cfg.n_fft:  # one pass; the STFT needs one window of audio
        padded = np.pad(x, (0, max(0, mel_cfg.n_fft - len(x))))
        with torch.inference_mode():
            mel = mel_of(torch.from_numpy(padded)[None])[..., :frames]
        return (mel, *pitch.estimate(x))
    with torch.inference_mode():
        mel = torch.empty(1, mel_cfg.n_mels, frames)
    f0, voiced = np.empty(frames, np.float32), np.empty(frames, bool)
    for a in range(0, frames, block):
        b = min(a + block, frames)
        # every STFT spans ``block`` frames (the last overlaps the one before): a product with a few
        # columns may round differently from a wide one
        start = b - block
        piece = _reflected(x, start * mel_cfg.hop, (b - 1) * mel_cfg.hop + mel_cfg.n_fft, mel_cfg.n_fft // 2)
        with torch.inference_mode():
            mel[..., a:b] = mel_of(torch.from_numpy(piece)[None], center=False)[..., a - start:]
        f0[a:b], voiced[a:b] = pitch.estimate_frames(x, a, b - a)
        _report("encode", b, frames)
    return mel, f0, voiced


MIN_LATENT_WINDOW = 512  # mel frames the latent encoder sees at least per call (see encode_latent)


def encode_latent(encoder, mel: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """``encoder(mel)`` for a log-mel (1, n_mels, T): the latent (1, channels, ceil(T / stride)) of
    ``codec.latent.LatentEncoder``, ``block`` mel frames at a time (None: ``DEFAULT.block``) with the
    encoder's reach (its convolutions' half kernels, in whole latent frames) either side: the same values.

    Every call sees the same number of frames, at least ``MIN_LATENT_WINDOW`` (the last window overlaps
    the one before): CPU convolutions over a few hundred frames or fewer can round differently (by
    ~1e-5 here, under 300 frames) from those over a long signal, and the bytes must not change."""
    cfg = encoder.cfg
    stride, groups = cfg.stride, -(-mel.shape[-1] // cfg.stride)
    # latent frames of context either side: the frame-rate convolutions', then the latent-rate blocks'
    reach = -(-(cfg.kernel // 2) * (1 + cfg.enc_layers) // stride) + cfg.kernel // 2 * cfg.enc_low_layers
    per = max((block or DEFAULT.block) // stride, -(-MIN_LATENT_WINDOW // stride) - 2 * reach)
    window = per + 2 * reach  # latent frames a call
    with torch.inference_mode():
        if groups <= window:
            return encoder(mel)
        out = torch.empty(1, cfg.channels, groups)
        for a in range(0, groups, per):
            b = min(a + per, groups)
            lo = max(0, min(a - reach, groups - window))
            out[..., a:b] = encoder(mel[..., lo * stride:(lo + window) * stride])[..., a - lo:b - lo]
        return out


def decode_latent(decoder, z: torch.Tensor, pitch_rows: torch.Tensor, step_size: torch.Tensor,
                  config: ChunkConfig | None = None) -> torch.Tensor:
    """``decoder(z, pitch_rows, step_size)`` of ``codec.latent.LatentDecoder``: latent (1, channels, L), pitch rows
    (1, n_aux, T), step size per latent frame (1, L) → log-mel (1, n_mels, T). Beyond ``config.min_seconds``
    (None: ``DEFAULT``) it runs ``config.block`` mel frames at a time with the decoder's reach either side,
    in windows of one length like :func:`encode_latent`: the one-pass values up to rounding (≈ 4e-6 nats;
    the one-pass convolutions themselves round differently at some lengths)."""
    cfg, config = decoder.cfg, config or DEFAULT
    stride, groups, frames = cfg.stride, z.shape[-1], pitch_rows.shape[-1]
    # latent frames: embed ±1, the latent-rate blocks, then the frame-rate convolutions
    reach = 1 + cfg.kernel // 2 * cfg.dec_low_layers + -(-(cfg.kernel // 2) * (1 + cfg.dec_layers) // stride)
    per = max(config.block // stride, -(-MIN_LATENT_WINDOW // stride) - 2 * reach)
    window = per + 2 * reach
    with torch.inference_mode():
        if groups <= window or frames <= config.min_seconds * FRAME_RATE or step_size.ndim != 2:
            return decoder(z, pitch_rows, step_size)
        out = torch.empty(1, cfg.n_mels, frames)
        for a in range(0, groups, per):
            b = min(a + per, groups)
            lo = max(0, min(a - reach, groups - window))
            mel = decoder(z[..., lo:lo + window], pitch_rows[..., lo * stride:(lo + window) * stride],
                          step_size[:, lo:lo + window])
            out[..., a * stride:b * stride] = mel[..., (a - lo) * stride:(b - lo) * stride]
        return out


class _NoiseTape:
    """The decoding noise of a one-pass render, ``unit`` draws of ``dtype`` a frame from ``generator``, at any
    frame, frames asked for in order: :meth:`at` gives a generator whose draws continue the one-pass sequence
    from that frame on, so only the generator's state is held. Frames start on multiples of 16 draws, where
    torch's normal sampler draws the same sequence in pieces as in one go."""

    def __init__(self, generator: torch.Generator, dtype: torch.dtype, unit: int):
        self.generator, self.dtype, self.unit, self.frame = generator, dtype, unit, 0

    def at(self, frame: int) -> torch.Generator:
        """A generator at the draws of frame ``frame`` on (no earlier than the last frame asked for)."""
        if frame < self.frame:
            raise ValueError(f"the noise tape has moved past frame {frame} (at {self.frame})")
        left = (frame - self.frame) * self.unit
        while left:
            n = min(left, 1 << 20)
            torch.randn(n, generator=self.generator, dtype=self.dtype)
            left -= n
        self.frame = frame
        out = torch.Generator()
        out.set_state(self.generator.get_state())
        return out


def _cycles(pitch_rows: torch.Tensor, hop: int, sample_rate: int, block: int) -> np.ndarray:
    """Pitch rows (1, 2, T) → (T,) float64: F0 cycles of the excitation's pulse train before each frame's
    centre (``codec.excitation.harmonic`` integrates F0 from the first sample), ``block`` frames at a time."""
    frames = pitch_rows.shape[-1]
    before = np.zeros(frames)
    for a in range(0, frames - 1, block):
        b = min(a + block, frames - 1)
        f0 = voicing_and_f0(pitch_rows[..., a:b + 1], hop)[1][0].double() / sample_rate  # ((b − a)·hop,) cycles/sample
        before[a + 1:b + 1] = before[a] + np.cumsum(f0.reshape(b - a, hop).sum(dim=1).numpy())
    return before


class _Renderer:
    """The vocoder's one-pass ``forward`` for any span of frames of ``features`` (1, n_mels + n_aux, T), by the
    vocoder's own methods given what a span cannot see: the quiet gate's :meth:`~codec.vocoder.Vocoder.loudest`
    level, the excitation or sinusoidal phase's start and the decoding noise drawn before the span."""

    def __init__(self, vocoder, features: torch.Tensor, block: int):
        cfg = vocoder.cfg
        self.vocoder, self.features, self.cfg = vocoder, features, cfg
        self.loudest = vocoder.loudest(features).expand(-1, -1, features.shape[-1])  # utterance's, or so far (causal)
        rows = features[:, cfg.n_mels:cfg.n_mels + 2]
        self.excited = cfg.phase_init == "learned" or (cfg.phase_init == "excitation" and bool(cfg.phase_iterations))
        self.noise = None
        if self.excited:  # the pulse train's cycles before each frame; noise: a sample a draw
            self.cycles = _cycles(rows, cfg.hop, MelConfig.sample_rate, block)
            self.noise = _NoiseTape(vocoder.noise(None), torch.float32, cfg.hop)
        elif cfg.phase_init == "sinusoidal":  # the fundamental [Φ, F0] at each frame; noise: n_fft draws a frame
            self.fundamental = torch.stack(fundamental(rows, cfg.hop, MelConfig.sample_rate), dim=1)  # (1, 2, T)
            self.noise = _NoiseTape(vocoder.noise(None), torch.float64, cfg.n_fft)

    def start(self, lo: int) -> torch.Tensor | None:
        """The phase's ``start`` for a span from frame ``lo``, as the whole signal has it there."""
        if self.excited:
            return torch.tensor([2 * math.pi * (self.cycles[lo] % 1.0)], dtype=torch.float64)
        if self.cfg.phase_init == "sinusoidal" and lo:
            return self.fundamental[..., lo - 1]
        return None

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        """Frames [lo, hi) → their waveform ((hi − lo − 1)·hop,) float32, sample 0 at frame ``lo``'s centre."""
        v, cfg, f, start = self.vocoder, self.cfg, self.features[..., lo:hi], self.start(lo)
        generator = self.noise.at(lo) if self.noise else None
        spec = v.spectrum(f, generator, start, self.loudest[..., lo:hi])
        if not cfg.phase_iterations:
            return torch.istft(spec, cfg.n_fft, cfg.hop, window=v.head.window, center=True)[0].numpy()
        return v.invert(f, spec, cfg.phase_iterations, generator, start)[0].numpy()


def _chunkable(vocoder, features: torch.Tensor, config: ChunkConfig) -> bool:
    """Whether :func:`vocode` renders in blocks: a long single stream through the iSTFT head, in eval mode
    (frames of noise start on multiples of 16 draws: ``hop`` and ``n_fft`` are)."""
    frames = features.shape[-1]
    cfg = vocoder.cfg
    return (features.shape[0] == 1 and not vocoder.training and cfg.hop % 16 == 0 and cfg.n_fft % 16 == 0
            and frames > config.min_seconds * FRAME_RATE and frames > config.block + 2 * config.context)


def vocode(vocoder, features: torch.Tensor, config: ChunkConfig | None = None) -> np.ndarray:
    """``vocoder(features)[0]`` as numpy for features (1, n_mels + n_aux, T): the waveform ((T − 1)·hop,)
    float32 at 16 kHz. Beyond ``config.min_seconds`` it is rendered ``config.block`` frames at a time
    with ``config.context`` frames either side (equal to the one-pass output up to rounding; None:
    ``DEFAULT``)."""
    config = config or DEFAULT
    with torch.inference_mode():
        if not _chunkable(vocoder, features, config):
            return vocoder(features)[0].numpy()
        frames, hop = features.shape[-1], vocoder.cfg.hop
        render = _Renderer(vocoder, features, config.block)
        out = np.empty((frames - 1) * hop, np.float32)
        for a in range(0, frames - 1, config.block):
            b = min(a + config.block, frames - 1)
            lo, hi = max(0, a - config.context), min(frames, b + config.context + 1)
            out[a * hop:b * hop] = render(lo, hi)[(a - lo) * hop:(b - lo) * hop]
            _report("decode", b, frames - 1)
        return out


@contextmanager
def terminal_progress(enabled: bool = True) -> Iterator[None]:
    """:func:`progress` as bars on stderr, one per stage in seconds of audio, shown only when stderr is a
    terminal and the input is long enough to go in blocks (the CLI, for a single long file)."""
    if not enabled:
        yield
        return
    import sys

    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = tqdm(total=round(total / FRAME_RATE), unit="s", desc=f"{stage} (audio)", disable=None,
                               file=sys.stderr, leave=False)
        bars[stage].update(round(done / FRAME_RATE) - bars[stage].n)

    try:
        with progress(update):
            yield
    finally:
        for bar in bars.values():
            bar.close()
