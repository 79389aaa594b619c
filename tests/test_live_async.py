"""The live worker with an ``async`` processor: one event loop, jobs as tasks, and on a real Redis one pipelined
connection for the fetches and finishes (``queuesim.backends.pipelined``)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from conftest import wait_until

import queuesim
from queuesim import Job, Queue, UnrecoverableError, Worker
from queuesim.backends.base import FetchArgs
from queuesim.backends.pipelined import PipelinedConnection, connection_settings
from queuesim.backends.redis_backend import PipelinedTransitions, RedisBackend
from queuesim.backends.scripts import resp_command


def command(*args: Any) -> bytes:
    return resp_command(b"", 0, list(args))


def need_redis_server() -> None:
    """Skip (fail under CI=true) when ``redis-server`` is not on PATH: the test starts a private one."""
    import shutil

    from conftest import IN_CI

    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("CI=true needs redis-server on PATH for this test")
        pytest.skip("redis-server is not on PATH")


class Overlap:
    """Counts how many jobs run at once, and the most that ever did."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def around(self, seconds: float) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(seconds)
        self.running -= 1


@pytest.fixture(params=["fakeredis", "memory", pytest.param("redis", marks=pytest.mark.real_redis)])
def conn(request: pytest.FixtureRequest) -> Iterator[queuesim.Connection]:
    """A wall-clock connection on each backend (a live worker needs wall time)."""
    if request.param == "fakeredis":
        c = queuesim.connect()
    elif request.param == "memory":
        c = queuesim.connect("memory://")
    else:
        c = queuesim.connect(request.getfixturevalue("redis_url"))
    yield c
    c.close()


@pytest.fixture
def queue(conn: queuesim.Connection) -> Iterator[Queue]:
    q = Queue(f"async-{uuid.uuid4().hex[:8]}", conn)
    yield q
    q.obliterate(force=True)


# --- the pipelined connection ---------------------------------------------------------------------------------


@pytest.mark.real_redis
def test_many_callers_in_flight_each_get_their_own_replies_in_order(redis_url: str) -> None:
    settings = connection_settings(redis.Redis.from_url(redis_url))
    assert settings is not None
    key = f"pipe-{uuid.uuid4().hex[:8]}"

    async def main() -> list[Any]:
        pipe = PipelinedConnection(settings)
        try:
            calls = []
            for i in range(300):
                if i % 3 == 0:  # two commands in one packet: both replies come back to this caller
                    calls.append(pipe.send(command("ECHO", f"a{i}") + command("ECHO", f"b{i}"), 2))
                elif i % 3 == 1:
                    calls.append(pipe.send(command("INCR", key), 1))
                else:  # an error reply stays with its own caller
                    calls.append(pipe.send(command("HSET", key, "f", "v"), 1))
            return list(await asyncio.gather(*calls))
        finally:
            pipe.close()

    replies = asyncio.run(main())
    redis.Redis.from_url(redis_url).delete(key)
    counts = []
    for i, reply in enumerate(replies):
        if i % 3 == 0:
            assert reply == [f"a{i}".encode(), f"b{i}".encode()]
        elif i % 3 == 1:
            counts.append(reply[0])
        else:
            assert isinstance(reply[0], redis.exceptions.ResponseError)
            assert "WRONGTYPE" in str(reply[0])
    assert counts == list(range(1, 101)), "the INCRs ran in the order they were sent"


@pytest.mark.real_redis
def test_the_connection_uses_the_urls_database_and_comes_back_after_the_server_drops_it(redis_url: str) -> None:
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    client = redis.Redis.from_url(f"{base}/7")
    settings = connection_settings(client)
    assert settings is not None
    assert settings["db"] == 7
    key = f"pipe-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[Any, Exception | None, Any]:
        pipe = PipelinedConnection(settings)
        try:
            await pipe.send(command("SET", key, "here"), 1)
            (my_id,) = await pipe.send(command("CLIENT", "ID"), 1)
            blocked = asyncio.ensure_future(pipe.send(command("BLPOP", f"{key}:none", 5), 1))
            await asyncio.sleep(0.1)
            client.client_kill_filter(_id=my_id)
            lost: Exception | None = None
            try:
                await asyncio.wait_for(blocked, 3)
            except redis.exceptions.ConnectionError as exc:
                lost = exc
            await asyncio.sleep(0.05)
            again = await pipe.send(command("GET", key), 1)
            return my_id, lost, again
        finally:
            pipe.close()

    try:
        _, lost, again = asyncio.run(main())
        assert client.get(key) == b"here", "the SET went to the URL's database"
        assert isinstance(lost, redis.exceptions.ConnectionError), "a caller waiting on a dropped connection fails"
        assert again == [b"here"], "the next call connected again (and selected the database again)"
    finally:
        client.delete(key)


def test_the_embedded_server_and_the_memory_backend_have_no_pipelined_connection() -> None:
    fake = queuesim.connect()
    assert isinstance(fake.backend, RedisBackend)
    assert fake.backend.pipelined() is None
    assert queuesim.connect("memory://").backend.pipelined() is None


@pytest.mark.real_redis
def test_pipelined_transitions_load_the_scripts_again_after_a_script_flush(redis_url: str) -> None:
    conn = queuesim.connect(redis_url)
    q = Queue(f"async-{uuid.uuid4().hex[:8]}", conn)
    job = q.add("j", {"n": 1})
    conn.client.script_flush()
    hot = conn.backend.pipelined()
    assert isinstance(hot, PipelinedTransitions)
    w = Worker(q)

    async def main() -> Any:
        try:
            args = w._fetch_args()
            return await hot.move_to_active(q.name, args), args
        finally:
            hot.close()

    result, args = asyncio.run(main())
    assert result.job_id == job.id
    assert str(q.get_job_state(job.id)) == "active"
    assert conn.client.get(q.keys.job(job.id) + ":lock") == args.token.encode()
    q.obliterate(force=True)
    conn.close()


# --- the async live worker ------------------------------------------------------------------------------------


def drain_over_the_pipelined_connection(q: Queue, total: int, concurrency: int) -> None:
    """Run an async worker until ``total`` jobs completed (each returns its ``n``, if any) and check that it
    used the pipelined connection."""

    async def process(job: Job) -> Any:
        await asyncio.sleep(0)
        return job.data.get("n")

    worker = Worker(q, process, concurrency=concurrency, drain_delay_s=0.2).start()
    try:
        assert wait_until(lambda: q.get_job_counts("completed")["completed"] == total)
        assert isinstance(worker._hot, PipelinedTransitions)
    finally:
        worker.close()


def test_an_async_worker_runs_every_job_once_with_jobs_overlapping(queue: Queue) -> None:
    total = 120
    queue.add_bulk([("j", {"n": i}) for i in range(total)])
    overlap = Overlap()
    seen: list[int] = []

    async def process(job: Job) -> int:
        await overlap.around(0.005)
        seen.append(job.data["n"])
        return job.data["n"] * 2

    worker = Worker(queue, process, concurrency=10, drain_delay_s=0.2).start()
    try:
        assert wait_until(lambda: queue.get_job_counts("completed")["completed"] == total, 10.0)
    finally:
        worker.close()
    assert sorted(seen) == list(range(total)), "each job ran exactly once"
    assert 2 <= overlap.peak <= 10, f"jobs overlapped, never more than the concurrency (peak {overlap.peak})"
    assert sorted(j.return_value for j in queue.get_completed()) == [2 * i for i in range(total)]
    assert queue.get_job_counts("active", "wait") == {"active": 0, "wait": 0}


@pytest.mark.real_redis
def test_on_a_real_redis_the_async_worker_uses_one_pipelined_connection(redis_url: str) -> None:
    conn = queuesim.connect(redis_url)
    q = Queue(f"async-{uuid.uuid4().hex[:8]}", conn)
    q.add_bulk([("j", {}) for _ in range(50)])

    try:
        drain_over_the_pipelined_connection(q, 50, concurrency=8)
    finally:
        q.obliterate(force=True)
        conn.close()


def test_an_async_worker_retries_fails_for_good_and_then_goes_on_with_the_next_job(queue: Queue) -> None:
    flaky = queue.add("flaky", {}, attempts=2)
    doomed = queue.add("doomed", {}, attempts=5)
    after = [queue.add("after", {"n": i}) for i in range(3)]
    tries: dict[str, int] = {}

    async def process(job: Job) -> str:
        tries[job.name] = tries.get(job.name, 0) + 1
        if job.name == "flaky" and job.attempts_made == 0:
            raise RuntimeError("first attempt fails")
        if job.name == "doomed":
            raise UnrecoverableError("never retried")
        return "ok"

    worker = Worker(queue, process, concurrency=1, drain_delay_s=0.2).start()
    try:
        assert wait_until(lambda: queue.get_job_counts("completed")["completed"] == 4)
    finally:
        worker.close()
    assert tries == {"flaky": 2, "doomed": 1, "after": 3}
    j = queue.get_job(flaky.id)
    assert j is not None
    assert j.attempts_made == 2
    assert j.stacktrace
    assert "first attempt fails" in j.stacktrace[0]
    d = queue.get_job(doomed.id)
    assert d is not None
    assert str(queue.get_job_state(doomed.id)) == "failed"
    assert d.failed_reason == "never retried"
    assert all(str(queue.get_job_state(a.id)) == "completed" for a in after)


def test_an_async_attempt_past_its_timeout_fails_with_a_clear_reason(queue: Queue) -> None:
    job = queue.add("slow", {}, timeout=100, attempts=1)

    async def slow(job: Job) -> None:
        await asyncio.sleep(5)

    worker = Worker(queue, slow, drain_delay_s=0.2).start()
    try:
        assert wait_until(lambda: queue.get_job_counts("failed")["failed"] == 1)
    finally:
        worker.close()
    failed = queue.get_job(job.id)
    assert failed is not None
    assert failed.failed_reason == f"job {job.id} timed out after 100 ms"


def test_graceful_close_waits_for_running_async_jobs_and_force_close_abandons_them(queue: Queue) -> None:
    first = queue.add("a", {})

    async def process(job: Job) -> str:
        await asyncio.sleep(0.3)
        return "finished"

    worker = Worker(queue, process, drain_delay_s=0.2).start()
    assert wait_until(lambda: str(queue.get_job_state(first.id)) == "active")
    worker.close()
    assert str(queue.get_job_state(first.id)) == "completed", "a graceful close let the running job finish"

    second = queue.add("b", {})

    async def endless(job: Job) -> None:
        await asyncio.sleep(60)

    worker = Worker(queue, endless, drain_delay_s=0.2).start()
    assert wait_until(lambda: str(queue.get_job_state(second.id)) == "active")
    started = time.monotonic()
    worker.close(force=True)
    assert time.monotonic() - started < 3
    assert str(queue.get_job_state(second.id)) == "active", "abandoned: its lock lapses, the stalled check recovers it"
    assert worker.active == {}


def test_raising_the_concurrency_of_a_running_async_worker_lets_more_jobs_run(queue: Queue) -> None:
    queue.add_bulk([("j", {}) for _ in range(8)])
    running = 0
    release = asyncio.Event()
    loop_of_worker: list[asyncio.AbstractEventLoop] = []

    async def process(job: Job) -> None:
        nonlocal running
        loop_of_worker[:] = [asyncio.get_running_loop()]
        running += 1
        await release.wait()
        running -= 1

    worker = Worker(queue, process, concurrency=2, drain_delay_s=0.2).start()
    try:
        assert wait_until(lambda: running == 2)
        time.sleep(0.2)
        assert running == 2, "never more than the concurrency"
        worker.concurrency = 5
        assert wait_until(lambda: running == 5)
        loop_of_worker[0].call_soon_threadsafe(release.set)
        assert wait_until(lambda: queue.get_job_counts("completed")["completed"] == 8)
    finally:
        if loop_of_worker:
            loop_of_worker[0].call_soon_threadsafe(release.set)
        worker.close()


def test_an_async_worker_keeps_to_the_rate_limiter(queue: Queue) -> None:
    queue.add_bulk([("j", {}) for _ in range(9)])
    starts: list[float] = []

    async def process(job: Job) -> None:
        starts.append(time.monotonic())

    worker = Worker(queue, process, concurrency=9, limiter={"max": 3, "duration": 400}, drain_delay_s=0.2).start()
    try:
        assert wait_until(lambda: queue.get_job_counts("completed")["completed"] == 9)
    finally:
        worker.close()
    starts.sort()
    # three windows of 400 ms: the 4th and the 7th start wait for a new window
    assert starts[3] - starts[0] >= 0.3
    assert starts[6] - starts[0] >= 0.7


def test_an_async_job_longer_than_its_lock_keeps_it_renewed_and_is_not_stalled(queue: Queue) -> None:
    job = queue.add("long", {})
    stalled: list[str] = []

    async def process(job: Job) -> str:
        await asyncio.sleep(1.0)
        return "done"

    # a 300 ms lock renewed every 150 ms; the stalled check runs every 100 ms
    worker = Worker(queue, process, lock_duration=300, stalled_interval=100, drain_delay_s=0.2)
    worker.on("stalled", lambda job_id, prev: stalled.append(job_id))
    worker.start()
    try:
        assert wait_until(lambda: str(queue.get_job_state(job.id)) == "completed")
    finally:
        worker.close()
    assert stalled == []
    done = queue.get_job(job.id)
    assert done is not None
    assert done.attempts_made == 1
    assert done.return_value == "done"


def test_a_paused_async_worker_takes_no_jobs_until_resumed(queue: Queue) -> None:
    ran: list[str] = []

    async def process(job: Job) -> None:
        ran.append(job.id)

    worker = Worker(queue, process, concurrency=4, drain_delay_s=0.2).start()
    try:
        worker.pause()
        job = queue.add("j", {})
        time.sleep(0.4)
        assert ran == []
        assert str(queue.get_job_state(job.id)) == "waiting"
        worker.resume()
        assert wait_until(lambda: ran == [job.id])
    finally:
        worker.close()


def test_pause_waits_for_a_fetch_already_under_way(queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fetch that passed the pause check just before pause() may still take a job: pause() waits for it and
    for the job it took, so that no job starts after pause() returns (BullMQ's pause waits for the jobs under
    way too)."""
    ran: list[str] = []

    async def process(job: Job) -> None:
        ran.append(job.id)

    worker = Worker(queue, process, concurrency=1, drain_delay_s=0.2)
    under_way, go_on = threading.Event(), threading.Event()
    fetch_args = worker._fetch_args

    def held_first(*args: Any) -> FetchArgs:
        # the first fetch has passed the pause check; it is held here, before it reaches the store
        if not under_way.is_set():
            under_way.set()
            go_on.wait(5)
        return fetch_args(*args)

    monkeypatch.setattr(worker, "_fetch_args", held_first)
    worker.start()
    try:
        assert under_way.wait(5)
        pausing = threading.Thread(target=worker.pause)
        pausing.start()
        pausing.join(0.3)
        assert pausing.is_alive()  # waiting for the fetch under way
        first = queue.add("j", {})
        go_on.set()
        pausing.join(5)
        assert not pausing.is_alive()
        assert ran == [first.id]  # the held fetch took the job, which ran before pause() returned
        second = queue.add("j", {})
        time.sleep(0.4)
        assert ran == [first.id]
        assert str(queue.get_job_state(second.id)) == "waiting"
        worker.resume()
        assert wait_until(lambda: ran == [first.id, second.id])
    finally:
        go_on.set()
        worker.close()


@pytest.mark.parametrize("kind", ["plain", "async"])
def test_while_redis_is_unreachable_the_worker_backs_off_and_closes_promptly(kind: str) -> None:
    import subprocess

    from conftest import _free_port

    need_redis_server()
    port = _free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: _answers(port), 5.0)
        conn = queuesim.connect(f"redis://127.0.0.1:{port}/0")
        errors: list[Exception] = []

        async def async_process(job: Job) -> None:
            return None

        worker = Worker("unreachable", async_process if kind == "async" else (lambda job: None),
                        connection=conn, drain_delay_s=0.2, skip_lock_renewal=True, skip_stalled_check=True)
        worker.on("error", errors.append)
    finally:
        server.terminate()
        server.wait(10)
    worker.start()
    time.sleep(1.0)
    started = time.monotonic()
    worker.close()
    assert time.monotonic() - started < 1.0, "close() does not sit out the back-off"
    assert all(isinstance(e, redis.exceptions.ConnectionError) for e in errors), errors
    # back-off of 0.1 s, 0.2 s, 0.4 s, 0.8 s: a handful of attempts in a second, not a busy loop
    assert 2 <= len(errors) <= 6, len(errors)


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port).ping())
    except redis.exceptions.ConnectionError:
        return False


def test_a_redis_reached_through_a_unix_socket_gets_the_pipelined_connection_too(tmp_path: Any) -> None:
    import subprocess

    from conftest import _free_port

    need_redis_server()
    sock = tmp_path / "redis.sock"
    server = subprocess.Popen(["redis-server", "--port", str(_free_port()), "--bind", "127.0.0.1", "--unixsocket",
                               str(sock), "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: sock.exists(), 5.0)
        conn = queuesim.connect(f"unix://{sock}?db=3")
        q = Queue("over-unix", conn)
        q.add_bulk([("j", {"n": i}) for i in range(30)])
        drain_over_the_pipelined_connection(q, 30, concurrency=5)
        assert sorted(j.return_value for j in q.get_completed()) == list(range(30))
        assert redis.Redis(unix_socket_path=str(sock), db=3).exists("bull:over-unix:meta") == 1
        conn.close()
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.real_redis
def test_without_a_pipelined_connection_a_network_store_is_called_from_the_helper_pool(redis_url: str) -> None:
    """Redis over TLS has no pipelined connection: its blocking calls must not stall the event loop."""
    from queuesim.worker import _BlockingTransitions

    conn = queuesim.connect(redis_url)
    conn.backend.pipelined = lambda: None  # type: ignore[method-assign]  # as for a rediss:// URL
    q = Queue(f"async-{uuid.uuid4().hex[:8]}", conn)
    q.add_bulk([("j", {}) for _ in range(20)])
    overlap = Overlap()

    async def process(job: Job) -> None:
        await overlap.around(0.05)

    worker = Worker(q, process, concurrency=10, drain_delay_s=0.2).start()
    try:
        assert wait_until(lambda: q.get_job_counts("completed")["completed"] == 20)
        hot = worker._hot
        assert isinstance(hot, _BlockingTransitions)
        assert hot.pool is not None, "calls to a network store go through the helper pool"
    finally:
        worker.close()
        q.obliterate(force=True)
        conn.close()
    assert overlap.peak >= 2
    embedded = Worker(Queue("local", queuesim.connect()), process)
    embedded.start()
    try:
        assert wait_until(lambda: embedded._hot is not None)
        assert isinstance(embedded._hot, _BlockingTransitions)
        assert embedded._hot.pool is None, "the embedded server is called directly"
    finally:
        embedded.close()
