"""The mel2mel flow-matching decoder: reproducible, steps knob, silence stays silent, training recipe."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import codec
from codec import mel2mel
from codec.bundle import Bundle, shipped_bundles
from codec.metrics import all_metrics, mel_distance
from codec.train import mel2mel as train_mel2mel

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def stream(clip):
    return codec.encode(clip, 16000, kbps=1.2, representation="mel")


def test_reproducible_and_seeded_from_header(clip, stream):
    a, _ = codec.decode(stream, decoder="mel2mel")
    b, _ = codec.decode(stream, decoder="mel2mel")
    assert a.shape == clip.shape and np.isfinite(a).all()
    assert np.array_equal(a, b)  # same stream, same machine: same samples
    reseeded, _ = codec.decode(codec.encode(clip, 16000, kbps=1.2, representation="mel", seed=7), decoder="mel2mel")
    assert not np.array_equal(a, reseeded)


def test_steps_knob(clip, stream):
    one, _ = codec.decode(stream, decoder="mel2mel", steps=1)
    eight, _ = codec.decode(stream, decoder="mel2mel", steps=8)
    assert not np.array_equal(one, eight)
    for out in (one, eight):  # any step count decodes to speech near the original
        assert mel_distance(clip, out) < 1.0
    with pytest.raises(ValueError, match="steps"):
        codec.decode(stream, decoder="mel2mel", steps=0)


def test_quality_floor(clips):
    """Held-out real speech at 1.2 kbps (tests/data mean, mel2mel step 3500 with its fine-tuned
    vocoder: STOI 0.756, mel distance 0.592)."""
    m = [all_metrics(w, codec.decode(codec.encode(w, 16000, kbps=1.2, representation="mel"), decoder="mel2mel")[0])
         for w in clips]
    stoi, mel = np.mean([x["stoi"] for x in m]), np.mean([x["mel"] for x in m])
    assert stoi >= 0.72 and mel <= 0.64, (stoi, mel)


def test_silence_stays_silent(clip):
    """A 1 s digital pause inside speech: mel2mel must not invent sound there (no louder than direct)."""
    gap = 16000
    wav = np.concatenate([clip[:32000], np.zeros(gap, np.float32), clip[32000:64000]])
    data = codec.encode(wav, 16000, kbps=1.2, representation="mel")
    pause = slice(32000 + 3200, 32000 + gap - 3200)  # away from the edges the vocoder smears
    rms = {d: np.sqrt(np.mean(codec.decode(data, decoder=d)[0][pause] ** 2)) for d in ("direct", "mel2mel")}
    assert 20 * np.log10(rms["mel2mel"] + 1e-9) < -50, rms
    assert rms["mel2mel"] <= 2 * rms["direct"] + 1e-4, rms


def test_bundle_without_mel2mel_is_clear_error(clip, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(shipped_bundles()[0], bare)
    (bare / "mel2mel.safetensors").unlink()
    data = codec.encode(clip[:16000], 16000, kbps=3, bundle=bare)
    assert Bundle.load(bare).id == Bundle.load(shipped_bundles()[0]).id  # add-ons are not in the id
    with pytest.raises(ValueError, match="no mel2mel model"):
        codec.decode(data, decoder="mel2mel", bundle=bare)


def test_train_resume_export(tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "8192", "--threads", "1",
            "--save-every", "2"]
    train_mel2mel.main(args + ["--steps", "2", "--sigma", "0.3", "--dev", str(DATA / "dev"), "--dev-every", "2"])
    assert "mel2mel=" in (out / "dev.tsv").read_text() and "direct=" in (out / "dev.tsv").read_text()
    train_mel2mel.main(args + ["--steps", "3", "--sigma", "0.3"])  # resumes
    bundle = tmp_path / "bundle"
    shutil.copytree(shipped_bundles()[0], bundle)
    train_mel2mel.main(["--export", str(out / "last.safetensors"), str(bundle)])
    model = mel2mel.load(Bundle.load(bundle))
    assert model.cfg.sigma == 0.3  # the run's prior, kept in the exported config
    cond = torch.zeros(1, 85, 20)
    assert model.sample(cond, steps=2, generator=torch.Generator().manual_seed(0)).shape == (1, 80, 20)


def test_every_run_exports_one_way(tmp_path):
    """A trainer's --export is codec.train.export's: the same files from either command, by what the run's
    config.json says it trained; a run of another kind, or vocoder options on a mel2mel run, are refused."""
    from codec.train import export
    from codec.train import lat2lat as train_lat2lat

    out = tmp_path / "run"
    train_mel2mel.main(["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "8192", "--threads",
                        "1", "--steps", "1"])
    ckpt = out / "last.safetensors"
    train_mel2mel.main(["--export", str(ckpt), str(tmp_path / "a")])
    export.main([str(ckpt), str(tmp_path / "b")])
    for name in ("mel2mel.json", "mel2mel.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not (tmp_path / "b" / "vocoder.safetensors").exists()
    for main, argv in ((train_lat2lat.main, ["--export", str(ckpt), str(tmp_path / "c")]),
                       (export.main, [str(ckpt), str(tmp_path / "c"), "--addon", "direct_vocoder"]),
                       (export.main, [str(ckpt), str(tmp_path / "c"), "--render", "quiet_db=30"])):
        with pytest.raises(SystemExit):
            main(argv)
    assert not (tmp_path / "c").exists()


def test_a_run_can_start_from_a_bundles_mel2mel(tmp_path):
    """--init BUNDLE: step 0 is that bundle's mel2mel (weights and config); a bundle without one is refused."""
    out = tmp_path / "run"
    shipped = mel2mel.load(Bundle.load(shipped_bundles()[0]))
    train_mel2mel.main(["--data", str(DATA), "--out", str(out), "--batch", "2", "--segment", "8192", "--threads",
                        "1", "--steps", "1", "--lr", "0", "--init", str(shipped_bundles()[0]), "--sigma", "0.3"])
    train_mel2mel.main(["--export", str(out / "last.safetensors"), str(tmp_path / "b")])
    import json

    from safetensors.torch import load_file

    state = {k: v.float() for k, v in shipped.state_dict().items()}
    exported = load_file(str(tmp_path / "b" / "mel2mel.safetensors"))
    assert set(exported) == set(state)
    assert all(torch.allclose(exported[k].float(), state[k], atol=1e-3) for k in state)
    assert json.loads((tmp_path / "b" / "mel2mel.json").read_text())["mel2mel"]["sigma"] == shipped.cfg.sigma
    bare = tmp_path / "bare"
    shutil.copytree(shipped_bundles()[0], bare)
    for f in bare.glob("mel2mel.*"):
        f.unlink()
    with pytest.raises(SystemExit, match="no mel2mel"):
        train_mel2mel.main(["--data", str(DATA), "--out", str(tmp_path / "x"), "--steps", "1", "--init", str(bare)])
