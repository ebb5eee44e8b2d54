"""ldcodec: neural speech codec for 0.3–6 kbps.

    import codec
    data = codec.encode(wav, sample_rate=48000, kbps=3)   # bytes (wav: PCM array/tensor, or a file path)
    wav16k, sr = codec.decode(data)                       # float32 numpy, sr == 16000 (data: bytes or a path)
    codec.info(data)                                      # header facts, no model needed

    enc, dec = codec.StreamEncoder(kbps=3), codec.StreamDecoder()   # VoIP: push PCM / packets
    jb = codec.JitterBuffer()                                        # network → one packet per slot
"""
from .api import BundleWarning, DamagedStreamWarning, RateWarning, decode, encode, info
from .audio import AudioInputError
from .bundle import Bundle, BundleError
from .decoders import Coded, Decoder
from .modes import LADDER, VOIP_LADDER, Mode, mode_for
from .jitter import JitterBuffer, JitterConfig
from .stream import StreamDecoder, StreamEncoder, decode_packets

__all__ = ["encode", "decode", "info", "StreamEncoder", "StreamDecoder", "decode_packets", "AudioInputError",
           "BundleError", "DamagedStreamWarning", "RateWarning", "BundleWarning", "LADDER", "VOIP_LADDER", "Mode",
           "mode_for", "Bundle", "Decoder", "Coded", "JitterBuffer", "JitterConfig"]
__version__ = "0.1.0"
