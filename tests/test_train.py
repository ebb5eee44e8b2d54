"""Training recipe: runs, checkpoints without pickle, resumes, exports a loadable bundle."""
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import codec
from codec.bundle import Bundle, kept_latents
from codec.decoders import latent_decoder, vocoder_for
from codec.stream import stream_mel_config, stream_vocoder
from codec.train import export, vocoder

DATA = Path(__file__).parent / "data"
DEV = DATA / "dev"  # held-out speakers' clips


def test_train_resume_export(tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "4096", "--threads", "1",
            "--save-every", "2"]
    vocoder.main(args + ["--steps", "2"])
    with safe_open(str(out / "last.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "2"
        assert any(k.startswith("opt.") for k in f.keys())
    vocoder.main(args + ["--steps", "4"])  # resumes from step 2
    with safe_open(str(out / "last.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "4"
    export.main([str(out / "last.safetensors"), str(tmp_path / "bundle"), "--name", "tiny"])
    b = Bundle.load(tmp_path / "bundle")
    assert b.name == "tiny" and len(b.id) == 8
    wav = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    out_wav, _ = codec.decode(codec.encode(wav, kbps=3, bundle=b), bundle=b)
    assert out_wav.shape == wav.shape


def test_fine_tune_from_shipped_bundle(tmp_path):
    from codec.bundle import resolve

    out = tmp_path / "ft"
    vocoder.main(["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "4096", "--threads", "1",
                  "--steps", "1", "--lr", "0", "--init", str(resolve().path)])
    export.main([str(out / "last.safetensors"), str(tmp_path / "b")])
    shipped = vocoder_for(resolve()).state_dict()  # the vocoder that decodes, not the bundle-id one
    tuned = Bundle.load(tmp_path / "b").vocoder
    assert tuned.cfg == vocoder_for(resolve()).cfg
    tuned = tuned.state_dict()
    # lr 0: the weights are the shipped ones (up to the fp16 storage of bundles)
    assert all(np.allclose(shipped[k], tuned[k], atol=1e-3) for k in shipped)


def test_low_latency_stream_vocoder_recipe(tmp_path):
    """--causal --mel-window --synthesis-fft: the run's config carries the front end, the head starts
    from the shipped one's every other bin, and the exported add-on drives the stream encoder."""
    import shutil

    import torch

    from codec.bundle import resolve
    from codec.vocoder import Vocoder, VocoderConfig

    out = tmp_path / "ll"
    vocoder.main(["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "4096", "--threads", "1",
                  "--steps", "1", "--lr", "0", "--init", str(resolve().path), "--causal",
                  "--mel-window", "256", "--synthesis-fft", "512"])
    bundle = tmp_path / "b"
    shutil.copytree(resolve().path, bundle)
    export.main([str(out / "last.safetensors"), str(bundle), "--addon", "stream_vocoder"])
    b = Bundle.load(bundle)
    assert stream_mel_config(b).win_length == 256 and stream_vocoder(b).cfg.n_fft == 512
    assert codec.StreamEncoder(3, bundle=b).latency_ms == (128 + 256 + 256) / 16  # 8 + 16 + 16 ms
    # a 2x shorter head: same backbone, bins 0, 2, 4, ... with ln 2 less magnitude
    src, dst = Vocoder(VocoderConfig(n_fft=1024)), Vocoder(VocoderConfig(n_fft=512))
    vocoder.init_from(dst, src)
    w, b_src, b_dst = src.head.out.weight, src.head.out.bias, dst.head.out.bias
    assert torch.equal(dst.head.out.weight[:257], w[:513:2]) and torch.allclose(b_dst[:257], b_src[:513:2] - np.log(2))


def test_mag_prior_warm_start_begins_at_the_prior():
    import torch

    from codec.vocoder import Vocoder, VocoderConfig

    src, dst = Vocoder(VocoderConfig()), Vocoder(VocoderConfig(mag_prior=True))
    vocoder.init_from(dst, src)
    w, b = dst.head.out.weight, dst.head.out.bias
    assert not w[:513].any() and not b[:513].any()  # log-magnitude = the mel's least-squares inverse
    assert torch.equal(w[513:], src.head.out.weight[513:]) and torch.equal(dst.embed.weight, src.embed.weight)
    # a harmonic_prior model started from one without: same weights, its harmonicity layer at its start
    harm = Vocoder(VocoderConfig(mag_prior=True, harmonic_prior=True))
    start = {k: v.clone() for k, v in harm.harmonicity.state_dict().items()}
    vocoder.init_from(harm, dst)
    assert torch.equal(harm.head.out.weight, w) and torch.equal(harm.harmonicity.bias, start["bias"])


def test_causal_run_defaults_to_the_streaming_front_end(tmp_path):
    """--causal alone (the README's recipe) trains for the 48 ms stream path: 512-sample analysis window
    and synthesis FFT, not --init's offline front end (1024 samples: 80 ms)."""
    import json

    from codec.bundle import resolve

    out = tmp_path / "causal"
    vocoder.main(["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "4096", "--threads", "1",
                  "--steps", "0", "--init", str(resolve().path), "--causal"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["mel"]["win_length"] == 512 and cfg["vocoder"]["n_fft"] == 512 and cfg["vocoder"]["causal"]
    vocoder.main(["--data", str(DATA), "--out", str(tmp_path / "explicit"), "--batch", "2", "--segment", "4096",
                  "--threads", "1", "--steps", "0", "--causal", "--mel-window", "1024", "--synthesis-fft", "1024"])
    cfg = json.loads((tmp_path / "explicit" / "config.json").read_text())
    assert cfg["mel"]["win_length"] == 1024 and cfg["vocoder"]["n_fft"] == 1024  # asked for: kept


def test_latent_and_lat2lat_recipes(tmp_path):
    """Latent autoencoder: trains, resumes, exports into a bundle that then makes and reads latent
    streams; lat2lat trains on that bundle's latent and exports beside it."""
    import shutil

    from codec.bundle import resolve
    from codec.train import lat2lat as train_lat2lat, latent as train_latent

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for f in ("config.json", "vocoder.safetensors"):
        shutil.copy(resolve().path / f, bundle / f)
    common = ["--data", str(DATA), "--batch", "2", "--segment", "8000", "--threads", "1", "--save-every", "1"]
    train_latent.main(common + ["--out", str(tmp_path / "lat"), "--steps", "1"])
    train_latent.main(common + ["--out", str(tmp_path / "lat"), "--steps", "2"])  # resumes
    train_latent.main(["--export", str(tmp_path / "lat" / "last.safetensors"), str(bundle)])
    train_lat2lat.main(common + ["--bundle", str(bundle), "--out", str(tmp_path / "l2l"), "--steps", "1"])
    train_lat2lat.main(["--export", str(tmp_path / "l2l" / "last.safetensors"), str(bundle)])
    b = Bundle.load(bundle)
    wav = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    data = codec.encode(wav, kbps=0.6, representation="latent", bundle=b)
    for d in ("direct", "lat2lat"):
        assert codec.decode(data, bundle=b, decoder=d)[0].shape == wav.shape


def test_latent_decoder_adversarial_fine_tune_keeps_the_encoder(tmp_path):
    """--adversarial trains the shipped latent decoder against a mel discriminator (state saved); the
    encoder and rate model, what latent streams mean, come out bit-identical."""
    import shutil

    from codec.bundle import resolve
    from codec.train import latent as train_latent

    out = tmp_path / "lat_gan"
    args = ["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "8000", "--threads", "1",
            "--save-every", "1", "--steps", "2", "--lr", "1e-2", "--adversarial", "--step-range", "1", "32"]
    with pytest.raises(SystemExit):
        train_latent.main(args)  # needs --init
    bare = tmp_path / "bare"  # a bundle without a latent autoencoder
    bare.mkdir()
    for f in ("config.json", "vocoder.safetensors"):
        shutil.copy(resolve().path / f, bare / f)
    with pytest.raises(SystemExit):
        train_latent.main(args + ["--init", str(bare)])
    train_latent.main(args + ["--init", str(resolve().path)])
    shipped = {k: v.float() for k, v in resolve().latent.state_dict().items()}
    with safe_open(str(out / "last.safetensors"), "pt") as f:
        trained = {k[4:]: f.get_tensor(k) for k in f.keys() if k.startswith("ema.")}
    assert trained.keys() == shipped.keys()
    for k, v in shipped.items():
        assert k.startswith("decoder.") or torch.equal(trained[k], v), k
    assert not all(torch.equal(trained[k], v) for k, v in shipped.items() if k.startswith("decoder."))
    with safe_open(str(out / "mel_discriminator.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "2"
    bundle = tmp_path / "bundle"  # the export: the decoder alone, as an add-on outside the stream id
    shutil.copytree(resolve().path, bundle)
    train_latent.main(["--export", str(out / "last.safetensors"), str(bundle)])
    b = Bundle.load(bundle)
    assert b.stream_id("latent") == resolve().stream_id("latent") and latent_decoder(b) is not b.latent.decoder
    wav = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    data = codec.encode(wav, kbps=1.2, representation="latent")  # the shipped bundle's stream (its newest latent)
    assert codec.encode(wav, kbps=1.2, representation="latent", bundle=b) == data
    assert not np.array_equal(codec.decode(data, bundle=b)[0], codec.decode(data)[0])


def test_latent_refit_keeps_the_previous_generation_decodable(tmp_path, monkeypatch):
    """--adversarial --refit trains the whole autoencoder (with the rate term). Its export replaces
    ``latent.*``, so new latent streams get a new id, and keeps the autoencoder it replaces, with the
    models made for it, as the next ``latent_vN``: streams written before decode as they did."""
    import shutil

    from codec.bundle import BundleError, resolve
    from codec.train import latent as train_latent

    out = tmp_path / "refit"
    args = ["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "8000", "--threads", "1",
            "--save-every", "1", "--steps", "1", "--lr", "1e-2", "--refit"]
    with pytest.raises(SystemExit):
        train_latent.main(args + ["--init", str(resolve().path)])  # --refit goes with --adversarial
    train_latent.main(args + ["--init", str(resolve().path), "--adversarial"])
    bundle = tmp_path / "bundle"
    shutil.copytree(resolve().path, bundle)
    shutil.copy(bundle / "latent.json", bundle / "latent_decoder.json")  # a decoder made for the shipped latent
    save_file(resolve().latent.decoder.state_dict(), str(bundle / "latent_decoder.safetensors"))
    wav = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    old = codec.encode(wav, kbps=1.2, representation="latent")  # written with the shipped autoencoder
    expected = codec.decode(old, bundle=bundle)[0]  # with the decoder made for it
    train_latent.main(["--export", str(out / "last.safetensors"), str(bundle)])
    b = Bundle.load(bundle)
    n_kept = len(kept_latents(resolve().path))
    kept = f"latent_v{n_kept + 1}"  # the shipped latent, kept as the next generation
    assert b.id == resolve().id and not b.has("latent_decoder") and latent_decoder(b) is b.latent.decoder
    assert b.has(kept) and b.has(f"{kept}_decoder") and not b.has("lat2lat")
    shipped = resolve().latent.encoder.state_dict()
    assert not all(torch.equal(v, shipped[k]) for k, v in b.latent.encoder.state_dict().items())

    new = codec.encode(wav, kbps=1.2, representation="latent", bundle=b)
    assert codec.info(new)["bundle_id"] == b.stream_id("latent").hex() != resolve().stream_id("latent").hex()
    assert np.array_equal(codec.decode(old, bundle=b)[0], expected)  # the decoder was kept with it
    assert codec.decode(new, bundle=b)[0].shape == wav.shape
    with pytest.raises(BundleError, match="lat2lat"):
        codec.decode(new, bundle=b, decoder="lat2lat")  # none made for the new generation yet
    monkeypatch.setenv("LDCODEC_BUNDLE", str(bundle))  # found by id among the bundle's generations
    assert np.array_equal(codec.decode(old)[0], expected)
    train_latent.main(["--export", str(out / "last.safetensors"), str(bundle)])  # a second refit: one more kept
    assert Bundle.load(bundle).has(f"latent_v{n_kept + 2}") and np.array_equal(codec.decode(old)[0], expected)


@pytest.mark.parametrize("flag, state", [("--adversarial", "discriminators"),
                                         ("--magnitude-adversarial", "magnitude_discriminator")])
def test_adversarial_fine_tune_resumes_discriminators(tmp_path, flag, state):
    """Waveform discriminators, or one on the mag_prior head's magnitude: saved with their optimiser, resumed."""
    from codec.bundle import resolve

    out = tmp_path / "gan"
    args = ["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "4096", "--threads", "1",
            "--save-every", "1", flag, "--init", str(resolve().path)]
    vocoder.main(args + ["--steps", "1"])
    with safe_open(str(out / f"{state}.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "1" and any(k.startswith("opt.") for k in f.keys())
    vocoder.main(args + ["--steps", "2"])
    with safe_open(str(out / f"{state}.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "2"


@pytest.mark.parametrize("flag", [["--magnitude-adversarial"], ["--griffin-lim-loss", "4"], ["--phase-loss", "1"]])
def test_magnitude_losses_need_a_magnitude_head(tmp_path, flag):
    with pytest.raises(SystemExit):  # a fresh vocoder predicts no magnitude relative to a prior
        vocoder.main(["--data", str(DATA), "--out", str(tmp_path / "m"), "--steps", "1", *flag])


def test_phase_loss_scores_the_phase_where_the_speech_is():
    """PhaseLoss: 0 for the target's own phase at any magnitude, grows with a phase error in loud bins,
    ignores errors in silent ones, and its gradient moves the phase."""
    from codec.train.losses import PhaseLoss

    loss = PhaseLoss()
    g = torch.Generator().manual_seed(0)
    x = torch.polar(torch.rand(2, 65, 40, generator=g) + 0.1, 6 * torch.rand(2, 65, 40, generator=g))
    assert loss(3.0 * x, x) < 1e-4
    errors = [loss(x * torch.polar(torch.ones(()), torch.randn(x.shape, generator=g) * s), x) for s in (0.1, 0.5)]
    assert 0.02 < errors[0] < errors[1] < 2
    silent = x.clone()
    silent[:, 30:] = 0
    noise = torch.polar(torch.ones(()), torch.where(torch.arange(65)[:, None] >= 30, 3.0, 0.0))
    assert loss(silent * noise + (silent == 0) * noise, silent) < 1e-4
    phase = torch.zeros(x.shape, requires_grad=True)
    loss(x.abs() * torch.polar(torch.ones(()), x.angle() + 0.3 + phase), x).backward()
    assert phase.grad.abs().sum() > 0


def test_griffin_lim_loss_scores_what_decoding_renders():
    """The --griffin-lim-loss waveform is the decoder's own output, and its gradient reaches the magnitude."""
    from codec.bundle import resolve
    from codec.floors import features

    bundle = resolve()
    voc = vocoder_for(bundle).eval()
    wav = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    feats = features(wav, bundle.mel_config)
    with torch.no_grad():
        mag = voc.spectrum(feats).abs()
        decoded = voc(feats)
    assert torch.allclose(voc.invert(feats, mag, voc.cfg.phase_iterations), decoded, atol=1e-5)
    mag.requires_grad_(True)
    voc.invert(feats, mag, 2).square().sum().backward()
    assert mag.grad is not None and mag.grad.abs().sum() > 0


def test_mag_prior_run_with_dev_check(tmp_path):
    """A new --mag-prior vocoder trains; --dev logs copy synthesis on held-out files."""
    import json

    out = tmp_path / "mp"
    vocoder.main(["--mag-prior", "--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "4096",
                  "--threads", "1", "--steps", "2", "--save-every", "2", "--dev", str(DATA), "--dev-every", "2"])
    assert json.loads((out / "config.json").read_text())["vocoder"]["mag_prior"] is True
    (line,) = (out / "dev.tsv").read_text().splitlines()
    assert line.startswith("2\tpesq=") and "stoi=" in line
    export.main([str(out / "last.safetensors"), str(tmp_path / "b")])
    b = Bundle.load(tmp_path / "b")
    wav = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    data = codec.encode(wav, kbps=3, bundle=b)
    first, _ = codec.decode(data, bundle=b)
    assert np.array_equal(first, codec.decode(data, bundle=b)[0])  # decoding repeats


def test_crops_carry_their_clips_pitch():
    """Cached pitch tracks line up with the crops (crops start on a frame boundary)."""
    from codec import pitch
    from codec.train.data import Corpus

    crops = Corpus([(str(DATA), 1.0)], seed=0).batch(4, 8192)
    assert crops.f0.shape == crops.voiced.shape == (4, 33)
    for wav, f0, voiced in zip(crops.wav, crops.f0, crops.voiced):
        f0_crop, voiced_crop = pitch.estimate(wav)
        inner = slice(4, -4)  # away from the crop's edges, where the analysis windows differ
        assert np.mean(voiced[inner] == voiced_crop[inner]) >= 0.9
        both = voiced[inner] & voiced_crop[inner]
        assert np.allclose(f0[inner][both], f0_crop[inner][both], rtol=0.02)


def test_mag_prior_run_exports_a_griffin_lim_refined_vocoder(tmp_path):
    """--mag-prior trains the magnitude against the STFT; the bundle keeps the phase iterations."""
    import json

    out = tmp_path / "mp"
    vocoder.main(["--mag-prior", "--relative-level", "--phase-iterations", "4", "--data", str(DATA), "--out", str(out),
                  "--batch", "2", "--segment", "4096", "--threads", "1", "--steps", "2", "--save-every", "2"])
    cfg = json.loads((out / "config.json").read_text())["vocoder"]
    assert cfg["mag_prior"] is True and cfg["phase_iterations"] == 4
    export.main([str(out / "last.safetensors"), str(tmp_path / "b")])
    b = Bundle.load(tmp_path / "b")
    wav = np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32)
    out_wav, _ = codec.decode(codec.encode(wav, kbps=3, bundle=b), bundle=b)
    assert out_wav.shape == wav.shape and np.isfinite(out_wav).all()


def test_latent_streams_reach_the_vocoder_as_direct_renders_them():
    """A latent rung of the training ladder: the crop's mel through the bundle's latent encoder and decoder at
    that mode's step (rounded as a latent stream is), with the stream's pitch rows."""
    import torch

    from bitstream.payload import step_size
    from codec.bundle import resolve
    from codec.modes import LATENT_MODES
    from codec.features import LogMel
    from codec.train.data import Corpus

    bundle, mode = resolve(), LATENT_MODES[0]
    crops = Corpus([(str(DATA), 1.0)]).batch(1, 8192)
    mel = LogMel(bundle.mel_config)(crops.tensor())
    with torch.no_grad():
        feats = vocoder.codec_features(crops, mel, np.random.default_rng(3), 0.0, (mode,), latent_bundle=bundle)
        rng = np.random.default_rng(3)
        rng.random(), rng.integers(1)
        step = step_size(mode.typical_g + int(rng.integers(-16, 17)))
        rows = crops.rows(0, mode.decimation, mel.shape[-1])
        z = bundle.latent.encoder(mel)
        expected = latent_decoder(bundle)(torch.round(z / step) * step, rows, step)
    assert torch.allclose(feats[:, :80], expected) and torch.equal(feats[:, 80:], rows)
    assert (feats[:, :80] - mel).abs().mean() > 0.1  # not the clean mel


def test_learned_phase_starts_from_the_excitation_phase_and_stops_at_its_deadline(tmp_path):
    """--learned-phase: no Griffin-Lim; at step 0 the head's phase rows are zero, so the waveform is the
    vocoder's magnitude on the excitation's phase. --minutes 0 stops after one step, saved and resumable."""
    from codec.bundle import resolve
    from codec.train.data import Corpus

    out = tmp_path / "phase"
    vocoder.main(["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "4096", "--threads", "1",
                  "--steps", "1", "--lr", "0", "--init", str(resolve().path), "--learned-phase",
                  "--save-every", "1", "--dev", str(DEV), "--dev-every", "1"])
    (line,) = (out / "dev.tsv").read_text().splitlines()  # the phase alone, and as Griffin-Lim's start
    scores = dict(field.split("=") for field in line.split("\t")[1:])
    assert set(scores) == {"pesq", "stoi", "mel", "pesq_gl24", "stoi_gl24", "mel_gl24"}
    assert float(scores["mel_gl24"]) < float(scores["mel"])
    voc = vocoder_for(Bundle.load(export_addon(out, tmp_path))).eval()
    assert voc.cfg.phase_init == "learned" and voc.cfg.phase_iterations == 0
    feats = torch.randn(1, 82, 20) - 4
    feats[:, 80] = 1.0
    with torch.no_grad():
        spec = voc.spectrum(feats)
        start = voc.excitation_phase(feats, spec.abs())
    assert torch.allclose(spec, spec.abs() * start, atol=1e-4)
    vocoder.main(["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "4096", "--threads", "1",
                  "--steps", "100", "--minutes", "0", "--learned-phase", "--init", str(resolve().path)])
    with safe_open(str(out / "last.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "2"  # resumed at 1, one step, stopped at the deadline
    cached = Corpus([(str(DATA), 1.0)], cache=out / "pitch_cache.npz").tracks  # read back, not re-estimated
    fresh = Corpus([(str(DATA), 1.0)]).tracks
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(cached, fresh))


def export_addon(run: Path, tmp_path: Path) -> Path:
    """A copy of the shipped bundle with ``run``'s vocoder as its direct_vocoder add-on."""
    import shutil

    from codec.bundle import resolve

    bundle = tmp_path / "bundle"
    shutil.copytree(resolve().path, bundle)
    export.main([str(run / "last.safetensors"), str(bundle), "--addon", "direct_vocoder"])
    return bundle


def test_a_run_travels_to_a_burst_and_back(tmp_path):
    """codec.train.burst: the transit copy (no EMA, bf16 moments) resumes without the bundle from the
    run's own config.json; split parts fit the device tool's 16 MiB files and join back bit-exact."""
    from codec.train import burst

    run, away = tmp_path / "run", tmp_path / "away"
    base = ["--data", str(DATA), "--batch", "2", "--segment", "4096", "--threads", "1", "--adversarial"]
    vocoder.main(base + ["--out", str(run), "--steps", "1", "--mag-prior"])
    size = burst.pack(run, away)
    assert size < 0.7 * sum((run / n).stat().st_size for n in ("last.safetensors", "discriminators.safetensors"))
    vocoder.main(base + ["--out", str(away), "--steps", "2"])  # no --mag-prior, no --init: the run's config
    with safe_open(str(away / "last.safetensors"), "pt") as f:
        assert f.metadata()["step"] == "2" and any(k.startswith("ema.") for k in f.keys())
    parts = burst.split(away, tmp_path / "parts", part_bytes=2**20)
    assert len(parts) > 3 and max(p.stat().st_size for p in parts) <= 2**20
    burst.join(tmp_path / "parts", run)
    for name in ("last.safetensors", "discriminators.safetensors", "config.json"):
        assert (run / name).read_bytes() == (away / name).read_bytes()
    assert vocoder_for(Bundle.load(export_addon(run, tmp_path))).cfg.mag_prior



def fake_run(run: Path, **vocoder_kw):
    """A vocoder run's checkpoint without training: ``run/last.safetensors`` (EMA weights, step 5) + its
    config.json → (checkpoint path, its VocoderConfig)."""
    import json
    from dataclasses import asdict

    from safetensors.torch import save_file

    from codec.features import MelConfig
    from codec.vocoder import Vocoder, VocoderConfig

    cfg = VocoderConfig(dim=32, intermediate=64, layers=2, **vocoder_kw)
    run.mkdir(parents=True)
    save_file({f"ema.{k}": v.contiguous() for k, v in Vocoder(cfg).state_dict().items()},
              str(run / "last.safetensors"), metadata={"step": "5"})
    (run / "config.json").write_text(json.dumps({"mel": asdict(MelConfig()), "vocoder": asdict(cfg)}))
    return run / "last.safetensors", cfg


def small_bundle(folder: Path, *addons: str) -> Path:
    """``folder`` with the shipped bundle's id files and ``addons`` (NAME.json + NAME.safetensors), copied."""
    import shutil

    from codec.bundle import resolve

    folder.mkdir()
    for name in ("config.json", "vocoder.safetensors", *(f"{a}{s}" for a in addons for s in (".json", ".safetensors"))):
        shutil.copy(resolve().path / name, folder / name)
    return folder


def test_export_render_sets_decoding_settings_and_refuses_training_ones(tmp_path, capsys):
    """--render KEY=VALUE writes decoding settings (typed as the VocoderConfig field) into the add-on's
    vocoder config; a training setting (dim, n_fft), an unknown key or a bad value is refused, nothing written."""
    from dataclasses import replace

    from codec.bundle import resolve

    ckpt, cfg = fake_run(tmp_path / "run", relative_level=True, mag_prior=True, harmonic_prior=True,
                         phase_iterations=16)
    bundle = small_bundle(tmp_path / "bundle")
    export.main([str(ckpt), str(bundle), "--addon", "direct_vocoder",
                 "--render", "phase_iterations=24", "phase_init=excitation", "quiet_db=30", "harmonic_boost=0.15"])
    b = Bundle.load(bundle)
    assert vocoder_for(b).cfg == replace(cfg, phase_iterations=24, phase_init="excitation", quiet_db=30.0,
                                           harmonic_boost=0.15)
    assert isinstance(vocoder_for(b).cfg.quiet_db, float) and b.id == resolve().id  # add-ons: outside the id
    written = (bundle / "direct_vocoder.json").read_bytes()
    for bad, message in ((["dim=64"], "dim: a training setting"), (["n_fft=512"], "n_fft: a training setting"),
                         (["phase_iterations=24", "speed=2"], "speed: not a VocoderConfig field"),
                         (["phase_iterations=2.5"], "phase_iterations takes an integer"),
                         (["quiet_db=loud"], "quiet_db takes a number"),
                         (["phase_init=random"], "phase_init must be one of"),
                         (["phase_init=learned"], "needs a head trained for it"), (["quiet_db"], "KEY=VALUE"),
                         (["voiced_top_hz=9000"], "voiced_top_hz must be in (0, 7800] Hz")):
        with pytest.raises(SystemExit):
            export.main([str(ckpt), str(bundle), "--addon", "direct_vocoder", "--render", *bad])
        assert message in capsys.readouterr().err
        assert (bundle / "direct_vocoder.json").read_bytes() == written


def test_render_only_rewrites_the_addon_json_alone(tmp_path, capsys):
    """--render-only BUNDLE --addon NAME: no checkpoint; NAME.json's decoding settings change ('none' → null),
    its weights' bytes and the bundle id do not; a training setting or a missing add-on is refused."""
    import json

    from codec.bundle import resolve

    bundle = small_bundle(tmp_path / "bundle", "direct_vocoder", "stream_vocoder")
    weights = (bundle / "direct_vocoder.safetensors").read_bytes()
    before = json.loads((bundle / "direct_vocoder.json").read_text())
    export.main(["--render-only", str(bundle), "--addon", "direct_vocoder", "--render", "quiet_db=none",
                 "phase_iterations=8"])
    assert "quiet_db 30.0 → None, phase_iterations 24 → 8" in capsys.readouterr().out
    after = json.loads((bundle / "direct_vocoder.json").read_text())
    assert after == {**before, "vocoder": {**before["vocoder"], "quiet_db": None, "phase_iterations": 8}}
    b = Bundle.load(bundle)
    assert (vocoder_for(b).cfg.quiet_db, vocoder_for(b).cfg.phase_iterations) == (None, 8)
    assert (bundle / "direct_vocoder.safetensors").read_bytes() == weights and b.id == resolve().id
    for argv, message in ((["--addon", "stream_vocoder", "--render", "causal=false"], "causal: a training setting"),
                          (["--render", "quiet_db=none"], "needs --addon NAME"),
                          (["--addon", "mel2mel_vocoder", "--render", "quiet_db=none"], "no mel2mel_vocoder add-on")):
        with pytest.raises(SystemExit):
            export.main(["--render-only", str(bundle), *argv])
        assert message in capsys.readouterr().err


def test_model_card_render_commands_write_the_shipped_jsons(tmp_path):
    """Each --render-only command in the model card, run on its add-on with those settings at their defaults,
    writes the shipped JSON byte for byte: the shipped decoding settings are what a command writes."""
    import re
    import shlex
    from dataclasses import fields

    from codec.bundle import resolve
    from codec.vocoder import VocoderConfig

    card = (resolve().path / "MODEL_CARD.md").read_text()
    commands = re.findall(r"`python -m codec\.train\.export (--render-only codec/bundles/default [^`]*)`", card)
    assert sorted(shlex.split(c)[3] for c in commands) == ["direct_vocoder", "stream_vocoder"]
    defaults = {f.name: f.default for f in fields(VocoderConfig)}
    for command in commands:
        bundle = tmp_path / shlex.split(command)[3]
        argv = shlex.split(command.replace("codec/bundles/default", str(bundle)))
        name, settings = argv[3], argv[argv.index("--render") + 1:]
        small_bundle(bundle, name)
        shipped = (resolve().path / f"{name}.json").read_bytes()
        reset = [f"{k}={'none' if defaults[k] is None else defaults[k]}" for k in (s.split("=")[0] for s in settings)]
        export.main(["--render-only", str(bundle), "--addon", name, "--render", *reset])
        assert (bundle / f"{name}.json").read_bytes() != shipped
        export.main(argv)
        assert (bundle / f"{name}.json").read_bytes() == shipped


def test_models_first_loaded_in_inference_mode_still_train(tmp_path):
    """Decoding asks for a bundle's models inside torch.inference_mode; a trainer reusing the cached
    models later (e.g. --init) must get normal tensors that autograd can save."""
    import shutil

    from codec.bundle import resolve

    for name in ("config.json", "vocoder.safetensors", "direct_vocoder.json", "direct_vocoder.safetensors"):
        shutil.copy(resolve().path / name, tmp_path / name)
    bundle = Bundle.load(tmp_path)
    with torch.inference_mode():
        voc = vocoder_for(bundle)
    assert not any(t.is_inference() for t in [*voc.parameters(), *voc.buffers()])
