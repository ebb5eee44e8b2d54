"""Noisy, reverberant training (codec.train.augment) and the noisy dev set (codec.noisy_dev)."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from codec import noisy_dev
from codec.evaluate import System, evaluate, table
from codec.train import augment as aug
from codec.train.augment import AugmentConfig, Augmenter
from codec.train.data import Corpus

DATA = Path(__file__).parent / "data"
SHARED_NOISE = Path(__file__).resolve().parents[2] / "shared/data/noise"
SR = 16000


def speech_crops(n, samples, rng):
    """Voices for babble: stretches of a test clip."""
    clip = sf.read(DATA / "LJ001-0028.flac", dtype="float32")[0]
    starts = rng.integers(0, len(clip) - samples, n)
    return np.stack([clip[s:s + samples] for s in starts])


@pytest.fixture(scope="module")
def noise_dir(tmp_path_factory):
    """A tiny noise folder: 4 recordings and 4 rooms (no index.tsv: categories are the folders)."""
    root = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    for i in range(4):
        (root / "noise" / f"src{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / "rir" / "rooms").mkdir(parents=True, exist_ok=True)
        hum = np.sin(2 * np.pi * (50 + 40 * i) * np.arange(SR) / SR) + 0.3 * rng.standard_normal(SR)
        sf.write(root / "noise" / f"src{i % 2}" / f"n{i}.wav", (0.1 * hum).astype(np.float32), SR)
        sf.write(root / "rir" / "rooms" / f"r{i}.wav", 0.5 * aug.simulated_rir(rng, (0.1, 0.3)), SR,
                 subtype="FLOAT")
    (root / "LICENSES.md").write_text("# test noise: made here, no licence needed\n")
    return root


@pytest.fixture(scope="module")
def dev_dir(tmp_path_factory):
    """Two speakers with two 1.5 s clips each (cut from the test clips)."""
    root = tmp_path_factory.mktemp("dev")
    for speaker, clip in (("a", "LJ001-0028.flac"), ("b", "dev/2033-164914-0004.flac")):
        wav = sf.read(DATA / clip, dtype="float32")[0]
        (root / speaker).mkdir()
        for k in range(2):
            sf.write(root / speaker / f"{speaker}{k}.flac", wav[k * 24000:k * 24000 + 24000], SR)
    return root


def measured_snr(clean, noisy):
    return 10 * np.log10(aug.active_level(clean) / np.mean((noisy.astype(np.float64) - clean) ** 2))


@pytest.mark.parametrize("kind", ["real", "babble", "white", "pink", "brown", "nonstationary"])
@pytest.mark.parametrize("snr", [0.0, 10.0])
def test_snr_is_what_was_asked(noise_dir, kind, snr):
    clean = speech_crops(3, 8000, np.random.default_rng(1)) * 3  # loud: the 0 dB mixes are scaled down
    a = Augmenter(AugmentConfig(noise_p=1, reverb_p=0, snr=(snr, snr), kinds={kind: 1}), noise_dir,
                  speech=speech_crops, seed=2)
    noisy, target = a(clean)
    assert noisy.shape == target.shape == clean.shape and noisy.dtype == np.float32
    assert np.abs(noisy).max() <= 0.99 + 1e-6
    for x, y in zip(target, noisy):
        assert measured_snr(x, y) == pytest.approx(snr, abs=0.05)


def test_mix_at_snr_of_a_steady_tone():
    """For speech that never pauses the active level is the plain mean power."""
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR).astype(np.float32)
    noisy = aug.mix(tone, aug.coloured_noise(SR, 1.0, np.random.default_rng(0)), 5.0)
    assert 10 * np.log10(np.mean(tone ** 2) / np.mean((noisy - tone) ** 2)) == pytest.approx(5.0, abs=0.05)


def test_reverb_keeps_length_and_alignment(noise_dir):
    clean = speech_crops(4, 8192, np.random.default_rng(3))
    a = Augmenter(AugmentConfig(noise_p=0, reverb_p=1, real_rir_p=0.5), noise_dir, seed=0)
    assert len(a.rirs) == 3 and all(r[0] == 1.0 for r in a.rirs)  # the train split's rooms, direct path first
    noisy, target = a(clean)
    assert noisy.shape == clean.shape
    for x, y in zip(target, noisy):
        lags = np.arange(-50, 51)
        xc = [np.dot(np.roll(x, k), y) for k in lags]
        assert lags[int(np.argmax(xc))] == 0  # the room adds a tail, no delay
    rir = aug.simulated_rir(np.random.default_rng(0), (0.4, 0.4))
    assert rir[0] == 1 and len(rir) == int(0.4 * SR)


def test_seeded_and_deterministic(noise_dir):
    clean = speech_crops(4, 4096, np.random.default_rng(4))

    def make(seed):
        return Augmenter(AugmentConfig(noise_p=1, reverb_p=0.5), noise_dir, speech=speech_crops, seed=seed)

    one, two, other = make(5)(clean)[0], make(5)(clean)[0], make(6)(clean)[0]
    assert np.array_equal(one, two) and not np.array_equal(one, other)
    rng = np.random.default_rng(9)  # a caller's generator (the corpus passes its own)
    assert np.array_equal(make(0)(clean, np.random.default_rng(9))[0], make(1)(clean, rng)[0])


def test_train_and_dev_splits_are_disjoint(noise_dir):
    for folder in [noise_dir] + ([SHARED_NOISE] if (SHARED_NOISE / "index.tsv").exists() else []):
        (train_n, train_r), (dev_n, dev_r) = aug.split(folder, "train"), aug.split(folder, "dev")
        assert dev_n and dev_r and train_n and train_r
        assert not set(train_n) & set(dev_n) and not set(train_r) & set(dev_r)
        everything = aug._catalogue(Path(folder), "noise") + aug._catalogue(Path(folder), "rir")
        assert len(train_n) + len(dev_n) + len(train_r) + len(dev_r) == len(everything)
    with pytest.raises(ValueError):
        aug.split(noise_dir, "test")


def test_corpus_batch_gives_noisy_input_and_clean_target(noise_dir):
    corpus = Corpus([(str(DATA), 1.0)], seed=0)
    plain = corpus.batch(2, 4096)
    assert plain.clean is None and plain.tensor(clean=True).data_ptr() == plain.tensor().data_ptr()
    corpus.augmenter = Augmenter(AugmentConfig(noise_p=1, reverb_p=0.5), noise_dir, speech=corpus.speech)
    crops = corpus.batch(2, 4096)
    assert crops.clean.shape == crops.wav.shape and not np.allclose(crops.clean, crops.wav)
    assert crops.f0.shape == plain.f0.shape  # the clean clip's pitch track
    assert np.array_equal(crops.tensor(clean=True).numpy(), crops.clean)


def test_noisy_dev_set_is_deterministic(dev_dir, noise_dir, tmp_path):
    rows = noisy_dev.build(dev_dir, tmp_path / "one", noise_dir, seed=3)
    noisy_dev.build(dev_dir, tmp_path / "two", noise_dir, seed=3)
    noisy_dev.build(dev_dir, tmp_path / "other", noise_dir, seed=4)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert len(rows) == 4 * len(noisy_dev.SNRS) and len(files) == len(rows) + 4  # + index, build, 2 notices
    for f in files:
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes(), f
    assert (tmp_path / "one" / "index.tsv").read_bytes() != (tmp_path / "other" / "index.tsv").read_bytes()
    train_noise = {p.relative_to(noise_dir).as_posix() for p in sum(aug.split(noise_dir, "train"), [])}
    for r in rows:
        wav = sf.read(tmp_path / "one" / r["path"], dtype="float32")[0]
        assert len(wav) == sf.info(dev_dir / r["clean"]).frames and r["path"].startswith(r["clean"][:2])
        assert r["noise_file"] not in train_noise and r["rir"] not in train_noise  # judged on dev noise only
        if r["noise"] == "babble":  # never the clip's own speaker
            assert all(not v.startswith(r["clean"][:2]) for v in r["noise_file"].split(" + "))
    chosen = noisy_dev.select(tmp_path / "one", per_speaker=1)
    assert len(chosen) == 2 * len(noisy_dev.SNRS) and all(r["clean"].exists() for r in chosen)


def test_evaluate_scores_against_the_clean_clip_too(dev_dir, noise_dir, tmp_path):
    noisy_dev.build(dev_dir, tmp_path, noise_dir, snrs=(0,))
    chosen = noisy_dev.select(tmp_path, per_speaker=1)[:1]
    clean = {r["path"]: r["clean"] for r in chosen}
    results = evaluate([r["path"] for r in chosen], systems=[System("input", "floor", run=lambda w: (w, None))],
                       clean_of=clean.get, group_of=lambda p: ("s", "0 dB"))
    r = results[0]
    assert r["stoi"] == pytest.approx(1.0, abs=1e-3) and r["stoi_clean"] < 0.99
    assert "STOI clean" in table(results) and list(r["groups"]) == ["0 dB"]


def test_trainer_takes_the_noise_options(noise_dir, tmp_path):
    from codec.train import loop, mel2mel

    args = loop.parser("", out="x", steps=1, segment=4096).parse_args(["--noise", str(noise_dir)])
    assert aug.from_args(args).noise_p == AugmentConfig.noise_p and tuple(args.snr) == AugmentConfig.snr
    args = loop.parser("", out="x", steps=1, segment=4096).parse_args([])
    assert aug.from_args(args) is None  # off by default
    args = loop.parser("", out="x", steps=1, segment=4096).parse_args(["--reverb-p", "0.5", "--snr", "5", "10"])
    assert aug.from_args(args).reverb_p == 0.5 and aug.from_args(args).noise_p == 0
    mel2mel.main(["--data", str(DATA), "--out", str(tmp_path / "m"), "--batch", "2", "--segment", "4096",
                  "--threads", "1", "--steps", "1", "--noise", str(noise_dir), "--noise-p", "1", "--snr", "0", "10"])
    assert (tmp_path / "m" / "last.safetensors").exists()
