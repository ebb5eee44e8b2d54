"""Long recordings in blocks (codec/chunked.py, codec/pitch.py): the block-wise analysis equals the
whole-signal one bit for bit (so the bytes are the same), the block-wise vocoder equals the one-pass
vocoder up to rounding, and short streams keep the one-pass path.

The clips are the shipped ones, concatenated (≈ 18 s); blocks are made small so that it spans several.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

import codec
from codec import chunked, decoders, pitch
from codec.bundle import for_stream, resolve
from codec.features import MelConfig
from codec.stream import stream_vocoder
from codec.vocoder import Vocoder

SMALL = chunked.ChunkConfig(block=200, context=120, min_seconds=0)  # 12 s (750 frames): 4 blocks


@pytest.fixture(scope="module")
def speech(clips) -> np.ndarray:
    """The shipped clips end to end: ≈ 18 s, float32 16 kHz."""
    return np.concatenate(clips + clips)[: 18 * 16000]


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / max(np.sum((ref - test) ** 2.0), 1e-30)))


@pytest.mark.parametrize("lookahead", [512, 256])
def test_pitch_blocks_equal_one_pass(speech, lookahead):
    """The track does not depend on the block size, down to one frame a block; a range of frames is its slice."""
    x = speech[:5 * 16000] + np.random.default_rng(0).normal(0, 1e-3, 5 * 16000).astype(np.float32)
    whole = pitch.estimate(x, lookahead, block=10**9)
    for block in (1, 7, 64):
        f0, voiced = pitch.estimate(x, lookahead, block)
        assert np.array_equal(f0, whole[0]) and np.array_equal(voiced, whole[1])
    f0, voiced = pitch.estimate_frames(x, 100, 37, lookahead, block=5)
    assert np.array_equal(f0, whole[0][100:137]) and np.array_equal(voiced, whole[1][100:137])


@pytest.mark.parametrize("cfg", [MelConfig(), MelConfig(win_length=512)], ids=["centred", "short-window"])
def test_analysis_blocks_equal_one_pass(speech, cfg):
    """Log-mel and pitch track in blocks (the last one shorter) equal the one-pass analysis exactly."""
    x = speech[: 256 * 1000 + 17]
    mel, f0, voiced = chunked.analyse(x, cfg, block=10**9)
    assert mel.shape == (1, cfg.n_mels, 1001)
    for block in (97, 300):
        m, f, v = chunked.analyse(x, cfg, block)
        assert torch.equal(m, mel) and np.array_equal(f, f0) and np.array_equal(v, voiced)


def test_latent_encoder_blocks_equal_one_pass(speech):
    """The latent of a block-wise encode equals the one-pass latent exactly, whatever the block size."""
    encoder = resolve(None).latent.encoder
    mel = chunked.analyse(speech, MelConfig())[0]
    with torch.inference_mode():
        whole = encoder(mel)
    for block in (5, 200, 700):
        assert torch.equal(chunked.encode_latent(encoder, mel, block), whole)


@pytest.mark.parametrize("kbps", [0.6, 1.2])  # both latent layouts: 16 channels at stride 5, 10 at stride 3
def test_latent_decoder_blocks_match_one_pass(speech, kbps):
    """The latent decoder in blocks gives the one-pass log-mel to within rounding; short streams take the one-pass
    path."""
    import bitstream
    from bitstream.modes import frames_for

    header, groups = bitstream.read_groups(codec.encode(speech, kbps=kbps))
    b = for_stream(header.bundle_id, None, header.representation)
    coded = decoders.Coded.from_groups(groups, b, header.seed, frames_for(header.num_samples))
    step = torch.from_numpy(coded.step_size)[None].float()
    with torch.inference_mode():
        whole = decoders.latent_decoder(b)(coded.values, coded.pitch, step)
    assert torch.equal(chunked.decode_latent(decoders.latent_decoder(b), coded.values, coded.pitch, step), whole)
    blocks = chunked.decode_latent(decoders.latent_decoder(b), coded.values, coded.pitch, step, SMALL)
    assert blocks.shape == whole.shape and (blocks - whole).abs().max() < 1e-4


def test_latent_rate_blocks_widen_the_reach(speech):
    """An autoencoder with blocks at the latent rate (``enc_low_layers``, ``dec_low_layers``, #33) sees further:
    its block-wise encode and decode still equal the one-pass ones."""
    from codec.latent import LatentAutoencoder, LatentConfig

    torch.manual_seed(0)
    model = LatentAutoencoder(LatentConfig(stride=3, channels=10, enc_low_layers=2, dec_low_layers=4)).eval()
    mel = chunked.analyse(speech, MelConfig())[0]
    rows = torch.from_numpy(pitch.features(*pitch.group(*pitch.estimate(speech), 1), 1, mel.shape[-1]))[None]
    with torch.inference_mode():
        z = model.encoder(mel)
        step = torch.full((1, z.shape[-1]), 2.0)
        whole = model.decoder(z, rows, step)
    assert torch.equal(chunked.encode_latent(model.encoder, mel, 200), z)
    blocks = chunked.decode_latent(model.decoder, z, rows, step, SMALL)
    assert blocks.shape == whole.shape and (blocks - whole).abs().max() < 1e-4


@pytest.mark.parametrize("kbps", [0.6, 1.2, 3.0])
def test_encode_in_blocks_writes_the_same_bytes(speech, kbps, monkeypatch):
    """The bytes of a block-wise encode are those of the one-pass encode, mel and latent modes."""
    one_pass = codec.encode(speech, kbps=kbps)
    monkeypatch.setattr(chunked, "DEFAULT", chunked.ChunkConfig(block=200))
    assert codec.encode(speech, kbps=kbps) == one_pass


def _features(speech) -> tuple:
    """The ``direct`` decoder's vocoder and its features (1, 82, frames) for a 3 kbps stream of ``speech``."""
    data = codec.encode(speech, kbps=3.0)
    import bitstream
    from bitstream.modes import frames_for

    header, groups = bitstream.read_groups(data)
    b = for_stream(header.bundle_id, None, header.representation)
    coded = decoders.Coded.from_groups(groups, b, header.seed, frames_for(header.num_samples))
    with torch.inference_mode():
        mel = decoders.smooth_frames(decoders.stream_mel(b, coded))
        return b, decoders.features(mel, coded.pitch, decoders.vocoder_for(b), coded.concealed)


def test_vocoder_blocks_match_one_pass(speech):
    """Rendered in 200-frame blocks with 120 frames of context, the shipped vocoder (magnitude prior, quiet
    gate, excitation phase, 24 Griffin-Lim iterations) gives the one-pass waveform to within rounding: the
    pulse train's phase is re-anchored at each block, so Griffin-Lim starts a few ulp apart (measured
    ≈ 69 dB SNR); the vocoder without Griffin-Lim agrees to ≈ 130 dB."""
    b, feats = _features(speech[:12 * 16000])
    whole = chunked.vocode(decoders.vocoder_for(b), feats, chunked.ChunkConfig(min_seconds=1e9))  # the one-pass path
    blocks = chunked.vocode(decoders.vocoder_for(b), feats, SMALL)
    assert blocks.shape == whole.shape and blocks.dtype == np.float32
    assert snr_db(whole, blocks) > 55 and np.abs(whole - blocks).max() < 0.01
    plain = decoders.vocoder_for(b, "mel2mel_vocoder")  # the head's phase, no Griffin-Lim
    assert snr_db(chunked.vocode(plain, feats, chunked.ChunkConfig(min_seconds=1e9)),
                  chunked.vocode(plain, feats, SMALL)) > 100


@pytest.mark.parametrize("phase_init, iterations", [("sinusoidal", 0), ("sinusoidal", 8), ("learned", 0), (None, 0)])
def test_every_phase_renders_in_blocks(speech, phase_init, iterations):
    """The sinusoidal and learned phases render in blocks too (the fundamental's phase, the pulse train's cycles
    and the noise carried to each block), equal to the one-pass waveform up to rounding (measured ≥ 118 dB); so
    does the causal streaming vocoder (``None``: sinusoidal, quiet gate against the loudest frame so far)."""
    b, feats = _features(speech[:12 * 16000])
    vocoder = stream_vocoder(b)
    if phase_init is not None:
        vocoder = Vocoder(replace(decoders.vocoder_for(b).cfg, phase_init=phase_init, phase_iterations=iterations))
        vocoder.load_state_dict(decoders.vocoder_for(b).state_dict())
        vocoder.eval()
    whole = chunked.vocode(vocoder, feats, chunked.ChunkConfig(min_seconds=1e9))
    blocks = chunked.vocode(vocoder, feats, SMALL)
    assert blocks.shape == whole.shape and snr_db(whole, blocks) > 100


def test_noise_tape_reads_the_one_pass_sequence():
    """Overlapping windows read in order are the slices of one ``torch.randn`` draw."""
    whole = torch.randn((1, 256 * 400), generator=torch.Generator().manual_seed(0))
    tape = chunked._NoiseTape(torch.Generator().manual_seed(0), torch.float32, 256)
    for lo, hi in [(0, 100), (40, 260), (200, 200), (220, 400)]:
        assert torch.equal(torch.randn((1, (hi - lo) * 256), generator=tape.at(lo)), whole[:, lo * 256:hi * 256])
    with pytest.raises(ValueError):
        tape.at(0)


def test_progress_reports_each_block(speech):
    """Long inputs report each block, done frames rising to the total; short ones report nothing."""
    calls = []
    with chunked.progress(lambda *a: calls.append(a)):
        chunked.analyse(speech, MelConfig(), block=400)
        chunked.analyse(speech[:16000], MelConfig(), block=400)
    frames = len(speech) // 256 + 1
    assert [c[0] for c in calls] == ["encode"] * 3 and calls[-1] == ("encode", frames, frames)
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)
    calls.clear()
    chunked.analyse(speech, MelConfig(), block=400)  # outside the ``with``: nobody is told
    assert calls == []
