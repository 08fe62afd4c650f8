"""`imgcheck scan` settings: defaults < config file < IMGCHECK_* environment < command line.

Like ruff:
- The config file is found by walking up from the working directory: in each folder,
  `imgcheck.toml` (settings at its top level, or under `[tool.imgcheck]`) wins over
  `pyproject.toml`, which counts only if it has a `[tool.imgcheck]` table. The walk stops at the
  first folder that has one. `--config FILE` (or `IMGCHECK_CONFIG`) names the file instead.
- Keys are the long option names of `imgcheck scan` (`fail-on-error`, `respect-gitignore`, ...);
  an unknown key, or a value of the wrong type, is an error that names the key and the file.
- Relative paths in a config file (`paths`, `baseline`, `model`, `output`) are relative to the
  file's folder, so the same config works from any sub-folder.
- `IMGCHECK_<KEY>` (upper case, `-` -> `_`) sets a key from the environment, for CI:
  `IMGCHECK_THRESHOLD=0.9`, `IMGCHECK_FAIL_ON_EMPTY=1`, `IMGCHECK_EXCLUDE=vendor/*,*.gif`
  (lists are comma-separated). An invalid value is an error naming the variable.
- A flag given on the command line overrides everything else.

`Settings.describe()` is what `--show-settings` prints: each value and where it came from.
Standard library only (tomllib; the `tomli` backport on Python 3.10), cheap to import.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

CONFIG_NAMES = ("imgcheck.toml", "pyproject.toml")
ENV_PREFIX = "IMGCHECK_"
REPORT_CHOICES = ("table", "csv", "json", "jsonl", "html", "sarif", "github")
VARIANT_CHOICES = ("fp32", "int8", "fp16")


class ConfigError(ValueError):
    """A bad config file, key, value or environment variable (exit 2, one line)."""


@dataclass(frozen=True)
class Key:
    """One setting: its TOML name, the `scan_command` parameter it feeds, type and default."""

    name: str  # kebab-case, as in the config file
    param: str  # scan_command's parameter name
    kind: str  # "str", "path", "float", "int", "bool", "list", "paths", "choice"
    default: Any
    choices: tuple[str, ...] = ()
    help: str = ""


KEYS: tuple[Key, ...] = (
    Key("paths", "paths", "paths", [], help="what to scan when no PATH is given"),
    Key("include", "include", "list", []),
    Key("exclude", "exclude", "list", []),
    Key("recursive", "recursive", "bool", True),
    Key("respect-gitignore", "respect_gitignore", "bool", True),
    Key("threshold", "threshold", "float", None),
    Key("report", "report", "choice", None, REPORT_CHOICES),
    Key("output", "output", "path", None),
    Key("model", "model", "path", None),
    Key("variant", "variant", "choice", "fp32", VARIANT_CHOICES),
    Key("cascade", "cascade", "bool", True),
    Key("max-pixels", "max_pixels", "int", 0),
    Key("min-side", "min_side", "int", 0),
    Key("fail-on-error", "fail_on_error", "bool", False),
    Key("fail-on-empty", "fail_on_empty", "bool", False),
    Key("baseline", "baseline", "path", None),
    Key("cache", "cache", "path", None, help="keep rows of images scanned before (by content)"),
)
BY_NAME = {k.name: k for k in KEYS}
BY_PARAM = {k.param: k for k in KEYS}


@dataclass
class Settings:
    """The values in force (by parameter name) and, for each, where it came from."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None

    def __getitem__(self, param: str) -> Any:
        return self.values[param]

    def describe(self) -> str:
        lines = [f"config file: {self.config_file or '(none found)'}"]
        width = max(len(k.name) for k in KEYS)
        for key in KEYS:
            value = self.values[key.param]
            text = json.dumps(value, ensure_ascii=False)
            lines.append(f"{key.name:<{width}} = {text:<24} # {self.origins[key.param]}")
        return "\n".join(lines)


# -- finding and reading the file ----------------------------------------------------------


def _load_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _table(path: str) -> dict[str, Any] | None:
    """The imgcheck settings in `path`, or None when a pyproject.toml has no [tool.imgcheck]."""
    data = _load_toml(path)
    tool = data.get("tool", {})
    section = tool.get("imgcheck") if isinstance(tool, dict) else None
    if os.path.basename(path) == "pyproject.toml":
        if section is None:
            return None
    elif section is None:  # imgcheck.toml: settings at the top level
        return data
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: [tool.imgcheck] must be a table")
    return section


def find_config(start: str | None = None) -> tuple[str, dict[str, Any]] | None:
    """Walk up from `start` (default: the working directory) to the first imgcheck config."""
    folder = os.path.abspath(start or os.getcwd())
    while True:
        for name in CONFIG_NAMES:
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate):
                table = _table(candidate)
                if table is not None:
                    return candidate, table
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


# -- checking values -----------------------------------------------------------------------


def _relative_to(base: str, value: str) -> str:
    """A config-file path made usable from the working directory (relative when below it)."""
    path = os.path.normpath(os.path.join(base, os.path.expanduser(value)))
    cwd = os.getcwd()
    try:
        rel = os.path.relpath(path, cwd)
    except ValueError:
        return path
    return path if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def _check(key: Key, value: Any, where: str, base: str | None) -> Any:
    """`value` of `key` from a TOML file (`base` = its folder) as the type the command takes."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}: {key.name} must be {expected}, got {value!r}")

    if key.kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        if key.name == "threshold" and not 0.0 <= value <= 1.0:
            raise bad("between 0 and 1")
        return float(value)
    if key.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad("a whole number >= 0")
        return value
    if key.kind in ("list", "paths"):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        if key.kind == "paths" and base is not None:
            return [_relative_to(base, v) for v in value]
        return list(value)
    if not isinstance(value, str) or not value:
        raise bad("a non-empty string")
    if key.kind == "choice":
        if value not in key.choices:
            raise bad(f"one of {', '.join(key.choices)}")
        return value
    if key.kind == "path" and base is not None:
        return _relative_to(base, value)
    return value


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _from_env(key: Key, text: str, var: str) -> Any:
    """An environment variable's text as a TOML-like value, then checked like one."""
    value: Any = text
    if key.kind == "bool":
        low = text.strip().lower()
        if low not in _TRUE | _FALSE:
            raise ConfigError(f"{var} must be 1/true/yes/on or 0/false/no/off, got {text!r}")
        value = low in _TRUE
    elif key.kind in ("float", "int"):
        try:
            value = float(text) if key.kind == "float" else int(text)
        except ValueError:
            raise ConfigError(f"{var} must be a number, got {text!r}") from None
    elif key.kind in ("list", "paths"):
        value = [part.strip() for part in text.split(",") if part.strip()]
    return _check(key, value, f"environment variable {var}", None)


def env_name(key: Key) -> str:
    return ENV_PREFIX + key.name.upper().replace("-", "_")


# -- putting it together --------------------------------------------------------------------


def resolve(
    cli: Mapping[str, Any],
    given: Callable[[str], bool],
    *,
    config: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings in force. `cli` holds scan_command's values by parameter name; `given(param)`
    says whether the user typed that flag (else the config file and environment may set it).
    `config` is an explicit config file (`--config`); otherwise it is searched for."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    for key in KEYS:
        settings.values[key.param] = key.default
        settings.origins[key.param] = "default"

    config = config or environ.get(ENV_PREFIX + "CONFIG") or None
    if config is not None:
        if not os.path.isfile(config):
            raise ConfigError(f"config file {config} does not exist")
        table = _table(config)
        found = (config, table or {})
    else:
        found = find_config()
    if found is not None:
        path, table = found
        settings.config_file = path
        base = os.path.dirname(os.path.abspath(path))
        where = f"{path} [tool.imgcheck]" if path.endswith("pyproject.toml") else path
        for name, value in table.items():
            key = BY_NAME.get(name)
            if key is None:
                raise ConfigError(
                    f"{where}: unknown key {name!r} (known keys: {', '.join(BY_NAME)})"
                )
            settings.values[key.param] = _check(key, value, where, base)
            settings.origins[key.param] = path

    for key in KEYS:
        var = env_name(key)
        if var in environ:
            settings.values[key.param] = _from_env(key, environ[var], var)
            settings.origins[key.param] = f"environment {var}"

    for param, value in cli.items():
        key = BY_PARAM.get(param)
        if key is not None and given(param):
            settings.values[param] = value
            settings.origins[param] = "command line"
    return settings


__all__ = ["KEYS", "ConfigError", "Settings", "find_config", "resolve"]
