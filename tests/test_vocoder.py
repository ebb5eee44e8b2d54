from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from codec.vocoder import Vocoder, VocoderConfig

DATA = Path(__file__).parent / "data"


def test_relative_level_vocoder_is_gain_equivariant():
    """Scaling the input's mel magnitudes by g (adding log g to every band) scales the waveform by g."""
    torch.manual_seed(0)
    voc = Vocoder(VocoderConfig(dim=32, intermediate=64, layers=2, relative_level=True)).eval()
    mel = torch.randn(1, 80, 20) - 4.0
    pitch_rows = torch.stack([torch.full((1, 20), 0.3), torch.ones(1, 20)], dim=1)
    with torch.no_grad():
        y = voc(torch.cat([mel, pitch_rows], dim=1))
        y_quiet = voc(torch.cat([mel + math.log(0.25), pitch_rows], dim=1))
    torch.testing.assert_close(y_quiet, 0.25 * y, rtol=1e-4, atol=1e-6)


def test_absolute_level_vocoder_is_not_equivariant():
    """The check above can fail: without relative_level the output does not follow the gain."""
    torch.manual_seed(0)
    voc = Vocoder(VocoderConfig(dim=32, intermediate=64, layers=2)).eval()
    feats = torch.cat([torch.randn(1, 80, 20) - 4.0, torch.zeros(1, 2, 20)], dim=1)
    quiet = feats.clone()
    quiet[:, :80] += math.log(0.25)
    with torch.no_grad():
        assert not torch.allclose(voc(quiet), 0.25 * voc(feats), rtol=1e-3, atol=1e-5)


def test_relative_level_streams_like_offline():
    torch.manual_seed(0)
    voc = Vocoder(VocoderConfig(dim=32, intermediate=64, layers=2, causal=True, relative_level=True)).eval()
    feats = torch.cat([torch.randn(1, 80, 12) - 4.0, torch.zeros(1, 2, 12)], dim=1)
    with torch.no_grad():
        whole = voc.backbone(feats)
        a, cache = voc.backbone_step(feats[..., :5], None)
        b, _ = voc.backbone_step(feats[..., 5:], cache)
    torch.testing.assert_close(torch.cat([a, b], dim=1), whole, rtol=1e-4, atol=1e-5)


def test_mag_prior_starts_from_the_mel_inverse_and_phase_iterations_make_it_intelligible():
    """Untrained, a mag-prior vocoder's magnitude maps back onto the input mel, and Griffin-Lim
    iterations from its (random) phase already give intelligible speech."""
    import soundfile as sf

    from codec.features import MelConfig, mel_filterbank
    from codec.floors import features
    from codec.metrics import all_metrics

    wav, _ = sf.read(DATA / "LJ001-0028.flac", dtype="float32")
    wav = wav[:32000]
    feats = features(wav, MelConfig())
    torch.manual_seed(0)
    scores = {}
    for n, init in ((0, "head"), (16, "head"), (16, "excitation")):
        voc = Vocoder(VocoderConfig(dim=32, intermediate=64, layers=2, relative_level=True, mag_prior=True,
                                    phase_iterations=n, phase_init=init)).eval()
        with torch.no_grad():
            if n == 0:
                mag = voc(feats, spectrum=True).abs()[0]
                rebuilt = torch.log((torch.from_numpy(mel_filterbank(MelConfig())) @ mag).clamp(min=1e-5))
                assert (rebuilt - feats[0, :80]).abs().mean() < 0.1  # nats
            y = voc(feats)[0].numpy()
        scores[n, init] = all_metrics(wav[: len(y)], y)["stoi"]
    assert scores[16, "head"] > 0.85 and scores[16, "head"] > scores[0, "head"] + 0.05
    assert scores[16, "excitation"] > 0.85  # Griffin-Lim from the F0-driven phase: as intelligible
    with pytest.raises(ValueError, match="phase_init"):
        Vocoder(VocoderConfig(phase_init="random"))


def test_quiet_frames_keep_at_most_the_prior():
    """quiet_db: frames far below the loudest are capped at the mel's least-squares magnitude; loud ones are not."""
    torch.manual_seed(0)
    free = Vocoder(VocoderConfig(dim=32, intermediate=64, layers=2, mag_prior=True))
    with torch.no_grad():
        free.head.out.bias[:513] = 1.0  # the head raises every bin e-fold over the prior
    capped = Vocoder(VocoderConfig(dim=32, intermediate=64, layers=2, mag_prior=True, quiet_db=30.0))
    capped.load_state_dict(free.state_dict())
    feats = torch.cat([torch.full((1, 80, 12), -1.0), torch.zeros(1, 2, 12)], dim=1)
    feats[:, :80, 6:] = -9.0  # 6 frames ~70 dB below the first 6
    with torch.no_grad():
        prior = torch.exp(capped.log_offset(feats, capped.backbone(feats)))
        a, b = free.spectrum(feats).abs(), capped.spectrum(feats).abs()
    assert torch.allclose(a[..., :6], b[..., :6])  # loud frames: the head's gain stays
    assert (b[..., 6:] <= prior[..., 6:] * (1 + 1e-5)).all() and (a[..., 6:] > prior[..., 6:] * 2).all()


def test_harmonic_prior_moves_voiced_power_onto_the_f0_harmonics():
    """harmonic_prior: at harmonicity → 1 a voiced frame's power sits on the multiples of its F0 and
    its mean over the bins is kept; unvoiced frames keep the plain prior; it needs mag_prior."""
    from codec.excitation import REF_HZ

    torch.manual_seed(0)
    cfg = VocoderConfig(dim=32, intermediate=64, layers=2, mag_prior=True, harmonic_prior=True)
    voc = Vocoder(cfg)
    plain = Vocoder(VocoderConfig(dim=32, intermediate=64, layers=2, mag_prior=True))
    feats = torch.cat([torch.full((1, 80, 12), -2.0), torch.zeros(1, 2, 12)], dim=1)
    feats[0, 80, :6] = 1.0  # voiced, then unvoiced
    feats[0, 81] = math.log2(156.25 / REF_HZ)  # harmonics every 10 bins of a 1024-point STFT
    with torch.no_grad():
        voc.harmonicity.bias.fill_(8.0)  # harmonicity ≈ 1 in every band
        emb = voc.backbone(feats)
        shape = voc.harmonic_shape(feats, emb)[0]
        prior = plain.log_offset(feats, plain.backbone(feats))
        offset = voc.log_offset(feats, emb)
    assert shape.shape == (513, 12)
    assert torch.equal(offset[..., 6:], prior[..., 6:]) and not shape[:, 6:].any()  # unvoiced: no comb
    power = torch.exp(2 * shape[:, :6])
    assert abs(power[20:500].mean().item() - 1) < 0.02  # the band's power is kept
    assert (power[10:500:10] > 5).all() and (power[15:500:10] < 0.01).all()  # peaks on harmonics, valleys between
    with pytest.raises(ValueError, match="mag_prior"):
        Vocoder(VocoderConfig(harmonic_prior=True))


def test_harmonic_boost_sharpens_harmonics_when_decoding_only():
    """harmonic_boost raises the learnt harmonicity at decoding (eval mode): deeper valleys between
    the F0 harmonics, the band's power kept; training (the losses) sees the harmonicity as learnt."""
    from codec.excitation import REF_HZ

    torch.manual_seed(0)
    kw = dict(dim=32, intermediate=64, layers=2, mag_prior=True, harmonic_prior=True)
    learnt, boosted = Vocoder(VocoderConfig(**kw)), Vocoder(VocoderConfig(**kw, harmonic_boost=0.5))
    boosted.load_state_dict(learnt.state_dict())
    feats = torch.cat([torch.full((1, 80, 6), -2.0), torch.ones(1, 1, 6),
                       torch.full((1, 1, 6), math.log2(156.25 / REF_HZ))], dim=1)  # voiced, harmonics every 10 bins
    with torch.no_grad():
        shapes = {}
        for name, voc, training in (("learnt", learnt, False), ("boosted", boosted, False),
                                    ("training", boosted, True)):
            voc.train(training)
            shapes[name] = voc.harmonic_shape(feats, voc.backbone(feats))[0]
    assert torch.equal(shapes["training"], shapes["learnt"])
    learnt_valley, boosted_valley = (torch.exp(2 * shapes[k][15:500:10]).mean() for k in ("learnt", "boosted"))
    assert boosted_valley < 0.7 * learnt_valley
    assert abs(torch.exp(2 * shapes["boosted"][20:500]).mean().item() - 1) < 0.02


@pytest.mark.parametrize("phase_init, quiet_db", [("head", None), ("sinusoidal", None), ("sinusoidal", 30.0)])
def test_spectrum_step_streams_like_offline(phase_init, quiet_db):
    """The streaming state protocol: a causal vocoder fed its frames in uneven chunks gives the offline
    spectrum, phase included (the sinusoidal phase's fundamental and noise carry across calls)."""
    torch.manual_seed(0)
    voc = Vocoder(VocoderConfig(dim=32, intermediate=64, layers=2, causal=True, relative_level=True, mag_prior=True,
                                n_fft=512, phase_init=phase_init, quiet_db=quiet_db)).eval()
    voicing = (torch.arange(30) % 11 > 3).float()
    feats = torch.cat([torch.randn(1, 80, 30) - 4.0, voicing[None, None], torch.linspace(-1, 1, 30)[None, None]], 1)
    feats[:, :80, 12:20] -= 5  # a pause: 43 dB down, gated with quiet_db
    with torch.no_grad():
        whole = voc.spectrum(feats)
        parts, state = [], None
        for lo, hi in ((0, 1), (1, 8), (8, 9), (9, 30)):
            spec, state = voc.spectrum_step(feats[..., lo:hi], state)
            parts.append(spec)
    torch.testing.assert_close(torch.cat(parts, dim=-1), whole, rtol=1e-4, atol=1e-4)


def test_spectrum_step_refuses_what_needs_the_future():
    for cfg in (VocoderConfig(causal=False, mag_prior=True, quiet_db=30.0),
                VocoderConfig(causal=True, phase_init="excitation")):
        with pytest.raises(ValueError, match="streaming vocoder"):
            Vocoder(cfg).eval().spectrum_step(torch.zeros(1, 82, 4), None)


def test_sinusoidal_phase_follows_the_pulse_train():
    """On a voiced frame the phase at each harmonic's bin is the excitation's STFT phase up to one
    time shift (a phase linear in the harmonic number: the two integrate F0 from different origins)."""
    from codec.excitation import excitation, sinusoidal_phase

    pitch_rows = torch.stack([torch.ones(1, 40), torch.full((1, 40), 0.2)], dim=1)
    harm, _, _ = excitation(pitch_rows, 256, 16000)
    ref = torch.stft(harm, 1024, 256, window=torch.hann_window(1024), center=True, return_complex=True)[..., 20]
    ours = sinusoidal_phase(pitch_rows, 1024, 256, 16000)[0][..., 20]
    k = torch.arange(1, 12)
    bins = torch.round(k * 169.7 * 2 ** 0.2 * 1024 / 16000).long()
    diff = torch.angle(ref[0, bins] * ours[0, bins].conj())
    slope = (k * diff).sum() / (k * k).sum()  # the time shift, as a phase per harmonic
    assert torch.allclose(diff, slope * k, atol=0.05), diff


def test_sinusoidal_phase_is_noise_above_the_voicing_cut_off():
    """``top_hz``: a voiced frame's harmonics keep the pulse train's phase below the cut-off (whatever the
    noise draws), and take the noise's above it (two noise draws disagree there)."""
    from codec.excitation import sinusoidal_phase

    pitch_rows = torch.stack([torch.ones(1, 8), torch.zeros(1, 8)], dim=1)  # fully voiced, F0 169.7 Hz
    bins = torch.round(torch.arange(1, 46) * 169.7 * 1024 / 16000).long()  # the harmonics below 7.8 kHz
    below, above = bins < 3000 * 1024 / 16000, bins > 3300 * 1024 / 16000
    draws = [sinusoidal_phase(pitch_rows, 1024, 256, 16000, None, torch.Generator().manual_seed(s), top_hz=3000)[0]
             for s in (0, 1)]
    agree = (draws[0] * draws[1].conj()).real[0, bins]  # cos of the phase difference, per harmonic and frame
    assert (agree[below] > 0.99).all() and agree[above].mean() < 0.5
    full = [sinusoidal_phase(pitch_rows, 1024, 256, 16000, None, torch.Generator().manual_seed(s))[0] for s in (0, 1)]
    assert ((full[0] * full[1].conj()).real[0, bins] > 0.99).all()  # default: harmonics up to 7.8 kHz


def test_voiced_top_hz_is_checked():
    with pytest.raises(ValueError, match="voiced_top_hz"):
        VocoderConfig(voiced_top_hz=9000.0)


@pytest.mark.parametrize("addon, head, phase, harmonic", [
    ("direct_vocoder", "MagPriorHead", "ExcitationPhase", True),
    ("stream_vocoder", "MagPriorHead", "SinusoidalPhase", True),
    ("mel2mel_vocoder", "ISTFTHead", "HeadPhase", False)])
def test_shipped_configs_pick_one_class_per_role_and_keep_their_weights_keys(addon, head, phase, harmonic):
    """The head and phase source are classes the flat config fields pick (``mag_prior`` → MagPriorHead,
    ``phase_init`` → a PHASES entry); a shipped JSON, ``"source_filter": false`` included, builds a model
    whose state_dict keys are its safetensors' (the weights load unchanged)."""
    import json

    from safetensors import safe_open

    from codec.bundle import typed

    folder = Path(__file__).parents[1] / "codec" / "bundles" / "default"
    raw = json.loads((folder / f"{addon}.json").read_text())["vocoder"]
    voc = Vocoder(typed(VocoderConfig, raw, addon))
    assert type(voc.head).__name__ == head and type(voc.phase).__name__ == phase
    assert (voc.harmonicity is not None) == harmonic
    with safe_open(str(folder / f"{addon}.safetensors"), "pt") as f:
        assert sorted(f.keys()) == sorted(voc.state_dict())
    with pytest.raises(ValueError, match="source_filter"):
        VocoderConfig(source_filter=True)
