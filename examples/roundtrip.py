"""Round-trip speech through ldcodec at a few bitrates (numpy in, numpy out).

    python examples/roundtrip.py                          # the shipped clip tests/data/LJ001-0028.flac
    python examples/roundtrip.py speech.wav [OUT_DIR]     # your own file: any rate, mono or stereo

For each rate it prints the stream size and the achieved kbps (from the byte count), decodes
to 16 kHz and writes OUT_DIR/<rate>kbps.wav plus the .ldc stream (OUT_DIR defaults to
./roundtrip_out). Finally it prints codec.info for the lowest-rate stream.
"""
import argparse
from pathlib import Path

import soundfile as sf

import codec

DEFAULT_CLIP = Path(__file__).resolve().parent.parent / "tests" / "data" / "LJ001-0028.flac"
RATES = [0.6, 1.2, 3.0, 6.0]  # kbps; the codec accepts 0.3 to 6

ap = argparse.ArgumentParser(description="ldcodec round trip at a few bitrates")
ap.add_argument("audio", nargs="?", default=str(DEFAULT_CLIP), help="speech file (default: shipped clip)")
ap.add_argument("out_dir", nargs="?", default="roundtrip_out", help="folder for the decoded wavs")
args = ap.parse_args()

wav, sr = sf.read(args.audio, dtype="float32")  # numpy (samples,) or (samples, channels), any rate
seconds = len(wav) / sr
out = Path(args.out_dir)
out.mkdir(parents=True, exist_ok=True)
print(f"{args.audio}: {seconds:.2f} s at {sr} Hz")

streams = {}
for kbps in RATES:
    data = codec.encode(wav, sample_rate=sr, kbps=kbps)  # -> bytes (a whole .ldc file)
    achieved = len(data) * 8 / seconds / 1000
    decoded, out_sr = codec.decode(data)  # -> float32 numpy (samples,), out_sr == 16000
    sf.write(out / f"{kbps:g}kbps.wav", decoded, out_sr)
    (out / f"{kbps:g}kbps.ldc").write_bytes(data)
    print(f"  {kbps:g} kbps requested: {len(data):6d} bytes = {achieved:.3f} kbps -> {out / f'{kbps:g}kbps.wav'}")
    streams[kbps] = data

print(f"codec.info of the {RATES[0]:g} kbps stream:")
for key, value in codec.info(streams[RATES[0]]).items():
    print(f"  {key}: {value}")
