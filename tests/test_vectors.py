"""Frozen golden vectors: every ``tests/vectors/v*_*.json`` of a known kind must keep decoding
bit-exactly. Container vectors are checked here; other kinds (e.g. "codec") are checked by
their own layer's tests and skipped."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from bitstream import Header, RangeDecoder, RangeEncoder, info, read_file, write_file

VECTORS = Path(__file__).parent / "vectors"


def _docs(kind: str) -> list:
    out = []
    for js in sorted(VECTORS.glob("v*_*.json")):
        doc = json.loads(js.read_text())
        if doc.get("kind") == kind:
            out.append(pytest.param(js, doc, id=js.stem))
    return out


CONTAINERS = _docs("container")


def test_container_vectors_present():
    assert any(p.id == "v1_container" for p in CONTAINERS)
    for ldc in VECTORS.glob("v1_*.ldc"):  # a v1 .ldc without JSON is a forgotten vector
        assert ldc.with_suffix(".json").exists(), ldc.name


def _freqs(doc: dict, seg: dict) -> np.ndarray:
    return np.array(seg["rows"] if "rows" in seg else doc["tables"][seg["table"]], dtype=np.int64)


@pytest.mark.parametrize("js, doc", CONTAINERS)
def test_container_vector(js, doc):
    data = (js.parent / doc["file"]).read_bytes()
    assert len(data) == doc["file_bytes"] and hashlib.sha256(data).hexdigest() == doc["sha256"]
    c = read_file(data)
    h = {**doc["header"], "bundle_id": bytes.fromhex(doc["header"]["bundle_id"])}
    assert c.header == Header(**h) and data[4] == doc["format_version"]
    assert len(c.packets) == len(doc["packets"])
    for p, rec in zip(c.packets, doc["packets"]):
        assert (p.index, p.seq, p.payload.hex()) == (rec["index"], rec["seq"], rec["payload_hex"])
        dec, enc = RangeDecoder(p.payload), RangeEncoder()
        for seg in rec["segments"]:
            freqs, symbols = _freqs(doc, seg), np.array(seg["symbols"], dtype=np.int64)
            assert np.array_equal(dec.decode(freqs, n=len(symbols), offset=seg["offset"]), symbols)
            enc.encode(symbols, freqs, seg["offset"])
        assert enc.finish() == p.payload  # the encoder is frozen too
    assert write_file(c.header, [p.payload for p in c.packets]) == data  # and the writer
    assert info(data)["packets_ok"] == len(doc["packets"])



TORCH_FREE = r"""
import json, sys
from pathlib import Path
import numpy as np
import bitstream
from bitstream import entropy, groups, modes, payload, pitch  # noqa: F401  the whole format layer
from vectors.make_codec_vectors import describe
from vectors.make_stream_vectors import STEMS, describe as describe_packets, split

vectors, checked = Path(sys.argv[1]), 0
for js in sorted(vectors.glob("v*_codec_*.json")):
    doc = json.loads(js.read_text())
    data = (vectors / doc["file"]).read_bytes()
    assert describe(data)["packets"] == doc["packets"]  # integers, per packet
    _, g = bitstream.read_groups(data)
    assert g.values.dtype == np.float32 and g.values.shape == g.q.shape and np.isfinite(g.values).all()
    checked += 1
for stem in STEMS:
    doc = json.loads(stem.with_suffix(".json").read_text())
    assert describe_packets(split(stem.with_suffix(".pkts").read_bytes())) == doc["packets"]
    checked += 1
assert checked >= 5, checked
assert "torch" not in sys.modules, "the format layer imported torch"
"""


def test_format_layer_parses_and_dequantises_without_torch():
    """``bitstream`` alone reads every codec and stream golden vector down to the integers the JSON
    pins and their dequantised values, and never imports torch (in a fresh interpreter)."""
    import os
    import subprocess
    import sys

    root = str(VECTORS.parents[1])  # this checkout's bitstream, whatever package is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    subprocess.run([sys.executable, "-c", TORCH_FREE, str(VECTORS)], check=True, cwd=VECTORS.parent, env=env)
