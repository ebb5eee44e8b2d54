"""The example decoder plug-in (examples/plugin): found through its entry point, loads its own
weights from a bundle add-on, decodes; and typed bundle configs refuse what they do not know."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import codec
from codec.bundle import Bundle, BundleConfig, BundleError, shipped_bundles
from codec.decoders import available

PLUGIN = Path(__file__).parents[1] / "examples" / "plugin"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The plug-in as pip would install it: its module on the path and a dist-info whose entry
    points are the ones its pyproject.toml declares."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, eps in project["entry-points"].items():
        lines += [f"[{group}]"] + [f"{name} = {target}" for name, target in eps.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(PLUGIN))
    import ldc_smooth

    return ldc_smooth


@pytest.fixture
def bundle(tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(shipped_bundles()[0], out)
    return out


def test_plugin_found_decodes_with_its_own_weights(clip, installed, bundle):
    assert available()["smooth"] is installed.SmoothDecoder
    data = codec.encode(clip[:32000], 16000, kbps=3)
    with pytest.raises(ValueError, match="no smooth.safetensors"):
        codec.decode(data, decoder="smooth", bundle=bundle)
    with pytest.raises(BundleError, match="cp -r .* my_bundle"):  # the shipped bundle: add-ons go into a copy
        codec.decode(data, decoder="smooth")
    installed.export(bundle)
    assert Bundle.load(bundle).id == Bundle.load(shipped_bundles()[0]).id  # add-ons stay outside the id
    out, sr = codec.decode(data, decoder="smooth", bundle=bundle)
    direct, _ = codec.decode(data, decoder="direct", bundle=bundle)
    assert sr == 16000 and out.shape == direct.shape and np.isfinite(out).all()
    assert not np.allclose(out, direct, atol=1e-4)  # its filter does something...
    installed.export(bundle, taps=(0, 0.25, 0.5, 0.25, 0))
    out, _ = codec.decode(data, decoder="smooth", bundle=bundle)
    assert np.allclose(out, direct, atol=1e-5)  # ...and with direct's own [1, 2, 1] / 4 it is the direct path
    with pytest.raises(ValueError, match="steps"):
        codec.decode(data, decoder="smooth", bundle=bundle, steps=2)


def test_addon_names_are_checked(bundle):
    b = Bundle.load(bundle)
    assert b.addon("not_shipped", lambda c: None) is None
    with pytest.raises(ValueError, match="add-on name"):
        b.addon("../config", lambda c: None)


@pytest.mark.parametrize("change, match", [
    ({"format": 2}, "bundle format 2 is not one this ldcodec reads"),
    ({"colour": "red"}, "unknown key\\(s\\) 'colour'"),
    ({"vocoder": {"n_mels": 80, "wings": 2}}, "'vocoder': unknown key\\(s\\) 'wings'"),
    ({"mel": None}, "'mel' must be a JSON object"),
])
def test_config_refuses_unknown_format_and_keys(bundle, change, match):
    config = json.loads((bundle / "config.json").read_text())
    (bundle / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(BundleError, match=match):
        Bundle.load(bundle)


def test_config_is_typed():
    b = Bundle.load(shipped_bundles()[0])
    assert isinstance(b.config, BundleConfig) and b.config.format == 1 and b.config.mel == b.mel_config
    optional = {"n_mels": 80, "relative_level": True}  # a later vocoder option: any field with a default
    assert BundleConfig.from_dict({"mel": {}, "vocoder": optional}).vocoder.relative_level


def test_config_refuses_the_removed_source_filter_head():
    """Bundles write ``"source_filter": false`` and load; one that needs the removed head says so."""
    assert not BundleConfig.from_dict({"mel": {}, "vocoder": {"source_filter": False}}).vocoder.source_filter
    with pytest.raises(BundleError, match="'vocoder': source_filter=True: the source–filter head"):
        BundleConfig.from_dict({"mel": {}, "vocoder": {"source_filter": True}})


def test_config_takes_every_vocoder_field():
    """Every VocoderConfig field a trainer writes (relative_level, mag_prior, phase_iterations, ...) reads back."""
    from dataclasses import asdict

    from codec.vocoder import VocoderConfig

    changed = VocoderConfig(relative_level=True, mag_prior=True, phase_iterations=16, quiet_db=30.0,
                            phase_init="excitation")
    config = BundleConfig.from_dict({"mel": {}, "vocoder": asdict(changed)})
    assert config.vocoder == changed


def test_export_to_a_folder_that_is_not_a_bundle_names_it(installed, tmp_path):
    """``ldc_smooth.py BUNDLE`` with a folder that does not exist: a BundleError naming it, not a SafetensorError."""
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, match in ((tmp_path / "nope", "nope: no such bundle folder"), (empty, "is not a model bundle")):
        with pytest.raises(BundleError, match=match):
            installed.export(folder)
    assert not (tmp_path / "nope").exists() and not list(empty.iterdir())


def test_plugin_docs_say_what_a_bundle_is():
    doc = (Path(__file__).parents[1] / "docs" / "decoders.md").read_text()
    assert "ldc_smooth.py BUNDLE" not in doc and "cp -r" in doc
    assert "*model bundle*" in doc and "never into the installed" in doc
