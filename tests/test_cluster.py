"""Bulk transcoding on a local Dask cluster of two worker processes (``ldcodec ... --scheduler``)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import bitstream
import codec
from codec.audio import load
from cli_run import run

distributed = pytest.importorskip("distributed")
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def scheduler():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=40) as cluster:
        yield cluster.scheduler_address


def test_folder_tree_round_trip_on_two_workers(scheduler, tmp_path):
    src = tmp_path / "archive"
    for i, clip in enumerate(sorted(DATA.glob("*.flac"))):
        (src / f"talk{i}").mkdir(parents=True)
        shutil.copy(clip, src / f"talk{i}" / clip.name)
    (src / "talk0" / "broken.wav").write_bytes(b"RIFF not really audio")

    code, out, err = run("encode", src, "-o", tmp_path / "ldc", "--kbps", 1.5, "--scheduler", scheduler)
    assert code == 1 and "broken.wav" in err and err.count("ldcodec: error:") == 1  # the bad file only
    encoded = sorted((tmp_path / "ldc").rglob("*.ldc"))
    assert [p.relative_to(tmp_path / "ldc").parent.name for p in encoded] == ["talk0", "talk1"]
    for ldc in encoded:  # same bytes as encoding here: the cluster runs the same code
        flac = src / ldc.parent.name / ldc.with_suffix(".flac").name
        assert ldc.read_bytes() == codec.encode(*load(flac), kbps=1.5)
    assert not list((tmp_path / "ldc").rglob("*.part"))

    code, out, _ = run("encode", src, "-o", tmp_path / "ldc", "--kbps", 1.5, "--scheduler", scheduler, "--resume")
    assert out.count("already done") == 2

    code, out, err = run("decode", tmp_path / "ldc", "-o", tmp_path / "wav", "--scheduler", scheduler)
    assert code == 0, err
    for ldc in encoded:
        wav, sr = load(tmp_path / "wav" / ldc.parent.name / ldc.with_suffix(".wav").name)
        assert sr == 16000 and len(wav) == bitstream.info(ldc.read_bytes())["num_samples"]


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    code, _, err = run("encode", DATA, "-o", tmp_path, "--scheduler", "tcp://127.0.0.1:9")
    assert code != 0 and "scheduler" in err and "Traceback" not in err
