"""The preview settings: defaults, what turns the step off, and errors that say how to fix them."""

from __future__ import annotations

import json

import pytest

from devhost.functions import APP_ROOT
from shared.errors import ConfigurationError
from shared.settings import PreviewSettings, load_preview_settings


def test_defaults_and_the_local_settings_agree():
    assert load_preview_settings({}) == PreviewSettings("images-previews", (256, 1024), "webp", 80, 256 * 1024 * 1024)
    values = json.loads((APP_ROOT / "local.settings.json").read_text())["Values"]
    local = load_preview_settings(values)
    assert (local.container, local.sizes, local.output) == ("images-previews", (256, 1024), "webp")


def test_empty_container_turns_previews_off_and_sizes_are_sorted_unique():
    assert not load_preview_settings({"PreviewContainer": ""}).enabled
    assert load_preview_settings({"PreviewContainer": "  "}).enabled is False
    assert load_preview_settings({"PreviewSizes": "1024, 256,256"}).sizes == (256, 1024)
    assert load_preview_settings({"PreviewFormat": "JPG"}).output == "jpeg"


@pytest.mark.parametrize("env,message", [
    ({"PreviewContainer": "Images_Previews"}, "not a container name"),
    ({"PreviewContainer": "a--b"}, "not a container name"),
    ({"PreviewSizes": "small"}, "comma-separated long edges"),
    ({"PreviewSizes": "8"}, "16 to 4096"),
    ({"PreviewFormat": "gif"}, "must be one of webp, jpeg"),
    ({"PreviewQuality": "101"}, "1 to 100"),
    ({"PreviewQuality": "0"}, "must be positive"),
    ({"PreviewMaxBytes": "lots"}, "not a whole number"),
])
def test_bad_values_name_the_setting_and_the_fix(env, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_preview_settings(env)
    assert next(iter(env)) in str(caught.value)
    good = {"PreviewContainer": "images-previews", "PreviewSizes": "256", "PreviewFormat": "webp",
            "PreviewQuality": "80", "PreviewMaxBytes": "1000"}
    load_preview_settings({k: good[k] for k in env})  # negative control: a good value of each passes
