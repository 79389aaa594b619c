"""The embedded default: an in-process fakeredis server that follows a queuesim clock.

fakeredis keeps its own notion of "now" for key expiry (PX on locks, the stalled-check lease, the rate
limiter) and for stream entry ids, and it reads it from ``time.time()``. For a simulation in virtual time that
is wrong: a 30 s lock must expire when the *virtual* clock passes 30 s, not after 30 wall seconds. This module is
the bridge, and the only place that knows fakeredis' internals:

* while one of *our* connections executes a command, a context variable holds its clock; the ``time`` module
  seen by fakeredis' command processor and stream model answers from that clock (and from the real time for any
  other fakeredis server in the process);
* fakeredis keeps expiry times as float seconds, so ``now + px / 1000`` sometimes rounds below the exact
  millisecond and a key vanishes 1 ms early; expiry is compared here in whole milliseconds, as Redis does (a key
  lives while ``now <= expiry``);
* fakeredis compiles the script text again on every EVALSHA, hashes it again, and forces a full Lua garbage
  collection after each script; we keep the compiled chunk and the SHA1 per script text and let Lua's
  incremental collector do its normal work;
* fakeredis scans the whole Lua global table before every ``redis.call`` to catch scripts that create globals.
  Our ``redis.call`` skips that scan (a fifth of the cost of a script), works out each command's argument plan
  once, wakes blocked or watching clients only when there are some, and otherwise runs the command as
  fakeredis' own dispatcher does;
* the backend's script calls take a lean EVALSHA (the same steps as fakeredis' general command path, in one
  function) and the first calling thread keeps its connection;
* XADD recognises the two shapes of the engine's events before trying its general option parser.

Tested against the fakeredis range pinned in ``pyproject.toml``.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import time as _real_time
from typing import Any

import fakeredis
import redis
from fakeredis._clients._sync import FakeRedisConnection
from fakeredis._typing import RaiseErrorTypes

from queuesim.clock import Clock

__all__ = ["VirtualTimeConnection", "make_fake_client"]

_ACTIVE_CLOCK: contextvars.ContextVar[Clock | None] = contextvars.ContextVar("queuesim_fake_clock", default=None)


class _ClockedTime:
    """Stands in for the ``time`` module inside fakeredis: ``time()`` follows the active queuesim clock."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_time, name)

    @staticmethod
    def time() -> float:
        clock = _ACTIVE_CLOCK.get()
        if clock is None:
            return _real_time.time()
        # a quarter into the millisecond: fakeredis makes stream ids with int(1000 * t), which must give now_ms
        # exactly (1753 / 1000 * 1000 is 1752.999…), and round(1000 * t) must give it too
        return (clock.now_ms() + 0.25) / 1000.0


class _RememberedSha1:
    """Stands in for ``hashlib`` inside fakeredis' scripting commands, which hash the whole script text again
    on every EVALSHA: the SHA1 of a text is worked out once and remembered (for the last 256 texts)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(hashlib, name)

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def _hexdigest(data: bytes) -> str:
        return hashlib.sha1(data).hexdigest()

    def sha1(self, data: bytes) -> _Digest:
        return _Digest(self._hexdigest(bytes(data)))


class _Digest:
    __slots__ = ("_hex",)

    def __init__(self, hexdigest: str) -> None:
        self._hex = hexdigest

    def hexdigest(self) -> str:
        return self._hex


_installed = False


def _install() -> None:
    """Point fakeredis' command processor and stream model at the clocked time (idempotent)."""
    global _installed
    if _installed:
        return
    from fakeredis._socket import _base as socket_base
    from fakeredis.commands_mixins import scripting_mixin
    from fakeredis.model import _stream as stream_model

    socket_base.time = _ClockedTime()  # type: ignore[assignment]
    stream_model.time = _ClockedTime()  # type: ignore[assignment]
    scripting_mixin.hashlib = _RememberedSha1()  # type: ignore[assignment]
    _compare_expiry_in_ms()
    _parse_common_xadd_first()
    _installed = True


def _compare_expiry_in_ms() -> None:
    """Make fakeredis decide expiry on whole milliseconds (Redis: a key exists while now <= its expiry)."""
    import heapq

    from fakeredis._core._database import Database

    def expired(self: Any, item: Any) -> bool:
        return item.expireat is not None and round(item.expireat * 1000) < round(self.time * 1000)

    def remove_expired(self: Any) -> None:
        heap = self._expiry_heap
        now_ms = round(self.time * 1000)
        while heap and round(heap[0][0] * 1000) < now_ms:
            _, key = heapq.heappop(heap)
            item = self._dict.get(key)
            if item is not None and self.expired(item):
                del self._dict[key]

    Database.expired = expired  # type: ignore[method-assign]
    Database._remove_expired = remove_expired  # type: ignore[method-assign]


def _parse_common_xadd_first() -> None:
    """Let fakeredis' XADD recognise the two shapes every event of the engine has, ``XADD key * field value…``
    and ``XADD key MAXLEN ~ <count> * field value…``, before its general option parser (which tries each of
    XADD's ten options in turn, and costs as much as the rest of the command). Any other shape goes to the
    general parser; the options it returns for these two shapes are the same (``tests/test_fake_bridge.py``
    compares them)."""
    from fakeredis.commands_mixins.streams_mixin import StreamsCommandsMixin, _AddTrimArgs

    general = StreamsCommandsMixin._parse_add_trim_args
    if getattr(general, "_queuesim", False):
        return

    def parse(self: Any, args: tuple[bytes, ...], xadd: bool) -> Any:
        if xadd and args:
            if args[0] == b"*":
                return _AddTrimArgs()
            if (len(args) > 3 and args[3] == b"*" and args[1] == b"~" and args[0].lower() == b"maxlen"
                    and args[2].isdigit() and len(args[2]) < 19):
                node_max_entries = self._stream_node_limits()[0]
                limit = min(100 * node_max_entries, 1000000) if node_max_entries > 0 else 10000
                return _AddTrimArgs(maxlen=int(args[2]), approx=True, limit=limit, id_index=3)
        return general(self, args, xadd)

    parse._queuesim = True  # type: ignore[attr-defined]
    parse.general = general  # type: ignore[attr-defined]
    StreamsCommandsMixin._parse_add_trim_args = parse  # type: ignore[method-assign]


class VirtualTimeConnection(FakeRedisConnection):
    """A fakeredis connection whose commands run at its clock's time."""

    _queuesim_clock: Clock  # set on the per-client subclass made by make_fake_client

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        # fakeredis processes a command synchronously inside sendall(), so the clock is active exactly while
        # the command (or the whole pipeline) executes.
        token = _ACTIVE_CLOCK.set(self._queuesim_clock)
        try:
            super().send_packed_command(command, check_health)
        finally:
            _ACTIVE_CLOCK.reset(token)

    def run_commands(self, commands: list[list[bytes]]) -> list[Any]:
        """Run commands given as lists of arguments, as if they had arrived in the Redis protocol, and return
        their replies in order (an error reply as its exception, in its place, not raised).

        This skips writing the protocol bytes and parsing them back on the server's side, which a script call
        spends a tenth of its time on, and hands script replies back without the reply queue that
        :meth:`read_response` reads.
        """
        if not self._sock:
            self.connect()
        sock: Any = self._sock
        if not self._server.connected or sock._killed:
            raise redis.exceptions.ConnectionError("the embedded server is not reachable")
        evalsha = getattr(self._server, "_queuesim_evalsha", None)
        replies: list[Any] = []
        token = _ACTIVE_CLOCK.set(self._queuesim_clock)
        try:
            for fields in commands:
                if evalsha is not None and fields[0] == b"EVALSHA":
                    reply = evalsha(sock, fields)
                else:
                    sock._process_command(fields)
                    reply = _QUEUED
                if reply is _QUEUED:  # fakeredis' own path: the reply waits in the connection's queue
                    try:
                        replies.append(self.read_response())
                    except redis.exceptions.ResponseError as exc:
                        replies.append(exc)
                    continue
                if isinstance(reply, RaiseErrorTypes):
                    if not isinstance(reply, redis.exceptions.ResponseError):
                        raise reply
                    replies.append(reply)
                else:
                    replies.append(self._decode(reply))
        finally:
            _ACTIVE_CLOCK.reset(token)
        return replies


#: what the lean EVALSHA answers when it handed a call to fakeredis' own path, whose reply is queued
_QUEUED = object()


class _CompiledScripts:
    """Wraps fakeredis' Lua runtime so a script text is compiled once, not on every call."""

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime
        self._compiled: dict[bytes, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def execute(self, script: bytes | str) -> Any:
        if script == "collectgarbage()":
            return None  # Lua's incremental collector runs anyway; a full collection per call costs ~1 ms
        key = script if isinstance(script, bytes) else script.encode()
        fn = self._compiled.get(key)
        if fn is None:
            fn = self._compiled[key] = self._runtime.compile(key)
        return fn()


def _install_fast_redis_call(server: Any) -> None:
    """Replace ``redis.call`` in the server's Lua runtime with a leaner dispatcher.

    It runs each command the way fakeredis' own dispatcher does for a script (same argument checks, same
    command functions, same write-back of the touched keys and the same notifications), minus what cannot apply
    here: the per-call scan of Lua's globals, the Dragonfly variants, and the final self-check of the reply's
    type. The argument plan of a command (which arguments are keys, which are parsed as numbers) is worked out
    once per command and argument count instead of on every call.
    """
    from fakeredis import _msgs as msgs
    from fakeredis._commands import COMMANDS_WITH_SUB, SUPPORTED_COMMANDS, Key
    from fakeredis._core import CommandItem
    from fakeredis._core._database import Item
    from fakeredis._helpers import SimpleError, decode_command_bytes
    from fakeredis._socket._resp import convert_to_resp2
    from fakeredis.model import Hash

    runtime = server._lua_runtime
    current = server._lua_current_socket
    subscribers, psubscribers = server.subscribers, server.psubscribers  # live containers, read at each call
    # command name as the script wrote it -> (its Signature, its argument plans by argument count, whether
    # scripts may not call it), or None for the slow path
    commands: dict[bytes, Any] = {}
    plain_replies = {bytes, int, type(None)}  # replies that RESP2 conversion leaves as they are
    publishes_subkey_events = server.version >= (8, 8)  # hash-field notifications exist from Redis 8.8 on
    table_from = runtime.table_from

    def to_arg(value: Any) -> bytes:
        kind = type(value)
        if kind is bytes:
            return value
        if kind is int and -10**17 < value < 10**17:  # the digits "%.17g" would give, sooner
            return b"%d" % value
        if kind is int or kind is float:
            return f"{value:.17g}".encode()
        raise SimpleError("ERR Lua redis lib command arguments must be strings or integers")

    def plan_for(sig: Any, sig_plans: dict[int, Any], args: list[bytes], version: Any) -> Any:
        """Which arguments are keys, which are parsed as numbers, and the command's flags (kept per command and
        argument count in ``sig_plans``)."""
        sig.check_arity(args, version)  # raises for a wrong count; a plan is kept only for a valid one
        types = list(sig.fixed)
        types.extend(sig.repeat[i % len(sig.repeat)] for i in range(len(args) - len(types)))
        first = [(i, t, isinstance(t, Key)) for i, t in enumerate(types)
                 if (isinstance(t, Key) and t.missing_return is not Key.UNSPECIFIED)
                 or (not isinstance(t, Key) and t is not bytes)]
        keys = [(i, t) for i, t in enumerate(types) if isinstance(t, Key)]
        plan = sig_plans[len(args)] = (
            first, keys, msgs.FLAG_DO_NOT_CREATE in sig.flags, msgs.FLAG_SKIP_CONVERT_TO_RESP2 not in sig.flags,
            msgs.FLAG_LEAVE_EMPTY_VAL not in sig.flags)
        return plan

    def lookup(db: Any, key: bytes) -> Any:
        """``db.get(key)``: the stored item, or None (an expired key is removed on the way, as fakeredis does)."""
        item = db._dict.get(key)
        if item is not None and item.expireat is not None and db.expired(item):
            del db._dict[key]
            return None
        return item

    def writeback(command_item: Any, remove_empty: bool) -> None:
        """fakeredis' ``CommandItem.writeback``, which also wakes blocked and watching clients after every
        change; here they are woken only when there are some."""
        if not command_item._modified:
            command_item.writeback(remove_empty_val=remove_empty)  # at most an expiry to store
            return
        db = command_item.db
        key = command_item.key
        if db._watches or db._change_callbacks or db.condition._waiters:
            db.notify_watch(key)
        value = command_item._value
        stored = db._dict
        if type(value) is not bytes and (value is None or (not value and remove_empty)):
            stored.pop(key, None)
            return
        item = stored.get(key)
        if item is None:
            item = stored[key] = Item(None)
        item.value = value
        item.expireat = expireat = command_item._expireat
        if expireat is not None:
            db.schedule_expiry(key, expireat)

    def call(op: bytes, *args: Any) -> Any:
        """``redis.call``: fakeredis' ``_run_command`` for a command called from a script on a Redis-type
        server, in one function (it runs some twenty-five times per job)."""
        sock = current[0]
        known = commands.get(op, False)
        if known is False:
            name = decode_command_bytes(op)
            sig = None if name in COMMANDS_WITH_SUB else SUPPORTED_COMMANDS.get(name)
            if sig is not None and sock._server.server_type not in sig.server_types:
                sig = None
            known = commands[op] = None if sig is None else (sig, {}, msgs.FLAG_NO_SCRIPT in sig.flags)
        if known is None or sock._pubsub:
            return slow_call(sock, op, args)
        sig, sig_plans, refused = known
        arglist = [a if type(a) is bytes else to_arg(a) for a in args]
        items: list[Any] = []
        sock._subkey_events = []
        remove_empty = True
        try:
            plan = sig_plans.get(len(arglist))
            if plan is None:
                plan = plan_for(sig, sig_plans, arglist, sock.version)
            if refused:
                raise SimpleError(msgs.COMMAND_IN_SCRIPT_MSG)
            first, keys, no_create, to_resp2, remove_empty = plan
            db = sock._db
            stored = db._dict
            short = False
            for i, t, is_key in first:  # in argument order, as fakeredis checks them
                if is_key:
                    if lookup(db, arglist[i]) is None:
                        result = t.missing_return
                        short = True
                        break
                else:
                    arglist[i] = t.decode(arglist[i])
            if not short:
                for i, t in keys:
                    key = arglist[i]
                    item = stored.get(key)
                    if item is not None and item.expireat is not None:
                        item = lookup(db, key)
                    kind = t.type_
                    if kind is not None and item is not None and type(item.value) is not kind:
                        raise SimpleError(msgs.WRONGTYPE_MSG)
                    default = None
                    if not no_create and kind is not None and item is None and kind is not bytes:
                        default = kind()
                    arglist[i] = command_item = CommandItem(key, db, item, default=default)
                    items.append(command_item)
                result = getattr(sock, sig.func_name)(*arglist)
                if to_resp2 and type(result) not in plain_replies and sock._resp_version == 2:
                    result = convert_to_resp2(result)
        except SimpleError as exc:
            result = exc
        for command_item in items:
            if command_item._modified or command_item._expireat_modified:
                writeback(command_item, remove_empty)
        if subscribers or psubscribers:  # (fakeredis' own first test, without the call)
            sock._keyspace_notifications(items, sig.name.encode())
        if sock._subkey_events or publishes_subkey_events:
            sock._subkey_notifications(items)
        else:  # nothing is published before Redis 8.8; the hashes' expired fields are emptied, as fakeredis does
            for command_item in items:
                if type(command_item._value) is Hash:
                    command_item._value.take_expired_fields()
        kind = type(result)
        return result if kind is bytes or kind is int else to_lua(sock, result)

    def to_lua(sock: Any, result: Any) -> Any:
        """A command's reply as Lua sees it: fakeredis' conversion, with a short way for lists and nil."""
        if type(result) is list:
            return table_from([x if type(x) is bytes or type(x) is int else to_lua(sock, x) for x in result])
        if result is None:
            return False
        return sock._convert_redis_result(runtime, result)

    def slow_call(sock: Any, op: bytes, args: tuple[Any, ...]) -> Any:
        """Everything else (subcommands, unknown commands, a subscribed connection) takes fakeredis' own path."""
        cmd = decode_command_bytes(op)
        if cmd in COMMANDS_WITH_SUB and args:
            cmd += " " + decode_command_bytes(to_arg(args[0]))
            args = args[1:]
        func, slow_sig = sock._name_to_func(cmd)
        if func is None:
            raise SimpleError("ERR Wrong number of args calling Redis command from script")
        result = sock._run_command(func, slow_sig, [to_arg(a) for a in args], True)
        return sock._convert_redis_result(runtime, result)

    runtime.globals()[b"redis"][b"call"] = call


def _install_fast_evalsha(server: Any) -> None:
    """Give the server a leaner EVALSHA for :meth:`VirtualTimeConnection.run_commands`.

    fakeredis runs a script call through its general command path: look the command up, check it against its
    signature, run ``eval`` (which hashes nothing, thanks to :class:`_RememberedSha1`, but builds the KEYS and
    ARGV tables, runs the script, scans Lua's globals and converts the reply), then shape the reply. Here the
    same steps run in the same order in one function (the fakeredis simulation got 4.5 % faster). What
    differs: the scan for globals a script created is left out (every script here is ours, and the tests run
    them on a real Redis, which refuses such scripts outright). Calls the lean path cannot serve the same way
    (a connection inside MULTI, in subscriber mode or with replies switched off, a server that is not a Redis)
    take fakeredis' own.
    """
    from fakeredis import _msgs as msgs
    from fakeredis._helpers import SimpleError
    from fakeredis._socket._resp import convert_to_resp2
    from fakeredis.commands_mixins.scripting_mixin import LUA_MODULE, _get_lua_bad_command_arg_msg

    if server.server_type != "redis":
        return
    lua_error = LUA_MODULE.LuaError
    lua_type = LUA_MODULE.lua_type

    def from_lua(sock: Any, value: Any, nested: bool) -> Any:
        """A script's reply as the client gets it: fakeredis' conversion, with a short way for the plain
        arrays and strings that every script here returns (tables with ``ok``, ``err``, ``double`` or ``map``
        and other values take fakeredis' own)."""
        if type(value) is bytes:
            return value
        if (lua_type(value) != "table" or value[b"ok"] is not None or value[b"err"] is not None
                or value[b"double"] is not None or value[b"map"] is not None):
            return sock._convert_lua_result(value, nested)
        items = []
        index = 1
        while (item := value[index]) is not None:
            items.append(item if type(item) is bytes else from_lua(sock, item, True))
            index += 1
        return items

    def evalsha(sock: Any, fields: list[bytes]) -> Any:
        if (sock._queueing or sock._pubsub or sock._reply_off or sock._reply_skip or sock._reply_skip_next
                or len(fields) < 3):
            sock._process_command(fields)
            return _QUEUED
        sha1 = fields[1]
        try:
            server.acl.validate_command(sock._client_info.user, sock._client_info, fields)
            with server.lock:
                # read from the server at each call: SCRIPT FLUSH, for one, puts a new script cache in place
                closed = server.closed_sockets
                while closed:  # connections closed since the last command (fakeredis' own housekeeping)
                    closed_sock = closed.pop()()
                    if closed_sock:
                        closed_sock._cleanup(server)
                now = _ClockedTime.time()
                for db in server.dbs.values():
                    db.time = now
                try:
                    numkeys = int(fields[2])
                except ValueError:
                    raise SimpleError(msgs.INVALID_INT_MSG) from None
                keys_and_args = fields[3:]
                if numkeys > len(keys_and_args):
                    raise SimpleError(msgs.TOO_MANY_KEYS_MSG)
                if numkeys < 0:
                    raise SimpleError(msgs.NEGATIVE_KEYS_MSG)
                script = server.script_cache.get(sha1)
                if script is None:
                    raise SimpleError(msgs.NO_MATCHING_SCRIPT_MSG)
                runtime = server._lua_runtime
                server._lua_current_socket[0] = sock
                sock._script_resp = 2
                caller_fieldsets, sock._fieldsets = sock._fieldsets, {}
                server._lua_set_keys_argv(runtime.table_from(keys_and_args[:numkeys]),
                                          runtime.table_from(keys_and_args[numkeys:]))
                try:
                    reply = runtime.execute(script)
                except SimpleError as exc:
                    message = exc.value
                    if message == msgs.LUA_COMMAND_ARG_MSG:
                        message = _get_lua_bad_command_arg_msg(server.server_type, sock.version)
                    elif sock.version < (7,):
                        message = msgs.SCRIPT_ERROR_MSG.format(sha1.decode(), message)
                    raise SimpleError(message) from None
                except lua_error as exc:
                    raise SimpleError(msgs.SCRIPT_ERROR_MSG.format(sha1.decode(), exc)) from None
                finally:
                    sock._script_resp = None
                    sock._fieldsets = caller_fieldsets
                result = from_lua(sock, reply, False)
                if sock._resp_version == 2:
                    result = convert_to_resp2(result)
        except SimpleError as exc:
            result = exc
        return sock._decode_result(result)

    server._queuesim_evalsha = evalsha


def make_fake_client(clock: Clock, server: fakeredis.FakeServer | None = None, db: int = 0) -> redis.Redis:
    """A redis-py client on an in-process fakeredis server whose expiries follow ``clock``.

    Args:
        clock: the clock that fakeredis' expiry and stream ids must follow.
        server: share a server between clients (several queues, producers and workers); a new one by default.
        db: the database number.
    """
    _install()
    server = server if server is not None else fakeredis.FakeServer(version=(7, 2))
    client = fakeredis.FakeRedis(
        server=server,
        db=db,
        lua_modules=set(),
        connection_class=type("ClockedConnection", (VirtualTimeConnection,), {"_queuesim_clock": clock}),
    )
    # Create the server's Lua runtime once, then put the compile cache in front of it.
    client.eval("return 1", 0)
    srv: Any = server
    if not isinstance(srv._lua_runtime, _CompiledScripts):
        _install_fast_redis_call(srv)
        srv._lua_runtime = _CompiledScripts(srv._lua_runtime)
        _install_fast_evalsha(srv)
    return client
