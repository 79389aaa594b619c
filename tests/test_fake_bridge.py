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

    def counting(self: object, commands: list[list[bytes]]) -> list[object]:
        calls.append(len(commands))
        return original(self, commands)  # type: ignore[arg-type]

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


# Script calls from the backend take the bridge's lean EVALSHA (VirtualTimeConnection.run_commands); each must
# answer as fakeredis' own EVALSHA does on a plain server, errors included.
_EVALSHA_CASES: list[tuple[str, list[bytes]]] = [
    ("return {KEYS[1], KEYS[2], ARGV[1], #KEYS, #ARGV}", [b"2", b"k1", b"k2", b"a1"]),
    ("return redis.call('INCR', KEYS[1])", [b"1", b"counter"]),
    ("return redis.status_reply('FINE')", [b"0"]),
    ("return redis.error_reply('ERR custom failure')", [b"0"]),
    ("return {1, 2.9, 'x', false, {'nested'}}", [b"0"]),
    ("error('boom')", [b"0"]),
    ("return redis.call('SET', 'k', {})", [b"0"]),  # a table argument
    ("return redis.call('HSET', KEYS[1], 'f', 'v')", [b"1", b"counter"]),  # WRONGTYPE inside the script
    ("return ARGV[1]", [b"3", b"only-one"]),  # more keys than arguments
    ("return ARGV[1]", [b"-1", b"x"]),
    ("return ARGV[1]", [b"one", b"x"]),
]


def _lean_outcome(client: object, fields: list[bytes]) -> object:
    pool = client.connection_pool  # type: ignore[attr-defined]
    conn = pool.get_connection()
    try:
        (reply,) = conn.run_commands([fields])
        if isinstance(reply, Exception):
            return ("error", type(reply).__name__, str(reply))
        return ("reply", reply)
    finally:
        pool.release(conn)


def test_script_calls_of_the_backend_answer_as_fakeredis_evalsha_does() -> None:
    ours = make_fake_client(VirtualClock(0))
    plain = fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 2)), lua_modules=set())
    server = ours.connection_pool.connection_kwargs["server"]
    lean = server._queuesim_evalsha
    used: list[bytes] = []

    def spy(sock: object, fields: list[bytes]) -> object:
        used.append(fields[1])
        return lean(sock, fields)

    server._queuesim_evalsha = spy
    for source, rest in _EVALSHA_CASES:
        sha = ours.script_load(source)
        assert plain.script_load(source) == sha
        fields = [b"EVALSHA", sha.encode() if isinstance(sha, str) else sha, *rest]
        try:
            expected: object = ("reply", plain.execute_command(*fields))
        except Exception as exc:
            expected = ("error", type(exc).__name__, str(exc))
        assert _lean_outcome(ours, fields) == expected, source
    assert len(used) == len(_EVALSHA_CASES), "every call took the lean path"
    unknown = [b"EVALSHA", b"0" * 40, b"0"]
    assert _lean_outcome(ours, unknown) == ("error", "NoScriptError", "No matching script. Please use EVAL.")
    assert ours.get("counter") == plain.get("counter") == b"1"


def test_the_lean_script_call_leaves_a_transaction_to_fakeredis() -> None:
    ours = make_fake_client(VirtualClock(0))
    sha = ours.script_load("return redis.call('INCR', KEYS[1])")
    pipe = ours.pipeline(transaction=True)
    pipe.evalsha(sha, 1, "n")
    pipe.evalsha(sha, 1, "n")
    assert pipe.execute() == [1, 2]
    conn = ours.connection_pool.get_connection()
    try:
        conn.send_command("MULTI")
        assert conn.read_response() == b"OK"
        queued = conn.run_commands([[b"EVALSHA", sha.encode() if isinstance(sha, str) else sha, b"1", b"n"]])
        assert queued == [b"QUEUED"], "inside MULTI the call is queued, not run"
        conn.send_command("EXEC")
        assert conn.read_response() == [3]
    finally:
        ours.connection_pool.release(conn)


def test_a_write_inside_a_script_wakes_a_blocked_client_and_breaks_a_watch() -> None:
    import threading

    import redis

    ours = make_fake_client(VirtualClock(0))
    popped: list[object] = []
    blocked = threading.Thread(target=lambda: popped.append(ours.blpop(["jobs"], timeout=10)))
    blocked.start()
    server = ours.connection_pool.connection_kwargs["server"]
    deadline = time.monotonic() + 5
    while not server.dbs[0].condition._waiters and time.monotonic() < deadline:
        time.sleep(0.005)
    started = time.monotonic()
    ours.eval("return redis.call('RPUSH', KEYS[1], 'x')", 1, "jobs")
    blocked.join(timeout=5)
    assert popped == [(b"jobs", b"x")]
    assert time.monotonic() - started < 2, "the script's write woke the blocked client"

    with ours.pipeline() as pipe:
        pipe.watch("watched")
        ours.eval("return redis.call('SET', KEYS[1], 'changed')", 1, "watched")
        pipe.multi()
        pipe.set("watched", "mine")
        try:
            pipe.execute()
            raise AssertionError("the transaction should have failed: its watched key changed")
        except redis.exceptions.WatchError:
            pass
    assert ours.get("watched") == b"changed"


def test_the_first_thread_keeps_its_connection_and_other_threads_share_the_pool() -> None:
    import threading

    from queuesim import Queue, connect

    conn = connect(clock=VirtualClock(0))
    q = Queue("kept", conn)
    q.add("first", {})
    backend = conn.backend
    assert backend._kept is not None
    assert backend._kept[0] == threading.get_ident()
    kept_connection = backend._kept[1]
    ids: list[str] = []

    def producer() -> None:
        for _ in range(100):
            ids.append(q.add("x", {}).id)

    threads = [threading.Thread(target=producer) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(100):
        ids.append(q.add("y", {}).id)
    for t in threads:
        t.join()
    assert len(set(ids)) == 400, "every add got its own id"
    assert q.get_job_counts("wait") == {"wait": 401}
    assert backend._kept[1] is kept_connection, "the calling thread kept the same connection"

    conn.close()  # disconnects the kept connection too; the next call connects it again
    assert q.add("after-close", {}).id == "402"
    assert q.get_job_counts("wait") == {"wait": 402}


def test_the_short_xadd_parser_gives_what_the_general_one_gives() -> None:
    from fakeredis.commands_mixins.streams_mixin import StreamsCommandsMixin

    ours = make_fake_client(VirtualClock(0))  # installs the short parser
    parse = StreamsCommandsMixin._parse_add_trim_args
    general = parse.general  # type: ignore[attr-defined]
    assert getattr(general, "_queuesim", False) is False
    server = ours.connection_pool.connection_kwargs["server"]
    conn = ours.connection_pool.get_connection()
    conn.connect()
    sock = conn._sock
    shapes = [
        (b"*", b"event", b"added"),
        (b"MAXLEN", b"~", b"10000", b"*", b"event", b"added", b"jobId", b"1"),
        (b"maxlen", b"~", b"5", b"*", b"event", b"added"),
        (b"MAXLEN", b"=", b"5", b"*", b"event", b"added"),  # exact trimming: the general parser
        (b"MAXLEN", b"~", b"-1", b"*", b"event", b"added"),  # a negative count: its error
        (b"MAXLEN", b"~", b"x", b"*", b"event", b"added"),
        (b"MAXLEN", b"~", b"99999999999999999999999", b"*", b"e", b"v"),
        (b"NOMKSTREAM", b"*", b"event", b"added"),
        (b"5-1", b"event", b"added"),
        (b"MAXLEN", b"~", b"5", b"LIMIT", b"10", b"*", b"e", b"v"),
    ]

    def outcome(fn: object, args: tuple[bytes, ...]) -> object:
        try:
            return ("options", fn(sock, args, True))  # type: ignore[operator]
        except Exception as exc:
            return ("error", type(exc).__name__, str(exc))

    for args in shapes:
        assert outcome(parse, args) == outcome(general, args), args
    server.config[b"stream-node-max-entries"] = b"7"  # the approximate limit follows the node size setting
    assert outcome(parse, shapes[1]) == outcome(general, shapes[1])
    ours.connection_pool.release(conn)
