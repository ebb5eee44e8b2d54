import numpy as np
from hypothesis import given, settings, strategies as st

from bitstream.entropy import MAX_RESIDUAL, N_TABLES, bank_digest, table_bank
from bitstream.payload import decode_packet, encode_packet
from bitstream.pitch import N_LEVELS

# The bitstream depends on these exact integers: changing them breaks every stored file.
BANK_SHA256 = "f886535338a498c4dabf7722e53e8dc21d38a444a7e10aaed2949f071e0e6b81"


def test_table_bank_is_pinned():
    tables = table_bank()
    assert tables.shape == (N_TABLES, 2 * MAX_RESIDUAL + 1) and (tables > 0).all()
    assert bank_digest() == BANK_SHA256


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 48), st.integers(0, 255), st.integers(0, 2**31))
def test_mel_packet_round_trip(groups, coefs, g, seed):
    rng = np.random.default_rng(seed)
    scale = rng.choice([0.3, 3, 30, 300])
    q = np.round(rng.laplace(0, scale, size=(groups, coefs))).astype(np.int64)
    voiced = rng.random(groups) < 0.6
    pitch = rng.integers(0, N_LEVELS, size=groups)
    payload, rec = encode_packet(q, g, pitch, voiced)
    out, g2, pitch2, voiced2 = decode_packet(payload, groups, coefs)
    assert g2 == g and np.array_equal(out, rec)
    assert np.array_equal(voiced2, voiced) and np.array_equal(pitch2[voiced], pitch[voiced])
    # reconstruction is exact wherever successive values move less than the clip range
    if np.abs(np.diff(q, axis=0, prepend=0)).max() <= MAX_RESIDUAL:
        assert np.array_equal(rec, q)


def test_streaming_priors_follow_the_step():
    """Modes 18/19 scale their initial states by 2^((g_ref − g)/16) in integers (pinned: the
    bitstream depends on them); modes 16/17 keep fixed ones. Packets round-trip at any step."""
    from functools import partial

    from bitstream.entropy import PACKET_PRIORS, SCALED_PRIORS, packet_prior

    g_ref, intra, inter = SCALED_PRIORS[18]
    assert packet_prior(18, g_ref) == (intra, inter)
    assert packet_prior(18, g_ref - 16)[0] == tuple(2 * v for v in intra)
    assert packet_prior(18, g_ref + 16)[0] == tuple(v // 2 for v in intra)
    assert packet_prior(18, 147)[0][:3] == (61, 61, 21)
    assert packet_prior(16, 200) == PACKET_PRIORS[16]
    rng = np.random.default_rng(0)
    for g in (48, 140, 255):
        q = np.round(rng.laplace(0, 3, size=(2, 20))).astype(np.int64)
        voiced = np.array([True, False])
        payload, rec = encode_packet(q, g, np.array([30, 30]), voiced, partial(packet_prior, 18), trim=True)
        assert np.array_equal(decode_packet(payload, 2, 20, partial(packet_prior, 18))[0], rec)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([0, 3, 4, 5, 18, 19, 20, 21, 22, 23]), st.integers(1, 130), st.integers(48, 255),
       st.integers(0, 2**31))
def test_packets_of_a_file_code_like_single_packets(mode_id, groups, g, seed):
    """``encode_groups`` (all packets at once, as the rate control uses it) writes the bytes
    ``encode_packet`` writes packet by packet, clipped values and residuals included, and they decode back."""
    from bitstream.modes import mode_by_id
    from bitstream.payload import VALUE_LIMITS, decode_groups, encode_groups, mode_prior, mode_weights, quantize

    mode, rng = mode_by_id(mode_id), np.random.default_rng(seed)
    values = rng.laplace(0, rng.choice([0.1, 3, 300]), size=(groups, mode.n_coefs)).astype(np.float32)
    pitch, voiced = rng.integers(0, N_LEVELS, size=groups), rng.random(groups) < 0.6
    per = mode.groups_per_packet
    payloads = encode_groups(mode, values, pitch, voiced, g, trim=mode_id >= 16)
    assert len(payloads) == -(-groups // per)
    for i, payload in enumerate(payloads):
        sl = slice(i * per, (i + 1) * per)
        q = quantize(values[sl], mode_weights(mode), g, VALUE_LIMITS[mode.representation])
        one, rec = encode_packet(q, g, pitch[sl], voiced[sl], mode_prior(mode), mode.predictive, trim=mode_id >= 16)
        assert payload == one
        assert np.array_equal(decode_groups(mode, payload, len(q))[0], rec)
