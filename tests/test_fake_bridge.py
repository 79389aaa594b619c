"""The virtual-clock bridge to fakeredis: expiries and stream ids follow the injected clock."""

from __future__ import annotations

import time

import fakeredis

from queuesim import VirtualClock
from queuesim.backends.fake import make_fake_client


def test_px_expiry_follows_the_virtual_clock_not_wall_time() -> None:
    clock = VirtualClock(1_000_000)
    r = make_fake_client(clock)
    r.set("lock", "token", px=30_000)
    time.sleep(0.01)  # wall time passing changes nothing
    assert r.pttl("lock") == 30_000
    clock.advance(29_999)
    assert r.get("lock") == b"token"
    clock.advance(2)
    assert r.get("lock") is None


def test_stream_ids_carry_virtual_milliseconds() -> None:
    clock = VirtualClock(1_234_000)
    r = make_fake_client(clock)
    first = r.xadd("s", {"a": 1})
    clock.advance(5)
    second = r.xadd("s", {"a": 2})
    assert first == b"1234000-0"
    assert second == b"1234005-0"


def test_expiry_inside_a_lua_script_uses_the_virtual_time() -> None:
    clock = VirtualClock(0)
    r = make_fake_client(clock)
    r.eval("redis.call('SET', KEYS[1], 'x', 'PX', 100)", 1, "k")
    clock.advance(101)
    assert r.eval("return redis.call('EXISTS', KEYS[1])", 1, "k") == 0


def test_two_clients_on_one_server_each_follow_their_clock_while_they_run() -> None:
    server = fakeredis.FakeServer()
    clock = VirtualClock(0)
    a = make_fake_client(clock, server)
    b = make_fake_client(clock, server)
    a.set("k", 1, px=10)
    clock.advance(11)
    assert b.get("k") is None


def test_other_fakeredis_servers_keep_wall_time() -> None:
    clock = VirtualClock(0)
    make_fake_client(clock).set("k", 1)
    plain = fakeredis.FakeRedis()
    plain.set("k", 1, px=60_000)
    ttl = plain.pttl("k")
    assert 59_000 < ttl <= 60_000  # a virtual time of 0 would make this key look long expired


def test_a_script_is_compiled_once_per_text() -> None:
    clock = VirtualClock(0)
    r = make_fake_client(clock)
    runtime = r.connection_pool.connection_kwargs["server"]._lua_runtime
    before = len(runtime._compiled)
    for _ in range(5):
        r.eval("return 41 + 1", 0)
    assert len(runtime._compiled) == before + 1
    assert r.eval("return 41 + 1", 0) == 42


# Each snippet runs on the bridge's server (our redis.call dispatcher) and on a plain fakeredis server (its own
# dispatcher); replies, errors and the keys left behind must be the same.
_SCRIPTS = [
    "redis.call('SET', 's', 'v'); return redis.call('GET', 's')",
    "return redis.call('INCR', 'n')",
    "redis.call('SET', 's', 'v'); return redis.call('HSET', 's', 'f', 'x')",  # WRONGTYPE
    "return redis.call('GET')",  # wrong number of arguments
    "return redis.call('NOSUCHCOMMAND', 'a')",
    "return redis.call('LRANGE', 'missing', 0, -1)",  # a missing key answers at once
    "return redis.call('HGETALL', 'missing')",
    "redis.call('ZADD', 'z', 1.5, 'a'); return redis.call('ZSCORE', 'z', 'a')",  # a double as a string
    "return redis.call('ZINCRBY', 'z', 2, 'b')",
    "return redis.call('ZADD', 'z', 'notanumber', 'a')",  # a bad number
    "redis.call('HSET', 'h', 'a', 1, 'b', 2); return redis.call('HMGET', 'h', 'a', 'b', 'c')",
    "redis.call('RPUSH', 'l', 'x'); redis.call('LREM', 'l', 0, 'x'); return redis.call('EXISTS', 'l')",
    "redis.call('SET', 'e', 1, 'PX', 5000); return redis.call('PTTL', 'e')",
    "local id = redis.call('XADD', 'x', '*', 'event', 'added'); redis.call('XTRIM', 'x', 'MAXLEN', '~', 10);"
    " return redis.call('XLEN', 'x')",
    "return redis.call('OBJECT', 'ENCODING', 'h')",  # a command with a subcommand
    "return redis.call('EVAL', 'return 1', 0)",  # not allowed in a script
    "return redis.pcall('INCR', 's')",  # pcall keeps fakeredis' own path
    "return redis.call('SET', 'k', 3.25)",  # a Lua number argument
    "return redis.call('HINCRBY', 'h', 'a', 'x')",
    "redis.call('SADD', 'set', 'a', 'b'); redis.call('SREM', 'set', 'a'); return redis.call('SCARD', 'set')",
]


def _outcome(client: fakeredis.FakeRedis, script: str) -> object:
    try:
        return ("reply", client.eval(script, 0))
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


def test_scripts_dispatched_by_the_bridge_answer_as_fakeredis_itself_does() -> None:
    clock = VirtualClock(1_000_000)
    ours = make_fake_client(clock)
    plain = fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 2)), lua_modules=set())
    for script in _SCRIPTS:
        assert _outcome(ours, script) == _outcome(plain, script), script
    for key in sorted(set(ours.keys()) | set(plain.keys())):
        kind = ours.type(key)
        assert kind == plain.type(key), key
        dump = {b"string": "get", b"hash": "hgetall", b"list": "lrange", b"set": "smembers", b"zset": "zrange",
                b"stream": "xlen"}[kind]
        args: tuple[object, ...] = (0, -1) if dump in ("lrange", "zrange") else ()
        assert getattr(ours, dump)(key, *args) == getattr(plain, dump)(key, *args), key


def test_script_calls_reach_the_embedded_server_as_argument_lists_and_fail_cleanly_when_it_is_down() -> None:
    import pytest
    import redis

    from queuesim import Queue, connect

    conn = connect(clock=VirtualClock(0))
    q = Queue("direct", conn)
    pool = conn.client.connection_pool
    calls: list[int] = []
    original = pool.connection_class.run_commands

    def counting(self: object, commands: list[list[bytes]]) -> None:
        calls.append(len(commands))
        original(self, commands)  # type: ignore[arg-type]

    pool.connection_class.run_commands = counting  # type: ignore[method-assign]
    try:
        q.add("first", {})  # loads the script (NOSCRIPT, then again)
        calls.clear()
        job = q.add("a", {"n": 1})
        assert calls == [1], "the add went to the server as one argument list, not as protocol bytes"
        assert q.get_job(job.id) is not None
        assert conn.fake_server is not None
        conn.fake_server.connected = False
        with pytest.raises(redis.exceptions.ConnectionError):
            q.add("b", {})
        conn.fake_server.connected = True
        assert q.get_job_counts("wait") == {"wait": 2}, "the failed add left nothing behind"
    finally:
        pool.connection_class.run_commands = original  # type: ignore[method-assign]
