"""Vocos-style vocoder: ConvNeXt backbone + iSTFT head.

Input (batch, n_mels + n_aux, frames): log-mel stacked with ``n_aux`` conditioning rows
(voicing and log-F0, see ``codec.pitch.features``); output (batch, (frames - 1) · hop) at 16 kHz.

One class per role, chosen by :class:`VocoderConfig`: the backbone (:class:`ConvNeXtBlock` s over
:class:`FrameConv` s, centred or causal); the head (:data:`HEADS`: :class:`ISTFTHead`, or with
``mag_prior`` :class:`MagPriorHead` and its quiet gate), with ``harmonic_prior`` the
:class:`HarmonicPrior` that shapes the magnitude prior; and the phase source (:data:`PHASES`, by
``phase_init``: :class:`HeadPhase`, :class:`ExcitationPhase`, :class:`SinusoidalPhase`,
:class:`LearnedPhase`). :class:`Vocoder` wires them: offline (:meth:`Vocoder.spectrum`) and streaming
(:meth:`Vocoder.spectrum_step`) decoding share the head and phase code, the stream carrying a :class:`StreamState`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .excitation import TOP_HZ, harmonic_comb, sinusoidal_phase
from .excitation import phase as excitation_phase
from .features import MelConfig, mel_filterbank
from .inversion import griffin_lim, least_squares_inverse, mel_to_magnitude, minimum_phase


PRIOR_ITERATIONS = 4  # projected-gradient steps of the magnitude prior (codec.inversion.mel_to_magnitude)
HARMONIC_BANDS = 32  # harmonicity values per frame (harmonic_prior), interpolated linearly over the bins


@dataclass(frozen=True)
class VocoderConfig:
    """A vocoder's shape and the classes that fill its roles, as bundle and run JSONs write it (flat fields).

    The head (:data:`HEADS`) is :attr:`head`: :class:`MagPriorHead` with ``mag_prior``, whose options are
    ``quiet_db`` and ``harmonic_prior`` (:class:`HarmonicPrior`, raised by ``harmonic_boost`` at decoding),
    else :class:`ISTFTHead`. The phase source (:data:`PHASES`) is ``phase_init``. ``source_filter`` is
    read only so that old JSONs (``"source_filter": false``) load: its head was removed (#31)."""

    n_mels: int = 80
    n_aux: int = 2
    dim: int = 256
    intermediate: int = 768
    layers: int = 6
    kernel: int = 7
    n_fft: int = 1024  # samples: the head's FFT and window
    hop: int = 256  # samples per frame
    causal: bool = False  # convolutions see only past frames (streaming); else centred (offline)
    source_filter: bool = False  # old JSONs write it; must be False (load-time compatibility only)
    relative_level: bool = False  # backbone sees each frame's mel minus its level; ISTFTHead adds it back
    mag_prior: bool = False  # the head: MagPriorHead (log-magnitude relative to the mel's least-squares inverse)
    phase_iterations: int = 0  # fast Griffin-Lim iterations refining the phase (offline decoding)
    phase_init: str = "head"  # the phase source, a key of PHASES: "head", "excitation", "sinusoidal" or "learned"
    quiet_db: float | None = None  # MagPriorHead: frames this far (dB) below the loudest keep at most the prior
    harmonic_prior: bool = False  # MagPriorHead: a HarmonicPrior moves voiced power onto the F0 harmonics
    harmonic_boost: float = 0.0  # HarmonicPrior at decoding (eval mode): harmonicity α → α + boost · (1 − α)
    voiced_top_hz: float = TOP_HZ  # excitation phases: highest harmonic (Hz); above it the noise's phase

    def __post_init__(self):
        if self.source_filter:
            raise ValueError("source_filter=True: the source–filter head (SourceFilterHead) was removed from ldcodec "
                             "(issue #31); this vocoder needs an older ldcodec")
        if not 0 < self.voiced_top_hz <= TOP_HZ:
            raise ValueError(f"voiced_top_hz must be in (0, {TOP_HZ:g}] Hz, not {self.voiced_top_hz}")

    @property
    def head(self) -> str:
        """The head's key in :data:`HEADS`: "mag_prior" with ``mag_prior``, else "istft"."""
        return "mag_prior" if self.mag_prior else "istft"


@dataclass
class StreamState:
    """What a streaming vocoder (:meth:`Vocoder.spectrum_step`) carries from one call to the next: its
    causal convolutions' past inputs, the sinusoidal phase's [Φ, F0] at the last frame, the loudest
    frame so far and the generator of its noise (seed 0, as offline decoding)."""

    convs: list | None = None
    phase: torch.Tensor | None = None
    loudest: torch.Tensor | None = None  # the loudest frame level so far (B, 1, 1), for the quiet gate
    generator: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))


class FrameConv(nn.Conv1d):
    """Conv1d over frames that keeps the length: centred padding, or left-only padding when ``causal``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, causal: bool, groups: int = 1):
        super().__init__(c_in, c_out, kernel, groups=groups)
        self.pad = (kernel - 1, 0) if causal else (kernel // 2, kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.pad(x, self.pad))

    def step(self, x: torch.Tensor, cache: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Causal streaming: new frames (B, C, T) and the previous ``kernel - 1`` inputs (None at the
        start: zeros, like the offline padding) → (output (B, C_out, T), cache for the next call)."""
        if cache is None:
            cache = x.new_zeros(x.shape[0], x.shape[1], self.pad[0])
        full = torch.cat([cache, x], dim=-1)
        return super().forward(full), full[..., full.shape[-1] - self.pad[0]:]


class ConvNeXtBlock(nn.Module):
    """Depthwise conv → LayerNorm → pointwise MLP, with layer scale and a residual (Vocos)."""

    def __init__(self, dim: int, intermediate: int, kernel: int, layer_scale: float, causal: bool = False):
        super().__init__()
        self.dwconv = FrameConv(dim, dim, kernel, causal, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x: torch.Tensor, cache: torch.Tensor | None = None, stream: bool = False):  # (B, C, T)
        """``stream=True``: causal step with the depthwise conv's ``cache`` → (output, new cache)."""
        y, cache = self.dwconv.step(x, cache) if stream else (self.dwconv(x), None)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y.transpose(1, 2)))))
        out = x + (self.gamma * y).transpose(1, 2)
        return (out, cache) if stream else out


def frame_level(features: torch.Tensor, n_mels: int) -> torch.Tensor:
    """Per-frame level (B, 1, T) of features (B, n_mels + n_aux, T): log of the mean mel magnitude (nats)."""
    return torch.logsumexp(features[:, :n_mels], dim=1, keepdim=True) - math.log(n_mels)


class ISTFTHead(nn.Module):
    """Predicts log-magnitude and phase per STFT bin, then inverts with torch.istft. Its log-magnitude is
    absolute, or with ``relative_mels`` (``relative_level``: the number of mel rows) relative to each
    frame's :func:`frame_level` (:meth:`log_offset`)."""

    quiet_db: float | None = None  # no quiet gate (MagPriorHead's)

    def __init__(self, dim: int, n_fft: int, hop: int, relative_mels: int | None = None):
        super().__init__()
        self.n_fft, self.hop, self.relative_mels = n_fft, hop, relative_mels
        self.out = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @classmethod
    def from_config(cls, cfg: VocoderConfig) -> "ISTFTHead":
        return cls(cfg.dim, cfg.n_fft, cfg.hop, cfg.n_mels if cfg.relative_level else None)

    def log_offset(self, features: torch.Tensor) -> torch.Tensor | None:
        """What the log-magnitude is relative to, from features (B, n_mels + n_aux, T): each frame's level
        (B, 1, T, nats) with ``relative_mels``, else None."""
        return None if self.relative_mels is None else frame_level(features, self.relative_mels)

    def spectrum(self, x: torch.Tensor, log_offset: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C), a log-magnitude offset (B, 1 or n_fft // 2 + 1, T) or None → complex (B, n_fft // 2 + 1, T)."""
        mag, phase = self.out(x).float().transpose(1, 2).chunk(2, dim=1)  # float32 under bf16 autocast too
        return torch.polar(torch.exp(mag if log_offset is None else mag + log_offset).clamp(max=1e2), phase)

    def forward(self, x: torch.Tensor, log_offset: torch.Tensor | None = None) -> torch.Tensor:  # → (B, samples)
        return torch.istft(self.spectrum(x, log_offset), self.n_fft, self.hop, window=self.window, center=True)


class MagPriorHead(ISTFTHead):
    """An :class:`ISTFTHead` whose log-magnitude is relative to the mel's non-negative least-squares
    inverse (it starts there: its log-magnitude rows are zeroed), with an optional quiet gate
    (``quiet_db``, :meth:`quiet_gate`)."""

    def __init__(self, dim: int, n_fft: int, hop: int, n_mels: int, quiet_db: float | None = None):
        super().__init__(dim, n_fft, hop)
        self.n_mels, self.quiet_db = n_mels, quiet_db
        fb = mel_filterbank(MelConfig(n_fft=n_fft, hop=hop, n_mels=n_mels))
        self.register_buffer("filterbank", torch.from_numpy(fb), persistent=False)
        pinv, step = least_squares_inverse(self.filterbank)
        self.register_buffer("filterbank_pinv", pinv, persistent=False)
        self.register_buffer("prior_step", step, persistent=False)
        bins = n_fft // 2 + 1
        nn.init.zeros_(self.out.weight[:bins])  # start as the least-squares inverse
        nn.init.zeros_(self.out.bias[:bins])

    @classmethod
    def from_config(cls, cfg: VocoderConfig) -> "MagPriorHead":
        return cls(cfg.dim, cfg.n_fft, cfg.hop, cfg.n_mels, cfg.quiet_db)

    def log_offset(self, features: torch.Tensor) -> torch.Tensor:
        """The log of the mel's non-negative least-squares inverse (B, n_fft // 2 + 1, T), floored at the
        mel floor, from features (B, n_mels + n_aux, T)."""
        with torch.no_grad(), torch.autocast(features.device.type, enabled=False):  # float32 under bf16 autocast
            mag = mel_to_magnitude(features[:, :self.n_mels].float(), self.filterbank, PRIOR_ITERATIONS,
                                   MelConfig.floor, (self.filterbank_pinv, self.prior_step))
        return torch.log(mag)

    def quiet_gate(self, spec: torch.Tensor, offset: torch.Tensor, level: torch.Tensor,
                   loudest: torch.Tensor) -> torch.Tensor:
        """Frames ``quiet_db`` below ``loudest`` (nats, (B, 1, 1 or T)) keep at most the prior's magnitude
        ``exp(offset)``: the head's gain over the prior restores detail in speech but would add noise to
        pauses (dev speakers: +6 dB of pause energy without it, about 0 with it at 30 dB). ``spec``: complex
        (B, n_fft // 2 + 1, T); ``level``: each frame's (B, 1, T), nats."""
        quiet = level < loudest - self.quiet_db * math.log(10) / 20
        mag = spec.abs()
        return spec * torch.where(quiet, torch.clamp(torch.exp(offset) / mag.clamp(min=1e-16), max=1.0), 1.0)


class HarmonicPrior(nn.Linear):
    """``harmonic_prior``: the harmonicity layer (frame embedding → :data:`HARMONIC_BANDS` logits) and the
    log-magnitude shape it gives a :class:`MagPriorHead`'s prior (:meth:`shape`)."""

    def __init__(self, dim: int, n_mels: int, n_fft: int, boost: float = 0.0):
        super().__init__(dim, HARMONIC_BANDS)
        self.n_mels, self.n_fft, self.boost = n_mels, n_fft, boost
        nn.init.zeros_(self.weight)
        nn.init.constant_(self.bias, -2.0)  # start nearly flat (12 % of the power on the comb)

    def shape(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Log-magnitude shape (B, n_fft // 2 + 1, T) that moves a voiced frame's power onto the harmonics of
        its transmitted F0: ½·ln(α·comb + 1 − α), ``comb`` the windowed harmonics' power (mean 1,
        ``codec.excitation.harmonic_comb``) and α ∈ (0, 1) the harmonicity predicted from ``embedding``
        (B, T, dim) per frame and band (× voicing), so the band's power is kept and only its fine structure
        changes. Decoding (eval mode) raises α by ``boost`` of its distance to 1: trained by regression, the
        network predicts less harmonicity than the reference has (dev speakers: harmonics dB −0.9 to −2.4)."""
        pitch_rows = features[:, self.n_mels:self.n_mels + 2]
        comb = harmonic_comb(pitch_rows, self.n_fft, MelConfig.sample_rate)
        alpha = torch.sigmoid(self(embedding))  # (B, T, bands)
        b, t, bands = alpha.shape
        alpha = nn.functional.interpolate(alpha.reshape(b * t, 1, bands), size=comb.shape[1], mode="linear",
                                          align_corners=True).reshape(b, t, -1).transpose(1, 2)
        if not self.training:
            alpha = alpha + self.boost * (1 - alpha)
        alpha = alpha * pitch_rows[:, :1].clamp(0, 1)
        return 0.5 * torch.log((alpha * comb + 1 - alpha).clamp(min=1e-3))


HEADS = {"istft": ISTFTHead, "mag_prior": MagPriorHead}  # VocoderConfig.head → the head's class


class HeadPhase:
    """``phase_init="head"``: the spectrum keeps the head's phase, and Griffin-Lim (if any) starts from it.
    A phase source is stateless: its methods take the :class:`Vocoder` whose excitation they use."""

    streams = True  # works frame by frame (Vocoder.spectrum_step)
    causal = True  # allowed in a causal vocoder

    def apply(self, vocoder: "Vocoder", features: torch.Tensor, spec: torch.Tensor,
              generator: torch.Generator | None, start: torch.Tensor | None) -> tuple[torch.Tensor, object]:
        """The head's complex ``spec`` (B, n_fft // 2 + 1, T) for features (B, n_mels + n_aux, T) → (the
        spectrum with this source's phase, what a stream passes back as ``start``). ``generator``: the
        excitation's noise (:meth:`Vocoder.noise`); ``start``: the phase's state at the first frame."""
        return spec, start

    def griffin_lim_start(self, vocoder: "Vocoder", features: torch.Tensor, spec: torch.Tensor,
                          generator: torch.Generator | None, start: torch.Tensor | None) -> torch.Tensor:
        """Griffin-Lim's starting phase (unit complex, shaped like ``spec``): the phase of ``spec``."""
        return spec / spec.abs().clamp(min=1e-16)


class ExcitationPhase(HeadPhase):
    """``phase_init="excitation"``: the head's phase, but Griffin-Lim starts from
    :meth:`Vocoder.excitation_phase` (``start``: the pulse train's phase at the first frame, (B,) radians)."""

    streams = False

    def griffin_lim_start(self, vocoder, features, spec, generator, start):
        return vocoder.excitation_phase(features, spec.abs(), generator, start)


class SinusoidalPhase(HeadPhase):
    """``phase_init="sinusoidal"``: :meth:`Vocoder.sinusoidal_phase` replaces the head's (causal: streams;
    ``start``: the fundamental's [Φ, F0] at the frame before, as the previous call returned it)."""

    def apply(self, vocoder, features, spec, generator, start):
        phase, state = vocoder.sinusoidal_phase(features, spec.detach().abs(), generator, start)
        return spec.abs() * phase, state


class LearnedPhase(HeadPhase):
    """``phase_init="learned"``: the head's phase rotates :meth:`Vocoder.excitation_phase`'s, a learnt
    correction of the phase sinusoidal coders use (offline only: that excitation is not causal)."""

    streams = causal = False

    def apply(self, vocoder, features, spec, generator, start):
        return spec * vocoder.excitation_phase(features, spec.detach().abs(), generator, start), None


PHASES = {"head": HeadPhase(), "excitation": ExcitationPhase(), "sinusoidal": SinusoidalPhase(),
          "learned": LearnedPhase()}  # VocoderConfig.phase_init → the phase source
PHASE_INITS = tuple(PHASES)


class Vocoder(nn.Module):
    """Features (batch, n_mels + n_aux, frames) → waveform (batch, (frames - 1) * hop) at 16 kHz:
    backbone → ``head`` (:data:`HEADS`), its phase from ``phase`` (:data:`PHASES`), optionally refined
    by ``phase_iterations`` of Griffin-Lim."""

    def __init__(self, cfg: VocoderConfig = VocoderConfig()):
        super().__init__()
        if cfg.phase_init not in PHASES:
            raise ValueError(f"VocoderConfig.phase_init must be one of {PHASE_INITS}, not {cfg.phase_init!r}")
        self.phase = PHASES[cfg.phase_init]
        if cfg.causal and not self.phase.causal:
            raise ValueError(f"phase_init={cfg.phase_init!r} corrects the offline excitation phase: "
                             "not for a causal vocoder")
        if cfg.harmonic_prior and cfg.head != "mag_prior":
            raise ValueError("harmonic_prior shapes the magnitude prior: it needs mag_prior=True")
        self.cfg = cfg
        self.embed = FrameConv(cfg.n_mels + cfg.n_aux, cfg.dim, cfg.kernel, cfg.causal)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel, 1.0 / cfg.layers, cfg.causal)
            for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = HEADS[cfg.head].from_config(cfg)
        self.harmonicity = (HarmonicPrior(cfg.dim, cfg.n_mels, cfg.n_fft, cfg.harmonic_boost)
                            if cfg.harmonic_prior else None)

    def frame_level(self, features: torch.Tensor) -> torch.Tensor:
        """Per-frame level (B, 1, T): log of the mean mel magnitude (nats)."""
        return frame_level(features, self.cfg.n_mels)

    def level(self, features: torch.Tensor) -> torch.Tensor | None:
        """The per-frame level the backbone's input is relative to, when ``relative_level``."""
        return self.frame_level(features) if self.cfg.relative_level else None

    def log_offset(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor | None:
        """What the head's log-magnitude is relative to, given the backbone's ``embedding`` (B, T, dim):
        the head's :meth:`~ISTFTHead.log_offset` (a :class:`MagPriorHead`'s prior (B, n_fft // 2 + 1, T),
        plus the :class:`HarmonicPrior`'s shape with ``harmonic_prior``; an :class:`ISTFTHead`'s per-frame
        level (B, 1, T) with ``relative_level``, else None)."""
        offset = self.head.log_offset(features)
        return offset if self.harmonicity is None else offset + self.harmonicity.shape(features, embedding)

    def harmonic_shape(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """:meth:`HarmonicPrior.shape` (B, n_fft // 2 + 1, T) of features (B, n_mels + n_aux, T)."""
        return self.harmonicity.shape(features, embedding)

    def _relative(self, features: torch.Tensor) -> torch.Tensor:
        """With ``relative_level`` the network sees spectral shape only (gain-equivariant up to the mel floor)."""
        level = self.level(features)
        if level is None:
            return features
        return torch.cat([features[:, :self.cfg.n_mels] - level, features[:, self.cfg.n_mels:]], dim=1)

    def backbone(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_mels + n_aux, T) → (B, T, dim) frame embeddings for the head."""
        x = self.norm(self.embed(self._relative(features)).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x.transpose(1, 2))

    def backbone_step(self, features: torch.Tensor, cache: list | None) -> tuple[torch.Tensor, list]:
        """Causal streaming backbone: new frames (B, n_mels + n_aux, T) + per-conv caches (None at
        the start) → ((B, T, dim), caches). Equals :meth:`backbone` over the whole stream."""
        if not self.cfg.causal:
            raise ValueError("streaming needs a causal vocoder (VocoderConfig.causal)")
        cache = cache or [None] * (len(self.blocks) + 1)
        x, cache[0] = self.embed.step(self._relative(features), cache[0])
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        for i, block in enumerate(self.blocks, 1):
            x, cache[i] = block(x, cache[i], stream=True)
        return self.final_norm(x.transpose(1, 2)), cache

    def _spectrum(self, features: torch.Tensor, embedding: torch.Tensor, generator: torch.Generator | None,
                  start: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, object]:
        """The head's spectrum of ``embedding`` (B, T, dim) with the phase source's phase → (complex
        (B, n_fft // 2 + 1, T), the head's log-offset, the phase source's state for a stream)."""
        offset = self.log_offset(features, embedding)
        spec, phase_state = self.phase.apply(self, features, self.head.spectrum(embedding, offset), generator, start)
        return spec, offset, phase_state

    def spectrum_step(self, features: torch.Tensor, state: "StreamState | None") -> tuple[torch.Tensor, "StreamState"]:
        """Causal streaming: new frames (B, n_mels + n_aux, T) and the state of the frames before (None
        at the start) → (their complex spectrum (B, n_fft // 2 + 1, T), the state for the next call).
        Over a whole stream it equals :meth:`spectrum` (in eval mode), so it refuses what needs the
        future: Griffin-Lim phases, and a ``quiet_db`` gate in an offline vocoder (whose loudest frame
        is the utterance's; a causal one's is the loudest so far)."""
        if not self.cfg.causal or not self.phase.streams:
            streaming = " or ".join(repr(k) for k, p in PHASES.items() if p.streams)
            raise ValueError(f"a streaming vocoder needs causal=True and phase_init {streaming}, not "
                             f"causal={self.cfg.causal}, phase_init={self.cfg.phase_init!r}")
        state = state or StreamState()
        embedding, state.convs = self.backbone_step(features, state.convs)
        spec, offset, state.phase = self._spectrum(features, embedding, state.generator, state.phase)
        if self.head.quiet_db is not None:
            loudest = self.loudest(features, state.loudest)
            state.loudest = loudest[..., -1:]
            spec = self.head.quiet_gate(spec, offset, self.frame_level(features), loudest)
        return spec, state

    def spectrum(self, features: torch.Tensor, generator: torch.Generator | None = None,
                 start: torch.Tensor | None = None, loudest: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n_mels + n_aux, T) → the head's complex spectrum (B, n_fft // 2 + 1, T), its phase from
        the phase source (``phase_init``; ``generator``: the excitation's noise), with ``quiet_db`` through
        :meth:`MagPriorHead.quiet_gate`. ``start``, ``loudest``: for a span of a longer signal
        (``codec.chunked``), the phase's ``start`` there and the :meth:`loudest` level (nats)."""
        spec, offset, _ = self._spectrum(features, self.backbone(features), generator, start)
        if self.head.quiet_db is None:
            return spec
        loudest = self.loudest(features) if loudest is None else loudest
        return self.head.quiet_gate(spec, offset, self.frame_level(features), loudest)

    def loudest(self, features: torch.Tensor, before: torch.Tensor | None = None) -> torch.Tensor:
        """The level (nats) the quiet gate compares each frame with: the utterance's loudest frame
        (B, 1, 1), or for a causal vocoder the loudest so far (B, 1, T), counting ``before`` (B, 1, 1)."""
        level = self.frame_level(features)
        if not self.cfg.causal:
            return level.amax(dim=-1, keepdim=True)
        loudest = torch.cummax(level, dim=-1).values
        return loudest if before is None else torch.maximum(loudest, before)

    def forward(self, features: torch.Tensor, generator: torch.Generator | None = None,
                spectrum: bool = False) -> torch.Tensor:
        """``generator``: the excitation phases' noise (see :meth:`noise`).
        With ``phase_iterations`` the phase seeds fast Griffin-Lim on the head's magnitude.
        ``spectrum=True``: the head's complex spectrum (B, n_fft // 2 + 1, T) instead (training)."""
        spec = self.spectrum(features, generator)
        if spectrum:
            return spec
        if not self.cfg.phase_iterations:
            return torch.istft(spec, self.cfg.n_fft, self.cfg.hop, window=self.head.window, center=True)
        return self.invert(features, spec, self.cfg.phase_iterations, generator)

    def invert(self, features: torch.Tensor, spec: torch.Tensor, iterations: int,
               generator: torch.Generator | None = None, start: torch.Tensor | None = None) -> torch.Tensor:
        """``spec`` (B, n_fft // 2 + 1, T), complex or its magnitude → (B, samples): ``iterations`` of fast
        Griffin-Lim on its magnitude from :meth:`initial_phase` (``generator``, ``start``: see there);
        differentiable in the magnitude only."""
        with torch.no_grad():
            phase = self.initial_phase(features, spec.detach(), generator, start)
        return griffin_lim(spec.abs(), phase, iterations, self.cfg.n_fft, self.cfg.hop, self.head.window)

    def initial_phase(self, features: torch.Tensor, spec: torch.Tensor, generator: torch.Generator | None = None,
                      start: torch.Tensor | None = None) -> torch.Tensor:
        """Griffin-Lim's starting phase (unit complex, shaped like ``spec``), the phase source's: the phase
        of ``spec`` (the head's, or the one ``phase_init`` "sinusoidal" or "learned" gave it), or with
        ``phase_init="excitation"`` :meth:`excitation_phase` (``generator``, ``start``: see there)."""
        return self.phase.griffin_lim_start(self, features, spec, generator, start)

    def excitation_phase(self, features: torch.Tensor, mag: torch.Tensor, generator: torch.Generator | None = None,
                         start: torch.Tensor | None = None) -> torch.Tensor:
        """The phase of the excitation built from the pitch rows (``codec.excitation.phase``) with the
        :meth:`envelope_phase` of ``mag`` (B, n_fft // 2 + 1, T), unit complex: harmonics stay coherent
        from frame to frame as in Codec2's synthesis. ``generator``: see :meth:`noise`; ``start``: the pulse
        train's phase at the first frame (B,), radians (0 if None)."""
        source = excitation_phase(features[:, self.cfg.n_mels:self.cfg.n_mels + 2], self.cfg.n_fft, self.cfg.hop,
                                  MelConfig.sample_rate, self.head.window, mag.shape[-1], self.noise(generator), start,
                                  self.cfg.voiced_top_hz)
        return source * self.envelope_phase(mag)

    def sinusoidal_phase(self, features: torch.Tensor, mag: torch.Tensor, generator: torch.Generator | None = None,
                         start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """That excitation synthesised frame by frame (``codec.excitation.sinusoidal_phase``: causal) with
        the :meth:`envelope_phase` of ``mag`` (B, n_fft // 2 + 1, T) → (unit complex phase, like ``mag``; the
        state a stream passes back as ``start``). ``generator``: see :meth:`noise`."""
        source, state = sinusoidal_phase(features[:, self.cfg.n_mels:self.cfg.n_mels + 2], self.cfg.n_fft,
                                         self.cfg.hop, MelConfig.sample_rate, start, self.noise(generator),
                                         self.cfg.voiced_top_hz)
        return source * self.envelope_phase(mag), state

    def envelope_phase(self, mag: torch.Tensor) -> torch.Tensor:
        """The minimum phase of the envelope of ``mag`` (B, n_fft // 2 + 1, T), unit complex: the vocal tract's."""
        envelope = minimum_phase(torch.log(mag.clamp(min=MelConfig.floor)), self.cfg.n_fft)
        return torch.polar(torch.ones_like(envelope), envelope)

    def noise(self, generator: torch.Generator | None) -> torch.Generator | None:
        """The excitations' noise: ``generator``, else a fixed seed when decoding (decoding repeats) and
        the global generator when training."""
        return torch.Generator().manual_seed(0) if generator is None and not self.training else generator
