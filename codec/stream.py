"""VoIP streaming: ``StreamEncoder`` (PCM chunks → raw packets) and ``StreamDecoder`` (packets → PCM).

    enc, dec = codec.StreamEncoder(kbps=3), codec.StreamDecoder()
    for chunk in microphone:                 # any chunk size
        for packet in enc.push(chunk):       # bytes: TOC, payload, CRC-8 (SPEC §2)
            send(packet)                     # the transport numbers packets (e.g. RTP's sequence number)
    for packet in enc.flush():               # end of call: the last (padded) packet, else its audio is lost
        send(packet)
    pcm = dec.push(packet_or_None, seq=n)    # None (or a gap in sequence numbers) = lost packet
    tail = dec.flush()                       # end of call: the last half window

Over a real network put a :class:`codec.JitterBuffer` in front of the decoder (reordering, late and
duplicate packets, adaptive depth) and push its slots with ``dec.push(jb.pop(now), in_order=True)``.

Packets are ``bitstream.pack_packet`` raw packets (version 2: 2 bytes of framing, no sequence number)
of a VoIP mode (``modes.VOIP_MODES``: 2 mel
frames, 32 ms, by default from 3 kbps; 4 frames, 64 ms, below 3 kbps or with ``packet_ms=64``; 3 frames,
48 ms, with ``packet_ms=48``), each range-coded on its own, so any subset decodes. The decoder low-passes
the decoded log-mel in time as ``direct`` does, packet by packet (``codec.mel_repr.smooth_frames`` with the
previous packet's last frame), and renders with the bundle's causal vocoder and an incremental inverse STFT,
none of which looks ahead; a lost packet is concealed by holding the last frame's spectrum and pitch, then
fading it out, and the stream recovers on the next good packet.
:func:`decode_packets` is the offline reference: the stream decoder's output equals it up to
float rounding.

Algorithmic latency (``StreamEncoder.latency_ms``): a packet leaves once its last frame's analysis
window (mel: 512 samples centred; pitch: 512 samples back, 256 ahead) is filled, and an output
sample is final once every synthesis window (512 samples) over it is in: 16 ms + 16 ms + the
packet's other frames (16, 32 or 48 ms for 32, 48 or 64 ms packets) = 48, 64 or 80 ms.
The decoder's weights and the front end are the bundle add-on ``stream_vocoder`` (:func:`stream_vocoder`;
the front end is the ``mel`` entry of its ``stream_vocoder.json``, :func:`stream_mel_config`).
"""
from __future__ import annotations

import numpy as np
import torch

import bitstream
from bitstream.modes import SAMPLE_RATE, VOIP_LADDER, VOIP_MODES, Mode, check_kbps, mode_by_id, voip_mode_for
from bitstream.payload import encode_groups

from . import pitch, rate
from .audio import AudioInputError, StreamResampler, check_rate, to_float, to_mono
from .bundle import BundleError, resolve, typed
from .conceal import hold_and_fade
from .features import LogMel, MelConfig
from .jitter import SEQ_MODULO, V1_SEQ_MODULO, as_packet, check_seq
from .mel_repr import SILENCE_LOGMEL, clamp_logmel, coefs_to_mel, mel_to_coefs, smooth_frames
from .vocoder_input import stack


ADDON = "stream_vocoder"


def stream_vocoder(bundle):
    """``bundle``'s causal vocoder for streaming (the add-on ``stream_vocoder``), or None."""
    return bundle.vocoder_addon(ADDON)


def stream_config(bundle) -> dict:
    """``stream_vocoder.json`` (``{}`` without one): the streaming ``vocoder`` and its front end (``mel``)."""
    return bundle.addon_config(ADDON)


def stream_mel_config(bundle) -> MelConfig:
    """The streaming front end: ``stream_vocoder.json``'s ``mel``, else the bundle's own."""
    mel = stream_config(bundle).get("mel")
    return typed(MelConfig, mel, f"{ADDON}.json 'mel'") if mel else bundle.mel_config


class StreamEncoder:
    """Push PCM, pull raw packets. ``kbps`` 1.2–6; ``packet_ms`` 32 (48 ms latency), 48 (64 ms) or 64
    (80 ms): longer packets spend less on framing (~3 bytes each); None (default) takes 32 from 3 kbps
    and 64 below, the only length that carries 1.2–3 kbps. ``cbr=True`` caps every packet at the per-packet budget
    (constant bitrate), else a small bit reservoir lets hard packets borrow from easy ones while the
    running average stays at or under ``kbps``. ``sample_rate``: rate of the pushed PCM."""

    def __init__(self, kbps: float = 3.0, *, packet_ms: int | None = None, sample_rate: int = SAMPLE_RATE,
                 cbr: bool = False, bundle=None):
        self.kbps, self.cbr = check_kbps(kbps, streaming=True), bool(cbr)
        self.mode: Mode = voip_mode_for(self.kbps, packet_ms)
        self.budget = self.kbps * self.mode.packet_ms / 8  # bytes per packet
        b = resolve(bundle)
        cfg = stream_mel_config(b)
        self._mel = LogMel(cfg)
        self._half = cfg.n_fft // 2  # a mel frame (and a pitch frame) reaches this far back
        self._ahead = cfg.lookahead
        self._hop = cfg.hop
        self._synthesis = stream_config(b).get("vocoder", {}).get("n_fft", cfg.n_fft)  # decoder's iSTFT window
        self._resample = StreamResampler(check_rate(sample_rate))
        self._x = np.zeros(0, np.float32)  # 16 kHz samples from absolute index _x0 on
        self._x0 = 0
        self._frame = 0  # next mel frame to code
        self.sent = 0  # packets made so far (number them from 0 in this order for the decoder's ``seq``)
        self._credit = 0.0  # reservoir (bytes), VBR only
        self._step_index = self.mode.typical_g  # last packet's step index: where the next search starts
        self._closed = False

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency, ms: analysis look-ahead + half the synthesis window + the packet's other frames."""
        samples = self._ahead + self._synthesis // 2 + (self.mode.frames_per_packet - 1) * self._hop
        return 1000 * samples / SAMPLE_RATE

    def push(self, pcm) -> list[bytes]:
        """Add PCM, (samples,) or (samples, channels), int or float; returns the packets now complete."""
        if self._closed:
            raise RuntimeError("push() after flush(): make a new StreamEncoder for a new stream")
        x = to_float(pcm)
        if x.ndim == 2:
            x = to_mono(x, channels_first=False)
        elif x.ndim != 1:
            raise AudioInputError(f"a PCM chunk must be (samples,) or (samples, channels), got shape {x.shape}")
        self._x = np.concatenate([self._x, self._resample(x)])
        return self._drain(final=False)

    def flush(self) -> list[bytes]:
        """End of stream: code the remaining samples (the last packet is padded with silence)."""
        if self._closed:
            return []
        self._closed = True
        return self._drain(final=True)

    def _drain(self, final: bool) -> list[bytes]:
        n = self._x0 + len(self._x)
        P = self.mode.frames_per_packet
        total = -(-n // self._hop) + 1  # frames whose synthesis covers every pushed sample
        packets = []
        while True:
            k0 = self._frame
            if final:
                if k0 >= total or n == 0:
                    break
            elif n < (k0 + P - 1) * self._hop + self._ahead:
                break
            packets.append(self._packet(k0, min(P, total - k0) if final else P, n if final else None))
            self._frame += P
        keep = max(0, self._frame * self._hop - self._half - self._x0)  # drop samples no frame needs
        self._x, self._x0 = self._x[keep:], self._x0 + keep
        return packets

    def _span(self, lo: int, hi: int, end: int | None, reflect: bool) -> np.ndarray:
        """Samples [lo, hi) of the stream: reflected (mel STFT) or zero (pitch) beyond its start and ``end``."""
        idx = np.arange(lo, hi)
        if reflect:
            idx = np.abs(idx)
            if end is not None:
                last = max(end, 2 * self._half) - 1  # offline pads short inputs to one window
                idx = np.where(idx > last, 2 * last - idx, idx)
        inside = (idx >= self._x0) & (idx < self._x0 + len(self._x))
        out = np.zeros(len(idx), np.float32)
        out[inside] = self._x[idx[inside] - self._x0]
        return out

    def _packet(self, k0: int, frames: int, end: int | None) -> bytes:
        mode, hop = self.mode, self._hop
        # n_fft-sample mel frames; the window is zero past the look-ahead, so those samples may be missing
        lo, hi = k0 * hop - self._half, (k0 + frames - 1) * hop + self._half
        with torch.inference_mode():
            mel = self._mel(torch.from_numpy(self._span(lo, hi, end, reflect=True))[None], center=False)
        f0, voiced = pitch.estimate(self._span(lo, hi - self._half + self._ahead, end, reflect=False), self._ahead)
        f0, voiced = f0[2: 2 + frames], voiced[2: 2 + frames]
        pad = mode.frames_per_packet - frames
        if pad:  # last packet: pad with silent, unvoiced frames
            mel = torch.cat([mel, torch.full((1, mel.shape[1], pad), SILENCE_LOGMEL)], dim=-1)
            f0, voiced = np.concatenate([f0, np.zeros(pad, f0.dtype)]), np.concatenate([voiced, np.zeros(pad, bool)])
        coefs = mel_to_coefs(mel, mode.n_coefs, mode.decimation)[0].T.numpy()
        index, voiced = pitch.group(f0, voiced, mode.decimation)
        allowed = self.budget if self.cbr else self.budget + self._credit

        def packet(step_index: int) -> bytes:
            (payload,) = encode_groups(self.mode, coefs, index, voiced, step_index, trim=True)
            return bitstream.pack_packet(self.mode.id, payload)

        self._step_index, out = rate.fit(packet, allowed, self._step_index)  # the next search starts here
        if not self.cbr:
            self._credit = min(self._credit + self.budget - len(out), 4 * self.budget)
        self.sent += 1
        return out


MAX_GAP = 128  # packets: a longer jump ahead is a restarted sender, not a loss to conceal


class _Features:
    """Packets (or None for lost) → vocoder features (1, n_mels + 2, frames per packet), with concealment."""

    def __init__(self, n_mels: int):
        self.n_mels = n_mels
        self.expected: int | None = None  # next sequence number
        self.modulo = SEQ_MODULO  # V1_SEQ_MODULO for the in-band byte of version-1 packets
        self.mode: Mode | None = None
        self.last: torch.Tensor | None = None  # (1, n_mels + 2, 1) last good or concealed frame
        self.left: torch.Tensor | None = None  # (1, n_mels, 1) the last log-mel frame before smoothing
        self.run = 0  # frames concealed in a row
        self.lf0 = 0.0  # held log-F0 (octaves) carried across packets
        self.lost = 0

    def push(self, packet: bytes | None, in_order: bool = False, seq: int | None = None) -> list[torch.Tensor]:
        """One received packet (or None) → feature blocks, concealing any packets missed before it.
        ``seq``: the packet's sequence number from the transport (version-1 packets carry their own);
        without one the packet is taken as the next. ``in_order``: the packet is the next playout
        slot's, from a jitter buffer: no gap check."""
        if packet is None:
            return [self._conceal()]
        try:
            raw = bitstream.unpack_packet(packet)
            mode = mode_by_id(raw.mode_id)
        except (bitstream.BitstreamError, KeyError):
            return [self._conceal()]  # a damaged packet is a lost packet
        if mode not in VOIP_MODES:  # a storage mode's packet has no place in a call
            return [self._conceal()]
        blocks = []
        if seq is None and raw.seq is not None:
            seq, self.modulo = raw.seq, V1_SEQ_MODULO
        if seq is not None and self.expected is not None and not in_order:
            gap = (seq - self.expected) % self.modulo
            if gap >= self.modulo // 2:  # late or duplicate: already concealed or played
                return []
            if gap <= MAX_GAP:
                blocks += [self._conceal() for _ in range(gap)]
        self.expected = None if seq is None else (seq + 1) % self.modulo
        try:
            groups = bitstream.packet_groups(raw)
        except bitstream.BitstreamError:
            return blocks + [self._conceal()]
        self.mode = mode
        coefs = torch.from_numpy(groups.values.T.copy())[None]
        d, frames = mode.decimation, mode.frames_per_packet
        mel = clamp_logmel(coefs_to_mel(coefs, self.n_mels, d, frames))  # valid ≠ renderable
        mel, self.left = smooth_frames(mel, self.left), mel[..., -1:]  # low-passed as direct's, no look-ahead
        lf0, self.lf0 = pitch.held_octaves(groups.pitch, groups.voiced, self.lf0)
        pitch_rows = torch.from_numpy(np.repeat(np.stack([groups.voiced, lf0]).astype(np.float32), d, axis=1))[None]
        block = stack(mel, pitch_rows)
        self.last, self.run = block[..., -1:], 0
        return blocks + [block]

    def _conceal(self) -> torch.Tensor:
        """Features for one lost packet: hold the last frame, then fade it toward silence (``codec.conceal``)."""
        self.lost += 1
        if self.expected is not None:
            self.expected = (self.expected + 1) % self.modulo
        P = (self.mode or VOIP_LADDER[0]).frames_per_packet
        block = hold_and_fade(self.last, self.n_mels, self.run, P)
        self.left = block[:, :self.n_mels, -1:]
        if self.last is not None:
            self.run += P
        return block


def _vocoder(bundle):
    b = resolve(bundle)
    vocoder = stream_vocoder(b)
    if vocoder is None:
        raise BundleError(f"bundle {b.name} has no streaming vocoder ({ADDON}.safetensors)")
    return b, vocoder


class StreamDecoder:
    """Push packets (bytes, or None for a lost one), get 16 kHz float32 PCM back as it becomes final.

    Give each packet its sequence number (``seq``: the transport's, e.g. RTP's, any integer taken
    modulo 2^16): a gap is concealed, a late or duplicate packet dropped, a jump of more than 128
    packets taken as a restarted sender. Without ``seq`` every packet is the next one. ``lost``
    counts concealed packets. :meth:`flush` returns the tail when the call ends. Behind a
    :class:`codec.JitterBuffer` push each slot with ``in_order=True``.
    """

    def __init__(self, *, bundle=None):
        b, self.vocoder = _vocoder(bundle)
        self._features = _Features(b.mel_config.n_mels)
        head = self.vocoder.head
        self._n_fft, self._hop = head.n_fft, head.hop
        self._window = head.window.double().numpy()
        self._window_sq = self._window ** 2
        self._state = None  # the vocoder's streaming state (codec.vocoder.StreamState)
        self._ola = np.zeros(self._n_fft)  # overlap-add of frames not yet final
        self._env = np.zeros(self._n_fft)  # their summed squared windows
        self._frames = 0  # frames synthesised
        self._emitted = 0  # padded-stream positions already returned (first n_fft/2 are padding)

    @property
    def lost(self) -> int:
        return self._features.lost

    def push(self, packet: bytes | None, *, seq: int | None = None, in_order: bool = False) -> np.ndarray:
        """One packet (bytes; None for a lost one) → the 16 kHz samples now final (float32).

        ``in_order=False`` (packets straight from the network, each with its ``seq``): a gap in
        sequence numbers is concealed, a late or duplicate packet dropped. ``in_order=True`` (one call per
        playout slot of a :class:`codec.JitterBuffer`, which has already reordered, dropped and conceal-marked): the
        packet is decoded as given, whatever its sequence number."""
        packet = None if packet is None else as_packet(packet, "StreamDecoder.push")
        return self._render(self._features.push(packet, in_order, check_seq(seq, "StreamDecoder.push")))

    def flush(self) -> np.ndarray:
        """The samples still held by the overlap-add (the stream's last half window)."""
        end = (self._frames - 1) * self._hop + self._n_fft // 2  # where offline istft stops
        return self._emit(max(end, self._emitted))

    def _render(self, blocks: list[torch.Tensor]) -> np.ndarray:
        if not blocks:
            return np.zeros(0, np.float32)
        with torch.inference_mode():
            features = torch.cat(blocks, dim=-1)
            spec, self._state = self.vocoder.spectrum_step(features, self._state)
            spec = spec[0]
        frames = torch.fft.irfft(spec.to(torch.complex128), self._n_fft, dim=0).T.numpy() * self._window
        for frame in frames:  # frame k covers padded positions [k·hop, k·hop + n_fft)
            offset = self._frames * self._hop - self._emitted
            need = offset + self._n_fft
            if need > len(self._ola):
                self._ola = np.concatenate([self._ola, np.zeros(need - len(self._ola))])
                self._env = np.concatenate([self._env, np.zeros(need - len(self._env))])
            self._ola[offset:need] += frame
            self._env[offset:need] += self._window_sq
            self._frames += 1
        return self._emit(self._frames * self._hop)  # positions no later frame will touch

    def _emit(self, upto: int) -> np.ndarray:
        n = upto - self._emitted
        out = self._ola[:n] / np.where(self._env[:n] > 1e-11, self._env[:n], 1.0)
        self._ola, self._env = self._ola[n:], self._env[n:]
        skip = max(0, self._n_fft // 2 - self._emitted)  # centred STFT: the first n_fft/2 are padding
        self._emitted = upto
        return np.clip(out[skip:], -1.0, 1.0).astype(np.float32)  # within full scale, whatever the packets


def decode_packets(packets, *, bundle=None) -> np.ndarray:
    """Offline reference: a whole packet sequence (bytes or None per slot) → 16 kHz float32 PCM."""
    b, vocoder = _vocoder(bundle)
    features = _Features(b.mel_config.n_mels)
    blocks = [blk for p in packets for blk in features.push(None if p is None else as_packet(p, "decode_packets"))]
    if not blocks:
        return np.zeros(0, np.float32)
    with torch.inference_mode():
        return np.clip(vocoder(torch.cat(blocks, dim=-1))[0].numpy(), -1.0, 1.0)
