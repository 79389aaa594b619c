"""Loading the Lua scripts: one ``.lua`` file per state transition, with shared includes.

A script file may contain lines ``--@include "name"``; each is replaced by ``lua/includes/name.lua`` (once per
script, in order). Scripts are registered with SCRIPT LOAD and called with EVALSHA; when a server answers
NOSCRIPT (after a restart or SCRIPT FLUSH) the script is loaded again and the call retried.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources
from typing import Any

import redis

__all__ = ["Script", "load_script"]

_INCLUDE = re.compile(r'^--@include "([\w-]+)"\s*$', re.MULTILINE)


def _read(relative: str) -> str:
    return resources.files("queuesim.backends").joinpath("lua", relative).read_text(encoding="utf-8")


def _expand(text: str, seen: set[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            return f"-- (include {name} already expanded)"
        seen.add(name)
        return _expand(_read(f"includes/{name}.lua"), seen)

    return _INCLUDE.sub(replace, text)


class Script:
    """One Lua script, its SHA1, and the call that (re)loads it on NOSCRIPT."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, client: redis.Redis, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    def __repr__(self) -> str:
        return f"Script({self.name!r}, sha={self.sha[:8]})"


@cache
def load_script(name: str) -> Script:
    """The script ``lua/<name>.lua`` with its includes expanded (cached per process)."""
    return Script(name, _expand(_read(f"{name}.lua"), set()))
