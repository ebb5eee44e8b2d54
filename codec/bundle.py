"""Model bundles: a folder with ``config.json`` (:class:`BundleConfig`), ``vocoder.safetensors`` and
``MODEL_CARD.md``, plus optional add-ons (``NAME.json`` + ``NAME.safetensors``) loaded with
:meth:`Bundle.addon`. A bundle builds none of its decoders' models: each decoder loads its own add-ons
through :meth:`Bundle.addon`, the built-in ones as plug-ins do (``codec.decoders``: ``direct_vocoder``,
``mel2mel_vocoder``, ``latent_decoder``; ``codec.mel2mel``: ``mel2mel``; ``codec.lat2lat``: ``lat2lat``;
``codec.stream``: ``stream_vocoder``).

The bundle id (8 bytes, written into every file header) is the start of the SHA-256 of
``config.json`` and ``vocoder.safetensors``, so a stream always names the weights it was made for.
That *reference vocoder* (``config.json``'s ``vocoder``) feeds the id and is where vocoder training
starts; decoders render with their own vocoder add-ons and fall back to it only when a bundle ships
none. Add-ons are outside the id: adding or retraining one keeps every stream decodable.
Latent streams also depend on the latent autoencoder: their id (:meth:`Bundle.stream_id`) hashes
the bundle id with ``latent.json`` and ``latent.safetensors``. A retrained autoencoder keeps the one it
replaces as a *latent generation* (``latent_v1.*``, with the models made for it: ``latent_v1_decoder.*``,
``latent_v1_lat2lat.*``), so the streams written with it still decode (:meth:`Bundle.latent_generations`).
Shipped bundles live in ``codec/bundles/``; the first one (``default``) encodes by default, unless
the environment variable ``LDCODEC_BUNDLE`` names a bundle folder: then that one encodes, and decoding
looks for a stream's bundle there first, then among the shipped ones.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file
from torch import nn

from bitstream import BundleMismatchError

from .features import MelConfig
from .vocoder import Vocoder, VocoderConfig

SHIPPED = Path(__file__).parent / "bundles"
DEFAULT_NAME = "default"
WEIGHT_FILES = ("vocoder.safetensors",)  # the reference vocoder: hashed into the bundle id
ENV_VAR = "LDCODEC_BUNDLE"
FORMATS = (1,)  # config.json "format" versions this ldcodec reads
_ADDON_NAME = re.compile(r"[a-z0-9_]{1,64}")
_GENERATION = re.compile(r"latent_v[0-9]+")  # a kept latent autoencoder


class BundleError(ValueError):
    """A model bundle cannot serve the request: the folder is not a bundle, its config names an
    unknown format version or key or holds a value of the wrong kind, or it lacks the model asked for."""


def typed(cls, raw, where: str):
    """``cls(**raw)`` for a config dataclass, with a :class:`BundleError` naming ``where`` and the
    key for anything but a JSON object of its fields (optional fields may be left out)."""
    if not isinstance(raw, dict):
        raise BundleError(f"{where} must be a JSON object, got {type(raw).__name__}")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise BundleError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                          f"(this ldcodec knows {', '.join(known)})")
    missing = [f.name for f in fields(cls) if f.name not in raw and f.default is MISSING
               and f.default_factory is MISSING]
    if missing:
        raise BundleError(f"{where}: missing key(s) {', '.join(map(repr, missing))}")
    try:
        return cls(**raw)
    except ValueError as e:  # a value the config refuses (e.g. the removed source_filter=True)
        raise BundleError(f"{where}: {e}") from e


@dataclass(frozen=True)
class BundleConfig:
    """``config.json``: the front end (``mel``) and main vocoder (``vocoder``) of a bundle, its
    ``name``, its layout version ``format`` (this ldcodec reads ``FORMATS``) and the vocoder's
    training steps (``vocoder_steps``, informative)."""

    mel: MelConfig
    vocoder: VocoderConfig
    name: str | None = None
    format: int = 1
    vocoder_steps: int | None = None

    @classmethod
    def from_dict(cls, raw, where: str = "config.json") -> "BundleConfig":
        """Check and type a parsed ``config.json``: the format first, then every key."""
        if not isinstance(raw, dict):
            raise BundleError(f"{where} must be a JSON object, got {type(raw).__name__}")
        fmt = raw.get("format", 1)
        if isinstance(fmt, bool) or fmt not in FORMATS:
            raise BundleError(f"{where}: bundle format {fmt!r} is not one this ldcodec reads "
                              f"({', '.join(map(str, FORMATS))}); a newer ldcodec may read it")
        top = typed(cls, raw, where)
        return replace(top, mel=typed(MelConfig, top.mel, f"{where} 'mel'"),
                       vocoder=typed(VocoderConfig, top.vocoder, f"{where} 'vocoder'"))


@dataclass
class Bundle:
    """A loaded bundle; models are built on first use and kept on this object."""

    path: Path
    config: BundleConfig = field(repr=False)
    latent_name: str = "latent"  # the latent generation this view encodes and decodes with
    _addons: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path) -> "Bundle":
        """The bundle in folder ``path``; loaded once per process while its files are unchanged."""
        path = Path(path).resolve()
        if not path.is_dir():
            raise BundleError(f"{path}: no such bundle folder" if not path.exists() else
                              f"{path} is not a model bundle (a file, not a folder)")
        stamps = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(path.glob("*")) if p.is_file())
        return _load(path, stamps)

    @cached_property
    def id(self) -> bytes:
        h = hashlib.sha256((self.path / "config.json").read_bytes())
        for name in WEIGHT_FILES:
            if (self.path / name).exists():
                h.update((self.path / name).read_bytes())
        return h.digest()[:8]

    def stream_id(self, representation: str) -> bytes:
        """The id a stream of ``representation`` ("mel" or "latent") carries in its header."""
        return self._latent_id if representation == "latent" else self.id

    @cached_property
    def _latent_id(self) -> bytes:
        """The bundle id hashed with this view's latent autoencoder files (read once per loaded bundle)."""
        h = hashlib.sha256(self.id)
        for name in (f"{self.latent_name}.json", f"{self.latent_name}.safetensors"):
            if not (self.path / name).exists():
                raise BundleError(
                    f"bundle {self.name} has no latent autoencoder ({name}); use representation='mel'")
            h.update((self.path / name).read_bytes())
        return h.digest()[:8]

    def latent_generations(self) -> list["Bundle"]:
        """This bundle and a view of it for each latent autoencoder it kept (``latent_v1``, ``latent_v2``,
        ...; newest first): the view encodes, decodes and names streams (:meth:`stream_id`) with that
        generation's autoencoder and the models made for it."""
        return [self, *self._kept_views]

    @cached_property
    def _kept_views(self) -> list["Bundle"]:
        """The views of the kept latent generations, made once per loaded bundle, so their ids and
        models are computed and loaded once."""
        views = []
        for name in kept_latents(self.path):
            view = replace(self, latent_name=name)
            view._addons = self._addons  # add-on names differ per generation: the shared ones load once
            views.append(view)
        return views

    def latent_for(self, n_coefs: int, decimation: int) -> "Bundle | None":
        """The view of the newest latent generation whose autoencoder has ``n_coefs`` channels at one latent
        frame per ``decimation`` mel frames (a latent mode's layout), or None: the one that encodes that mode."""
        for view in self.latent_generations():
            if view.latent_layout == (n_coefs, decimation):
                return view
        return None

    def writing(self, mode) -> "Bundle":
        """The view that writes the streams of ``mode`` (a ``bitstream.Mode``): this bundle for a mel mode, the
        latent generation of its layout (:meth:`latent_for`) for a latent one; a :class:`BundleError` if none."""
        if mode.representation != "latent":
            return self
        view = self.latent_for(mode.n_coefs, mode.decimation)
        if view is None:
            raise BundleError(f"bundle {self.name} has no latent autoencoder of {mode.n_coefs} channels at stride "
                              f"{mode.decimation} (mode {mode.id})")
        return view

    @cached_property
    def latent_layout(self) -> tuple[int, int] | None:
        """(channels, stride) of this view's latent autoencoder, read from its JSON; None without one."""
        from .latent import LatentConfig

        if not self.has(self.latent_name):
            return None
        cfg = typed(LatentConfig, self.addon_config(self.latent_name).get("latent"), f"{self.latent_name}.json")
        return cfg.channels, cfg.stride

    def latent_addon(self, model: str) -> str:
        """The add-on name of ``model`` ("decoder", "lat2lat") made for this view's latent generation."""
        if self.latent_name == "latent":
            return {"decoder": "latent_decoder"}.get(model, model)
        return f"{self.latent_name}_{model}"

    def has(self, addon: str) -> bool:
        """Whether the bundle holds add-on ``addon`` (``latent``, ``mel2mel``, ``stream_vocoder``, ...)."""
        return (self.path / f"{addon}.safetensors").exists()

    @property
    def name(self) -> str:
        return self.config.name or self.path.name

    @property
    def mel_config(self) -> MelConfig:
        return self.config.mel

    @cached_property
    def vocoder(self) -> Vocoder:
        """The reference vocoder (``config.json``'s ``vocoder``, ``vocoder.safetensors``): its weights make the
        bundle id; decoders render with their own add-ons and fall back to it when the bundle ships none."""
        with torch.inference_mode(False):  # normal tensors even when first asked for inside inference mode
            return _weights(Vocoder(self.config.vocoder), self.path / "vocoder.safetensors")

    def addon_config(self, name: str) -> dict:
        """The parsed ``NAME.json`` of add-on ``name`` (``{}`` without one)."""
        cfg = self.path / f"{name}.json"
        try:
            config = json.loads(cfg.read_text()) if cfg.exists() else {}
        except ValueError as exc:
            raise BundleError(f"{cfg}: {exc}") from None
        if not isinstance(config, dict):
            raise BundleError(f"{cfg} must be a JSON object, got {type(config).__name__}")
        return config

    def addon(self, name: str, build: Callable[[dict], nn.Module]) -> nn.Module | None:
        """Add-on ``name``: ``build(config)``, ``config`` being the parsed ``NAME.json`` (``{}``
        without one), with ``NAME.safetensors`` loaded (as float32), in eval mode and without
        gradients; None when the bundle has no ``NAME.safetensors``. Built once per bundle and name.

        This is how a decoder, built-in or plug-in, finds its own weights: ship them into the bundle
        folder as ``NAME.safetensors`` (+ ``NAME.json``). Add-ons are not part of the bundle id: they
        change how a stream is rendered, not what it means, so adding one keeps every existing
        stream decodable. ``name``: 1–64 characters of ``[a-z0-9_]``.
        """
        if not isinstance(name, str) or not _ADDON_NAME.fullmatch(name):
            raise ValueError(f"add-on name {name!r} must be 1-64 characters of [a-z0-9_]")
        if name not in self._addons:
            if not self.has(name):
                return None
            config = self.addon_config(name)
            with torch.inference_mode(False):  # a decoder may ask first inside inference mode; training reuses it
                self._addons[name] = _weights(build(config), self.path / f"{name}.safetensors")
        return self._addons[name]

    def vocoder_addon(self, name: str) -> Vocoder | None:
        """Add-on ``name`` that is a vocoder (``NAME.json``'s ``vocoder``: a :class:`VocoderConfig`), or None."""
        return self.addon(name, lambda c: Vocoder(typed(VocoderConfig, c.get("vocoder"), f"{name}.json 'vocoder'")))

    @cached_property
    def latent(self):
        """The latent autoencoder of this view's generation (``latent.json`` + ``latent.safetensors``), or None."""
        from .latent import LatentAutoencoder, LatentConfig

        return self.addon(self.latent_name, lambda c: LatentAutoencoder(
            typed(LatentConfig, c.get("latent"), f"{self.latent_name}.json")))


def kept_latents(path: Path) -> list[str]:
    """The latent generations kept in bundle folder ``path`` (``latent_v1``, ...), newest first."""
    names = [p.stem for p in path.glob("latent_v*.safetensors") if _GENERATION.fullmatch(p.stem)]
    return sorted(names, key=lambda n: -int(n[len("latent_v"):]))


def _weights(model: nn.Module, path: Path) -> nn.Module:
    """``model`` with the safetensors weights at ``path`` (as float32), in eval mode, without gradients."""
    model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return model.eval().requires_grad_(False)


@lru_cache(maxsize=8)
def _load(path: Path, stamps: tuple) -> Bundle:
    """Cached by path and file stamps, so repeated encode/decode calls reuse the loaded models."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path} is not a model bundle (config.json: {exc})") from None
    return Bundle(path, BundleConfig.from_dict(config, str(path / "config.json")))


def shipped_bundles() -> list[Path]:
    """Folders of the bundles shipped in the package, the default first."""
    found = sorted(p for p in SHIPPED.iterdir() if (p / "config.json").exists()) if SHIPPED.exists() else []
    return sorted(found, key=lambda p: p.name != DEFAULT_NAME)


def _env_bundle() -> "Bundle | None":
    """The bundle ``$LDCODEC_BUNDLE`` names, or None when it is unset."""
    path = os.environ.get(ENV_VAR)
    if not path:
        return None
    try:
        return Bundle.load(path)
    except BundleError as exc:
        raise BundleError(f"{ENV_VAR}={path}: {exc}") from None


def resolve(bundle: "Bundle | str | Path | None" = None) -> Bundle:
    """A Bundle object, a bundle folder, or None for ``$LDCODEC_BUNDLE``, else the shipped default."""
    if isinstance(bundle, Bundle):
        return bundle
    if bundle is None:
        env = _env_bundle()
        if env is not None:
            return env
        paths = shipped_bundles()
        if not paths:
            raise BundleError(f"no model bundle shipped in {SHIPPED}")
        bundle = paths[0]
    return Bundle.load(bundle)


def _stream_id(b: Bundle, representation: str) -> bytes | None:
    try:
        return b.stream_id(representation)
    except BundleError:
        return None


def _serving(b: Bundle, bundle_id: bytes, representation: str) -> Bundle | None:
    """``b``, or the view of one of its kept latent generations, whose streams of ``representation``
    carry ``bundle_id``; None if none does."""
    for view in b.latent_generations() if representation == "latent" else [b]:
        if _stream_id(view, representation) == bundle_id:
            return view
    return None


def for_stream(bundle_id: bytes, bundle: "Bundle | str | Path | None" = None, representation: str = "mel") -> Bundle:
    """The bundle a stream needs: the one given (checked), else the one with that id among
    ``$LDCODEC_BUNDLE`` and the shipped ones (for a latent stream, a view of the latent generation it
    was written with)."""
    if bundle is not None:
        b = resolve(bundle)
        found = _serving(b, bundle_id, representation)
        if found is None:
            own = _stream_id(b, representation)
            raise BundleMismatchError(
                f"stream was encoded with bundle {bundle_id.hex()}, but bundle {b.name} is "
                f"{own.hex() if own else f'without a {representation} model'}")
        return found
    env = _env_bundle()
    for b in ([env] if env else []) + [Bundle.load(p) for p in shipped_bundles()]:
        found = _serving(b, bundle_id, representation)
        if found is not None:
            return found
    raise BundleMismatchError(
        f"stream needs model bundle {bundle_id.hex()}, which is not shipped with this ldcodec"
        f"{' nor in ' + ENV_VAR if env else ''}: pass bundle=PATH (ldcodec --bundle PATH, or set {ENV_VAR})")
