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


def test_relative_paths_reach_the_workers(scheduler, tmp_path, monkeypatch):
    """Workers have their own working folder: relative paths are made absolute before they travel."""
    (tmp_path / "in").mkdir()
    shutil.copy(DATA / "LJ001-0028.flac", tmp_path / "in" / "a.flac")
    monkeypatch.chdir(tmp_path)  # the workers started elsewhere (the test session's folder)
    code, out, err = run("encode", "in", "-o", "out", "--kbps", 1.5, "--scheduler", scheduler)
    assert code == 0, err
    assert (tmp_path / "out" / "a.ldc").read_bytes() == codec.encode(DATA / "LJ001-0028.flac", kbps=1.5)


def test_python_api(scheduler, tmp_path):
    """codec.cluster.encode_files / decode_files: folders and files in, one outcome per file, resumable."""
    import codec.cluster

    src = tmp_path / "talks"
    src.mkdir()
    for clip in sorted(DATA.glob("*.flac")):
        shutil.copy(clip, src / clip.name)
    (src / "broken.wav").write_bytes(b"RIFF not really audio")
    with distributed.Client(scheduler) as client:
        outcomes = codec.cluster.encode_files(client, [src], tmp_path / "ldc", kbps=1.2)
        assert sorted(Path(o.source).name for o in outcomes if o.error) == ["broken.wav"]
        assert sum(o.result is not None for o in outcomes) == 2
        for clip in sorted(DATA.glob("*.flac")):
            assert (tmp_path / "ldc" / clip.with_suffix(".ldc").name).read_bytes() == codec.encode(clip, kbps=1.2)
        single = codec.cluster.encode_files(client, [DATA / "LJ001-0028.flac"], tmp_path / "one", kbps=1.2)
        assert single[0].error is None and (tmp_path / "one" / "LJ001-0028.ldc").is_file()
        with pytest.raises(ValueError, match="made with other settings"):  # before any work, as the CLI
            codec.cluster.encode_files(client, [src], tmp_path / "ldc", kbps=3, resume=True)

        outcomes = codec.cluster.decode_files(client, [tmp_path / "ldc"], tmp_path / "wav")
        assert all(o.error is None for o in outcomes) and len(outcomes) == 2
        for ldc in sorted((tmp_path / "ldc").glob("*.ldc")):
            wav, sr = load(tmp_path / "wav" / ldc.with_suffix(".wav").name)
            assert sr == 16000 and len(wav) == codec.info(ldc)["num_samples"]
        again = codec.cluster.decode_files(client, [tmp_path / "ldc"], tmp_path / "wav", resume=True)
        assert all(o.result.endswith("already done") for o in again)
