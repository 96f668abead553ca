"""Dataset names as configs write them, e.g. "casme2/cropped/size=64,frame_range=whole".

TFDS's own syntax, `name[/config][:version][/key=value,...]`: the key=value options go to the
builder, and the licensed-dataset builders (`tfds_builders.clip_builder`) turn the storage
options (size, frame_range, crop_rule, repair) into a derived config named
`<config>_<options>` (here `cropped_s64_whole`), built and stored beside the shipped configs.
This module only does the naming, without TensorFlow, so the view cache can find a built dataset.
"""

from __future__ import annotations

import re

# Builder options that derive a config, in the order their values appear in its name.
STORAGE_OPTIONS = ("size", "frame_range", "crop_rule", "repair")

_SPEC = re.compile(r"(?P<name>[a-zA-Z]\w*)(/(?P<config>[\w.\-]+))?(:(?P<version>[\d.*]+))?"
                   r"(/(?P<options>(\w+=[^,/]+,?)+))?")


def parse(spec: str) -> tuple[str, str | None, str | None, dict[str, str]]:
  """(name, config, version, options) of a dataset spec."""
  match = _SPEC.fullmatch(spec.strip())
  if match is None:
    raise ValueError(f"Dataset {spec!r} is not of the form name[/config][:version]"
                     "[/key=value,...] (e.g. 'casme2/cropped/size=64,frame_range=whole')")
  options = {}
  for item in filter(None, (match.group("options") or "").split(",")):
    key, value = item.split("=", 1)
    if key not in STORAGE_OPTIONS:
      raise ValueError(f"Dataset {spec!r}: unknown option {key!r}; options are "
                       f"{STORAGE_OPTIONS}")
    options[key] = value
  return match.group("name"), match.group("config"), match.group("version"), options


def derived_config_name(config: str, options: dict) -> str:
  """The name of a config with storage options applied (`cropped` + size 64 -> `cropped_s64`)."""
  parts = [config]
  for key in STORAGE_OPTIONS:
    if key in options and options[key] is not None:
      value = str(options[key])
      parts.append(f"s{value}" if key == "size" else value)
  return "_".join(parts)


def storage_path(spec: str, default_config: str | None = None) -> str:
  """`name/config` of the folder a spec is stored in under the data dir (derived configs too)."""
  name, config, _, options = parse(spec)
  config = config or default_config
  if config is None:
    return name
  return f"{name}/{derived_config_name(config, options) if options else config}"
