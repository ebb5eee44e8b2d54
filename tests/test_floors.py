"""Quality floors (copy synthesis, Griffin-Lim) and the per-speaker grouping of codec.evaluate."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from codec import evaluate as ev
from codec.features import LogMel, MelConfig, mel_filterbank
from codec.floors import copy_synthesis, features, griffin_lim
from codec.inversion import mel_to_magnitude, minimum_phase
from codec.metrics import stoi

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def clip():
    wav, _ = sf.read(DATA / "LJ001-0028.flac", dtype="float32")
    return wav[:32000]


def test_mel_inverse_is_nonnegative_and_consistent(clip):
    cfg = MelConfig()
    mel = LogMel(cfg)(torch.from_numpy(clip)[None])[0]
    mag = mel_to_magnitude(mel, torch.from_numpy(mel_filterbank(cfg)), iterations=200)
    assert mag.shape == (cfg.n_fft // 2 + 1, mel.shape[-1]) and (mag >= 0).all()
    rebuilt = torch.log((torch.from_numpy(mel_filterbank(cfg)) @ mag).clamp(min=cfg.floor))
    assert (rebuilt - mel).abs().mean() < 0.05  # nats: the filterbank sees the same mel again


def test_griffin_lim_is_intelligible(clip):
    out = griffin_lim(clip, iterations=30)
    assert out.shape == clip.shape and out.dtype == np.float32
    assert stoi(clip, out) > 0.85


def test_copy_synthesis_uses_the_clips_own_features(clip):
    from codec.bundle import resolve
    from codec.decoders import vocoder_for

    b = resolve()
    feats = features(clip, b.mel_config)
    assert feats.shape == (1, b.mel_config.n_mels + 2, len(clip) // 256 + 1)
    assert set(np.unique(feats[0, -2].numpy())) <= {0.0, 1.0}  # voicing row
    out = copy_synthesis(clip, vocoder_for(b), b.mel_config)
    assert len(out) == (feats.shape[-1] - 1) * 256 and np.isfinite(out).all()


def test_speaker_groups_from_index(tmp_path):
    """The team's layout: real/index.tsv names each file's corpus, speaker and (children) age."""
    rows = [("dev/librispeech/533/a.flac", "librispeech", "533", ""),
            ("dev/speechocean762/1042/b.flac", "speechocean762", "1042", "age=7 (child)"),
            ("dev/speechocean762/2252/c.flac", "speechocean762", "2252", "age=20 (adult)")]
    lines = ["path\tsplit\tcorpus\tspeaker\tgender\tseconds\tlicence\tsource\tnote"]
    for path, corpus, speaker, note in rows:
        (tmp_path / path).parent.mkdir(parents=True)
        sf.write(tmp_path / path, np.zeros(1600), 16000)
        lines.append(f"{path}\tdev\t{corpus}\t{speaker}\tF\t0.1\tx\tx\t{note}")
    (tmp_path / "index.tsv").write_text("\n".join(lines) + "\n")
    assert [ev.speaker_of(tmp_path / p) for p, *_ in rows] == [
        ("533", "native adults"), ("1042", "non-native children"), ("2252", "non-native adults")]
    assert ev.speaker_of(DATA / "LJ001-0028.flac") == ("data", "all")  # no index: folder name
    assert len(ev.dev_files(tmp_path / "dev", per_speaker=1)) == 3
    # the benches' selection: a name pattern takes every match, else the first per speaker
    assert [p.name for p in ev.select_files(tmp_path / "dev", "^[ab]", per_speaker=1)] == ["a.flac", "b.flac"]
    assert len(ev.select_files(tmp_path / "dev", per_speaker=1)) == 3


def test_group_table():
    means = {"pesq": 2.0, "stoi": 0.9, "distillmos": 3.1}
    rows = [{"speaker": "a", "group": "children"}, {"speaker": "b", "group": "adults"}]
    results = [{"system": "x", "groups": {"children": means, "adults": means}, "rows": rows, **means}]
    lines = ev.group_table(results).splitlines()
    assert lines[0] == "| system (WB-PESQ / STOI / DistillMOS) | children (1 speaker) | adults (1 speaker) |"
    assert lines[2] == "| x | 2.00 / 0.900 / 3.10 | 2.00 / 0.900 / 3.10 |"


def test_minimum_phase_of_a_one_pole_filter():
    """The phase rebuilt from log|H| of 1 / (1 − 0.8 z⁻¹), a minimum-phase filter, is its true phase."""
    n_fft = 1024
    h = 1 / (1 - 0.8 * np.exp(-1j * np.linspace(0, np.pi, n_fft // 2 + 1)))
    log_mag = torch.from_numpy(np.log(np.abs(h)))[None, :, None].repeat(1, 1, 3)
    phase = minimum_phase(log_mag, n_fft, lifter=n_fft // 2)
    assert phase.shape == log_mag.shape
    assert np.allclose(phase[0, :, 1].numpy(), np.angle(h), atol=1e-3)
