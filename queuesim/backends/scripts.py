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

__all__ = ["Script", "encode_arg", "load_script", "resp_command"]

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


def encode_arg(value: Any) -> bytes:
    """One command argument as Redis expects it (bytes; numbers in decimal)."""
    kind = type(value)
    if kind is str:
        return value.encode()
    if kind is int:
        return b"%d" % value
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int) and not isinstance(value, bool):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    raise TypeError(f"cannot send {type(value).__name__} {value!r} to Redis")


def _bulk(arg: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def resp_command(head: bytes, head_count: int, args: list[Any]) -> bytes:
    """A command in the Redis protocol: ``head`` (already encoded bulk strings, ``head_count`` of them)
    followed by ``args``. Packing by hand costs a fraction of redis-py's general packer, which matters
    because every transition is a call with a dozen arguments."""
    parts = [b"*%d\r\n" % (head_count + len(args)), head]
    parts.extend(_bulk(encode_arg(a)) for a in args)
    return b"".join(parts)


class Script:
    """One Lua script, its SHA1, and the call that (re)loads it on NOSCRIPT."""

    __slots__ = ("_field_heads", "_heads", "name", "sha", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self._heads: dict[tuple[str, ...], bytes] = {}
        self._field_heads: dict[tuple[str, ...], list[bytes]] = {}

    def packed(self, keys: list[str], args: list[Any], fixed_args: int = 0) -> bytes:
        """The EVALSHA call as protocol bytes. The command name, SHA, keys and the first ``fixed_args``
        arguments (the same on every call for a queue) are encoded once and reused."""
        fixed = tuple(keys) + tuple(str(a) for a in args[:fixed_args])
        head = self._heads.get(fixed)
        if head is None:
            items = [b"EVALSHA", self.sha.encode(), b"%d" % len(keys), *(encode_arg(x) for x in fixed)]
            head = self._heads[fixed] = b"".join(_bulk(i) for i in items)
        return resp_command(head, 3 + len(fixed), list(args[fixed_args:]))

    def fields(self, keys: list[str], args: list[Any], fixed_args: int = 0) -> list[bytes]:
        """The EVALSHA call as a list of arguments (for a server in this process), sharing the encoded head
        with :meth:`packed`."""
        fixed = tuple(keys) + tuple(str(a) for a in args[:fixed_args])
        head = self._field_heads.get(fixed)
        if head is None:
            head = self._field_heads[fixed] = [b"EVALSHA", self.sha.encode(), b"%d" % len(keys),
                                               *(encode_arg(x) for x in fixed)]
        out = list(head)
        for a in args[fixed_args:]:
            kind = type(a)
            out.append(a.encode() if kind is str else b"%d" % a if kind is int else encode_arg(a))
        return out

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
