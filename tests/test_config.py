import pytest

from vaelab.config import Config, apply_overrides
from vaelab.errors import ConfigError


def test_toml_sections_and_flat_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[model]\nmodel = "vae"\nlatent_dim = 4\nbeta = "1/784"\n[train]\nepochs = 7\n')
    cfg = Config.from_toml(p)
    assert cfg.model.latent_dim == 4 and cfg.train.epochs == 7
    assert cfg.model.beta == pytest.approx(1 / 784)
    cfg2 = apply_overrides(cfg, {"latent-dim": "8", "hidden": "32,16"})
    assert cfg2.model.latent_dim == 8 and cfg2.model.hidden == [32, 16]
    assert cfg.model.latent_dim == 4  # the original is untouched


def test_unknown_key_is_an_error(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[train]\nepochz = 3\n")
    with pytest.raises(ConfigError, match="unknown key 'epochz' in section \\[train\\]"):
        Config.from_toml(p)


def test_bad_values_name_the_option():
    with pytest.raises(ConfigError, match="'epochs' got 'many'"):
        apply_overrides(Config(), {"epochs": "many"})
    with pytest.raises(ConfigError, match="lr_schedule"):
        apply_overrides(Config(), {"lr_schedule": "wavy"})
    with pytest.raises(ConfigError, match="latent_dim"):
        apply_overrides(Config(), {"latent_dim": 0})


def test_config_json_round_trip():
    cfg = apply_overrides(Config(), {"beta": 2.5, "hidden": [8, 4], "patience": 3})
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg
