"""Codec-level golden vectors keep decoding to the same integer symbols (and audio, with their bundle)."""
import json
from pathlib import Path

import numpy as np
import pytest

import codec

from vectors.make_codec_vectors import describe

VECTORS = Path(__file__).parent / "vectors"
DOCS = [pytest.param(js, id=js.stem) for js in sorted(VECTORS.glob("v*_codec_*.json"))]


def test_codec_vectors_present():
    assert len(DOCS) >= 2


@pytest.mark.parametrize("js", DOCS)
def test_symbols_unchanged(js):
    doc = json.loads(js.read_text())
    now = describe((VECTORS / doc["file"]).read_bytes())
    assert now["packets"] == doc["packets"]
    assert {k: now["header"][k] for k in doc["header"] if k != "errors"} == \
           {k: v for k, v in doc["header"].items() if k != "errors"}


@pytest.mark.parametrize("js", DOCS)
def test_decodes_with_its_bundle(js):
    """Files written by every earlier release decode: the bundle each names is still shipped
    (superseded weights stay shipped: in a bundle folder of their own, or a retrained latent autoencoder's
    predecessor as a latent generation of its bundle, ``latent_v1.*``)."""
    doc = json.loads(js.read_text())
    data = (VECTORS / doc["file"]).read_bytes()
    out, sr = codec.decode(data)
    assert sr == 16000 and len(out) == doc["header"]["num_samples"] and np.isfinite(out).all()


@pytest.mark.parametrize("name", ["v1_stream_3000bps", "v1_stream_32ms_3000bps", "v1_stream_64ms_1200bps",
                                  "v1_stream_64ms_3000bps", "v2_stream_32ms_3000bps", "v2_stream_64ms_1200bps"])
def test_stream_vector_unchanged(name):
    """Raw packets of each streaming release keep decoding to the same symbols, and to audio."""
    from vectors.make_stream_vectors import STEMS, describe, split

    stem = next(s for s in STEMS if s.name == name)
    packet_ms = STEMS[stem][0]
    doc = json.loads(stem.with_suffix(".json").read_text())
    packets = split(stem.with_suffix(".pkts").read_bytes())
    assert describe(packets) == doc["packets"]
    dec = codec.StreamDecoder()
    out = np.concatenate([dec.push(p) for p in packets] + [dec.flush()])
    frames = packet_ms // 16 * len(packets)
    assert dec.lost == 0 and len(out) == (frames - 1) * 256 and np.isfinite(out).all()
