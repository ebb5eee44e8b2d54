"""Training recipe: runs, checkpoints without pickle, resumes, exports a loadable bundle."""
from pathlib import Path

import numpy as np
from safetensors import safe_open

import codec
from codec.bundle import Bundle
from codec.train import export, vocoder

DATA = Path(__file__).parent / "data"


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
    shipped = resolve().vocoder.state_dict()
    tuned = Bundle.load(tmp_path / "b").vocoder.state_dict()
    # lr 0: the weights are the shipped ones (up to the fp16 storage of bundles)
    assert all(np.allclose(shipped[k], tuned[k], atol=1e-3) for k in shipped)
