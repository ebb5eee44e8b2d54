"""The latent representation (modes 5, 6 and 8; 7 decodes only) and the lat2lat decoder: rate, ids, layouts,
quality, reproducibility."""
import dataclasses
import shutil

import numpy as np
import pytest
import torch

import bitstream
import codec
from codec.bundle import Bundle, shipped_bundles
from codec.latent import LatentAutoencoder, LatentConfig
from codec.metrics import all_metrics


@pytest.fixture(scope="module")
def streams(clip):
    return {k: codec.encode(clip, 16000, kbps=k, representation="latent") for k in (0.3, 0.6, 1.2)}


def test_rate_and_header(clip, streams):
    seconds = len(clip) / 16000
    for k, data in streams.items():
        real = len(data) * 8 / seconds / 1000
        assert 0.85 * k <= real <= k, (k, real)
        facts = codec.info(data)
        assert facts["representation"] == "latent" and facts["mode_id"] == codec.mode_for(k, "latent").id


def test_stream_names_the_latent_weights(streams):
    """A latent stream's bundle id covers the autoencoder of its mode's layout (16 channels at 12.5 Hz up to
    0.75 kbps, 10 at 20.8 Hz above): the ids differ from each other and from a mel stream's."""
    b = Bundle.load(shipped_bundles()[0])
    assert [codec.mode_for(k).id for k in (0.6, 0.74, 0.75, 1.29, 1.3)] == [6, 6, 8, 8, 2]  # the ladder's latent rungs
    for k, layout in ((0.3, (16, 5)), (1.2, (10, 3))):
        view = b.latent_for(*layout)
        assert view is not None and view.latent_layout == layout
        assert codec.info(streams[k])["bundle_id"] == view.stream_id("latent").hex() != b.id.hex()
    assert codec.info(streams[0.3])["bundle_id"] != codec.info(streams[1.2])["bundle_id"]


def test_mode_and_autoencoder_must_agree(streams):
    """A header whose mode's layout is not that of the autoencoder its id names is malformed, said in words."""
    b = Bundle.load(shipped_bundles()[0])
    c = bitstream.read_file(streams[1.2])
    forged = bitstream.write_file(dataclasses.replace(c.header, bundle_id=b.latent_for(16, 5).stream_id("latent")),
                                  [p.payload for p in c.packets])
    with pytest.raises(bitstream.MalformedError, match="mode 8 codes 10 latent channels per 3 mel frames.*16 per 5"):
        codec.decode(forged)


def test_lat2lat_reads_both_layouts_and_names_the_model_a_bundle_lacks(clip, streams, tmp_path):
    """Each latent generation has its lat2lat (``lat2lat.*`` for the 10-channel one, ``latent_v2_lat2lat.*`` for the
    16-channel one); a bundle without the one a stream needs names the file it lacks."""
    for k in (0.6, 1.2):
        out, _ = codec.decode(streams[k], decoder="lat2lat")
        assert out.shape == clip.shape and np.isfinite(out).all()
    src = shipped_bundles()[0]
    for f in src.iterdir():
        if not f.name.startswith("lat2lat."):
            shutil.copy(f, tmp_path / f.name)
    with pytest.raises(codec.BundleError, match="no lat2lat model for its latent autoencoder latent .lat2lat"):
        codec.decode(streams[1.2], decoder="lat2lat", bundle=tmp_path)


def test_deterministic_decode(clip, streams):
    a, sr = codec.decode(streams[0.6])
    b, _ = codec.decode(streams[0.6])
    assert sr == 16000 and a.shape == clip.shape and np.array_equal(a, b)


def test_lat2lat_quality_floor(clips):
    """Held-out real speech at 0.3 kbps decoded by lat2lat (tests/data mean, lat2lat step 3000:
    STOI 0.630, mel distance 0.943; the direct path's floors are in test_codec.py)."""
    m = [all_metrics(w, codec.decode(codec.encode(w, 16000, kbps=0.3), decoder="lat2lat")[0]) for w in clips]
    stoi, mel = np.mean([x["stoi"] for x in m]), np.mean([x["mel"] for x in m])
    assert stoi >= 0.60 and mel <= 0.98, (stoi, mel)


def test_lat2lat_seeded_and_steps(clip, streams):
    data = streams[0.3]
    a, _ = codec.decode(data, decoder="lat2lat")
    b, _ = codec.decode(data, decoder="lat2lat")
    assert a.shape == clip.shape and np.isfinite(a).all() and np.array_equal(a, b)
    one, _ = codec.decode(data, decoder="lat2lat", steps=1)
    assert not np.array_equal(a, one)
    reseeded = codec.encode(clip, 16000, kbps=0.3, representation="latent", seed=5)
    assert not np.array_equal(a, codec.decode(reseeded, decoder="lat2lat")[0])


def test_silence_stays_silent(clip):
    """A 1 s digital pause inside speech stays silent with both latent decoders."""
    wav = np.concatenate([clip[:32000], np.zeros(16000, np.float32), clip[32000:64000]])
    data = codec.encode(wav, 16000, kbps=0.3, representation="latent")
    pause = slice(32000 + 3200, 48000 - 3200)
    for d in ("direct", "lat2lat"):
        out = codec.decode(data, decoder=d)[0][pause]
        assert 20 * np.log10(np.sqrt(np.mean(out ** 2)) + 1e-9) < -50, d


def test_decoder_and_representation_errors(clip, streams):
    with pytest.raises(ValueError, match="compatible decoders: direct, lat2lat"):
        codec.decode(streams[0.3], decoder="mel2mel")
    with pytest.raises(ValueError, match="compatible decoders: direct, mel2mel"):
        codec.decode(codec.encode(clip, 16000, kbps=0.3, representation="mel"), decoder="lat2lat")
    with pytest.raises(ValueError, match="latent representation covers 0.3–1.3 kbps"):
        codec.encode(clip, 16000, kbps=3, representation="latent")
    with pytest.raises(ValueError, match="representation must be one of mel, latent"):
        codec.encode(clip, 16000, kbps=3, representation="cepstrum")


def test_bundle_without_latent(clip, streams, tmp_path):
    """A bundle without the autoencoder cannot make or read latent streams and says so (a ValueError, like
    every bundle problem); at the rates where the latent is the default it encodes with the mel modes."""
    src = shipped_bundles()[0]
    for f in ("config.json", "vocoder.safetensors"):
        shutil.copy(src / f, tmp_path / f)
    with pytest.raises(codec.BundleError, match="no latent autoencoder") as err:
        codec.encode(clip, 16000, kbps=0.3, representation="latent", bundle=tmp_path)
    assert isinstance(err.value, ValueError) and not isinstance(err.value, OSError)
    with pytest.raises(bitstream.BundleMismatchError, match="without a latent model"):
        codec.decode(streams[0.3], bundle=tmp_path)
    with pytest.warns(codec.BundleWarning, match="no latent autoencoder.*0.3 kbps uses the mel representation"):
        data = codec.encode(clip, 16000, kbps=0.3, bundle=tmp_path)
    facts = codec.info(data)
    assert (facts["representation"], facts["mode_id"]) == ("mel", 0) and facts["kbps"] <= 0.3
    assert codec.decode(data, bundle=tmp_path)[0].shape == clip.shape
    with pytest.raises(codec.BundleError, match="no such bundle folder"):
        codec.encode(clip, 16000, bundle=tmp_path / "nowhere")


def test_bundle_with_one_latent_layout(clip, streams, tmp_path):
    """A bundle that keeps only the 16-channel autoencoder (an earlier release's) writes the 0.6 kbps stream the
    shipped one does, and at 1.2 kbps, where the ladder's latent is the 10-channel one, falls back to the
    cepstrum with a warning; asked for the latent there, it names the layout it lacks."""
    src = shipped_bundles()[0]
    for f in ("config.json", "vocoder.safetensors"):
        shutil.copy(src / f, tmp_path / f)
    old = Bundle.load(src).latent_for(16, 5).latent_name
    for ext in ("json", "safetensors"):
        shutil.copy(src / f"{old}.{ext}", tmp_path / f"latent.{ext}")
    assert codec.encode(clip, 16000, kbps=0.6, representation="latent", bundle=tmp_path) == streams[0.6]
    with pytest.warns(codec.BundleWarning, match="no latent autoencoder of 10 channels at stride 3 .mode 8.: "
                                                 "1.2 kbps uses the mel representation .mode 2."):
        data = codec.encode(clip, 16000, kbps=1.2, bundle=tmp_path)
    assert codec.info(data)["mode_id"] == 2
    with pytest.raises(codec.BundleError, match="10 channels at stride 3"):
        codec.encode(clip, 16000, kbps=1.2, representation="latent", bundle=tmp_path)


def test_damaged_latent_packet_concealed(clip):
    data = bytearray(codec.encode(np.tile(clip, 2), 16000, kbps=0.6, representation="latent"))
    c = bitstream.read_file(bytes(data))
    assert len(c.packets) >= 2
    data[-5] ^= 0xFF  # inside the last packet
    with pytest.warns(codec.DamagedStreamWarning):
        out, _ = codec.decode(bytes(data), strict=False)
    assert np.isfinite(out).all()


def test_noise_injection_training_pass():
    """The training pass: noisy latent → mel of the input's shape, and positive bits that grow as the step shrinks."""
    torch.manual_seed(0)
    model = LatentAutoencoder(LatentConfig(dim=32, intermediate=64, enc_layers=1, dec_layers=1))
    mel = torch.randn(2, 80, 50) - 5
    pitch_rows = torch.zeros(2, 2, 50)
    rec, bits_coarse = model(mel, pitch_rows, torch.tensor([4.0, 4.0]))
    _, bits_fine = model(mel, pitch_rows, torch.tensor([0.25, 0.25]))
    assert rec.shape == mel.shape and (bits_coarse > 0).all() and (bits_fine > bits_coarse).all()
    rec.mean().backward()
    assert model.encoder.embed.weight.grad is not None


def test_latent_rate_blocks_and_other_strides():
    """#33's shapes: blocks at the latent rate and another stride/width train and keep the frame count; the shipped
    layout (no such blocks) has exactly the parameters it had, so its weights load as before."""
    torch.manual_seed(0)
    small = dict(dim=32, intermediate=64, enc_layers=1, dec_layers=1)
    model = LatentAutoencoder(LatentConfig(**small, stride=3, channels=10, enc_low_layers=1, dec_low_layers=2))
    mel = torch.randn(2, 80, 51) - 5
    rec, bits = model(mel, torch.zeros(2, 2, 51), torch.tensor([1.0, 2.0]))
    assert rec.shape == mel.shape and model.encoder(mel).shape == (2, 10, 17) and bits.shape == (2,)
    plain = LatentAutoencoder(LatentConfig(**small)).state_dict()
    assert not any(".low." in k for k in plain)
    assert set(plain) < set(LatentAutoencoder(LatentConfig(**small, dec_low_layers=1)).state_dict())


def test_latent_trainer_shape_options():
    from codec.train.latent import latent_config

    class Parser:
        def error(self, message):
            raise SystemExit(message)

    assert latent_config(["stride=3", "channels=10"], Parser()) == LatentConfig(stride=3, channels=10)
    with pytest.raises(SystemExit, match="KEY=INTEGER"):
        latent_config(["strides=3"], Parser())
