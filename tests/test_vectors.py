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
