"""Export a training checkpoint's EMA weights into a bundle folder: the one way out of every trainer
(:func:`export`; the trainers' ``--export CHECKPOINT BUNDLE`` is this), by what the run's ``config.json``
says it trained. A vocoder run makes the bundle (``vocoder.safetensors`` + ``config.json``: the reference
vocoder, part of the bundle id) or, with ``--addon``, one of its vocoder add-ons; a mel2mel or lat2lat run its
add-on; a latent run the latent autoencoder (``latent.*``, keeping the one it replaces: :func:`retire_latent`)
or, from a decoder-only run, ``latent_decoder.*``.

    python -m codec.train.export runs/vocoder/last.safetensors codec/bundles/default --name ldc-mel-v1
    python -m codec.train.export runs/stream_vocoder/last.safetensors codec/bundles/default --addon stream_vocoder
    python -m codec.train.export runs/mel2mel/last.safetensors codec/bundles/default

``--addon NAME`` adds the vocoder to an existing bundle as ``NAME.json`` + ``NAME.safetensors``
(``stream_vocoder``: the streaming decoder's causal vocoder; ``mel2mel_vocoder``: the vocoder
the mel2mel decoder uses; ``direct_vocoder``: the one ``direct`` and ``lat2lat`` render with,
e.g. adversarially fine-tuned). Add-ons are outside the bundle id.

``--render KEY=VALUE ...`` sets the vocoder's decoding settings (phase_iterations, phase_init, quiet_db,
harmonic_boost, voiced_top_hz: no weight depends on them; ``quiet_db=none`` for none) in the exported
JSON's ``vocoder`` section, so a shipped JSON is what a command wrote, not a hand edit; ``--render-only
BUNDLE --addon NAME --render ...`` changes them in an add-on already exported, without a checkpoint
(``NAME.json`` alone is rewritten; its weights and the bundle id stay; the main vocoder's, in
``config.json``, are part of the id)::

    python -m codec.train.export runs/voc_harm/last.safetensors codec/bundles/default --addon direct_vocoder \\
        --render phase_iterations=24 phase_init=excitation quiet_db=30 harmonic_boost=0.15
    python -m codec.train.export --render-only codec/bundles/default --addon stream_vocoder \\
        --render phase_init=sinusoidal voiced_top_hz=4000
"""
from __future__ import annotations

import argparse
import json
import typing
from dataclasses import asdict, fields
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from ..bundle import BundleError, kept_latents, typed
from ..vocoder import Vocoder, VocoderConfig

ADDONS = ("stream_vocoder", "mel2mel_vocoder", "direct_vocoder")
KINDS = ("vocoder", "mel2mel", "lat2lat", "latent")  # what a run trained: its config.json's key
RENDER_FIELDS = ("phase_iterations", "phase_init", "quiet_db", "harmonic_boost",
                 "voiced_top_hz")  # decoding only: no weight needs them
TYPES = {int: "an integer", float: "a number", str: "a string"}


def render_settings(pairs: list[str]) -> dict:
    """``["phase_iterations=24", "quiet_db=none", ...]`` → ``{"phase_iterations": 24, "quiet_db": None, ...}``,
    typed as the :class:`VocoderConfig` field; ValueError for anything but a decoding setting's valid value."""
    hints = typing.get_type_hints(VocoderConfig)
    settings = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq:
            raise ValueError(f"--render {pair!r}: expected KEY=VALUE")
        if key not in RENDER_FIELDS:
            what = ("a training setting (the weights are made for it)" if key in {f.name for f in fields(VocoderConfig)}
                    else "not a VocoderConfig field")
            raise ValueError(f"--render {key}: {what}; it sets only decoding settings: {', '.join(RENDER_FIELDS)}")
        kinds = typing.get_args(hints[key]) or (hints[key],)
        if value.lower() in ("none", "null") and type(None) in kinds:
            settings[key] = None
            continue
        kind = next(k for k in kinds if k is not type(None))
        try:
            settings[key] = kind(value)
        except ValueError:
            raise ValueError(f"--render {key}={value}: {key} takes {TYPES[kind]}"
                             f"{' (or none)' if type(None) in kinds else ''}") from None
    return settings


def render(config: dict, settings: dict, where: str) -> None:
    """Set decoding ``settings`` (from :func:`render_settings`) in ``config["vocoder"]`` (a parsed add-on or
    run config), checked: the result loads as a :class:`Vocoder`, and ``phase_init`` "learned" only for a
    head trained for it (``--learned-phase``)."""
    if not settings:
        return
    old = typed(VocoderConfig, config.get("vocoder"), f"{where} 'vocoder'")
    try:  # every refusal names the JSON it came from
        new = VocoderConfig(**{**asdict(old), **settings})  # a value out of its range (voiced_top_hz, ...)
        if new.phase_init == "learned" and old.phase_init != "learned":
            raise ValueError("phase_init 'learned' needs a head trained for it (codec.train.vocoder "
                             f"--learned-phase), not one trained with {old.phase_init!r}")
        if new.phase_iterations < 0:
            raise ValueError(f"phase_iterations must be ≥ 0, not {new.phase_iterations}")
        Vocoder(new)  # a combination the vocoder refuses (an unknown phase_init, 'learned' in a causal one, ...)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    config["vocoder"].update(settings)


def ema_weights(ckpt: Path) -> tuple[dict, int]:
    """(EMA weights in fp16, training step) of a checkpoint."""
    with safe_open(str(ckpt), "pt") as f:
        return {k[4:]: f.get_tensor(k).half().contiguous() for k in f.keys() if k.startswith("ema.")}, \
            int(f.metadata()["step"])


def addon(ckpt: Path, bundle: Path, name: str, prefix: str = "", settings: dict | None = None) -> None:
    """A checkpoint's EMA weights (those under ``prefix``, which is cut, e.g. ``"decoder."``) + its run's
    config (a vocoder's with decoding ``settings``, :func:`render`) → ``bundle/NAME.safetensors`` and
    ``bundle/NAME.json``."""
    config = json.loads((ckpt.parent / "config.json").read_text())
    if settings:
        render(config, settings, str(ckpt.parent / "config.json"))
    weights, step = ema_weights(ckpt)
    weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    save_file(weights, str(bundle / f"{name}.safetensors"), metadata={"step": str(step)})
    config["steps_trained"] = step
    (bundle / f"{name}.json").write_text(json.dumps(config, indent=1) + "\n")
    print(f"exported {name} step {step} to {bundle}")


def render_only(bundle: Path, name: str, settings: dict) -> None:
    """Rewrite ``bundle/NAME.json``, an exported vocoder add-on, with decoding ``settings`` (:func:`render`);
    its weights, and the bundle id (``config.json`` + ``vocoder.safetensors``), are untouched."""
    path = bundle / f"{name}.json"
    if not (bundle / f"{name}.safetensors").exists() or not path.exists():
        raise BundleError(f"{bundle} has no {name} add-on ({name}.json + {name}.safetensors) to render")
    config = json.loads(path.read_text())
    before = dict(config.get("vocoder") or {})
    render(config, settings, str(path))
    path.write_text(json.dumps(config, indent=1) + "\n")
    changes = [f"{k} {before[k]!r} → {v!r}" if k in before else f"{k} → {v!r}"
               for k, v in settings.items() if k not in before or before[k] != v]
    print(f"{path}: {', '.join(changes) or 'unchanged'}")


def retire_latent(bundle: Path) -> str | None:
    """Keep ``bundle``'s latent autoencoder as its next latent generation before a new one replaces it:
    ``latent.*`` → ``latent_vN.*``, and the models made for it, ``latent_decoder.*`` → ``latent_vN_decoder.*``,
    ``lat2lat.*`` → ``latent_vN_lat2lat.*``; streams written with it keep decoding. → ``latent_vN``, or
    None when the bundle has no latent autoencoder."""
    if not (bundle / "latent.safetensors").exists():
        return None
    kept = kept_latents(bundle)
    name = f"latent_v{int(kept[0][len('latent_v'):]) + 1 if kept else 1}"
    for old, new in (("latent", name), ("latent_decoder", f"{name}_decoder"), ("lat2lat", f"{name}_lat2lat")):
        for suffix in (".json", ".safetensors"):
            if (bundle / f"{old}{suffix}").exists():
                (bundle / f"{old}{suffix}").rename(bundle / f"{new}{suffix}")
    return name


def export(ckpt: Path, out: Path, kind: str | None = None, addon_name: str | None = None, name: str = "ldc-mel-v1",
           settings: dict | None = None) -> None:
    """Write checkpoint ``ckpt``'s EMA weights into bundle folder ``out`` as what its run trained (its
    ``config.json``'s key: one of :data:`KINDS`; ``kind``: the one expected). A vocoder makes the bundle
    ``name`` or, as ``addon_name``, one of its :data:`ADDONS`, with decoding ``settings`` (:func:`render`); any
    other run is its add-on. ValueError, before anything is written, for a run that is not ``kind`` or
    options it does not take."""
    where = ckpt.parent / "config.json"
    config = json.loads(where.read_text())
    found = next((k for k in KINDS if k in config), None)
    if found is None or kind not in (None, found):
        raise ValueError(f"{where}: not a {kind or ' or '.join(KINDS)} run")
    if found != "vocoder" and (addon_name or settings):
        raise ValueError(f"{where}: a {found} run; --addon and --render export vocoders")
    render(config, settings or {}, str(where))  # checked before anything is written
    out.mkdir(parents=True, exist_ok=True)
    decoder_only = config.get("trained") == "decoder"  # a latent run that tuned the decoder alone
    if found == "latent" and not decoder_only and (kept := retire_latent(out)):  # with its decoder and lat2lat
        print(f"kept the bundle's previous latent autoencoder as {kept}: its streams still decode")
    if found != "vocoder" or addon_name:
        prefix = "decoder." if decoder_only else ""
        return addon(ckpt, out, "latent_decoder" if decoder_only else addon_name or found, prefix, settings)
    weights, step = ema_weights(ckpt)
    save_file(weights, str(out / "vocoder.safetensors"), metadata={"step": str(step)})
    config.update(name=name, format=1, vocoder_steps=step)
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    print(f"exported step {step} to {out}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--name", default="ldc-mel-v1")
    ap.add_argument("--addon", choices=ADDONS, help="write the vocoder into the bundle OUT as this add-on")
    ap.add_argument("--render", nargs="+", default=[], metavar="KEY=VALUE",
                    help=f"decoding settings written into the vocoder's config ({', '.join(RENDER_FIELDS)}; "
                         "'none' for no quiet_db)")
    ap.add_argument("--render-only", metavar="BUNDLE",
                    help="no checkpoint: set --render in BUNDLE's --addon JSON (weights and bundle id unchanged)")
    args = ap.parse_args(argv)
    try:
        settings = render_settings(args.render)
    except ValueError as exc:
        ap.error(str(exc))
    if args.render_only:
        if args.checkpoint or not args.addon or not settings:
            ap.error("--render-only BUNDLE takes no CHECKPOINT OUT and needs --addon NAME and --render KEY=VALUE ...")
        try:
            return render_only(Path(args.render_only), args.addon, settings)
        except ValueError as exc:  # BundleError too
            ap.error(str(exc))
    if not args.out:
        ap.error("CHECKPOINT and OUT are required (or --render-only BUNDLE)")
    try:
        export(Path(args.checkpoint), Path(args.out), addon_name=args.addon, name=args.name, settings=settings)
    except ValueError as exc:
        ap.error(str(exc))


if __name__ == "__main__":
    main()
