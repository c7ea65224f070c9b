"""The worker in-process, with an in-memory executor: ordering, failures, deferral, stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import structlog
from structlog.testing import capture_logs

from syncd.daemon.work import RunQueue
from syncd.daemon.worker import Worker
from syncd.errors import LockHeldError
from syncd.exit_codes import ExitCode
from syncd.logs import get_logger
from syncd.store import requests
from syncd.store.db import Database
from syncd.store.schema import sync_runs
from syncd.sync.seam import RunOutcome, RunRequest, StopEvent, Trigger
from tests.daemon.conftest import eventually, wait_request

_log = get_logger("tests.executor")


@dataclass
class Call:
    request: RunRequest
    trigger: Trigger
    stop: StopEvent


@dataclass
class ScriptedExecutor:
    """Runs whatever the test scripts for each call (default: succeed at once).

    Each call records a real ``sync_runs`` row, as the engine does, so run ids can be linked.
    """

    db: Database
    script: list[Callable[[Call], RunOutcome]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    closed: bool = False
    next_run_id: int = 0

    def execute(
        self,
        request: RunRequest,
        *,
        trigger: Trigger,
        stop: StopEvent,
        started: Callable[[int], None],
    ) -> RunOutcome:
        call = Call(request, trigger, stop)
        self.calls.append(call)
        with self.db.write() as conn:
            key = conn.execute(
                sync_runs.insert().values(
                    kind=request.kind,
                    trigger=trigger,
                    status="running",
                    started_at=datetime.now(UTC),
                )
            ).inserted_primary_key
        assert key is not None
        self.next_run_id = int(key[0])
        started(self.next_run_id)
        _log.info("executor.working")
        step = self.script.pop(0) if self.script else None
        return step(call) if step else RunOutcome(self.next_run_id, "succeeded", ExitCode.OK)

    def close(self) -> None:
        self.closed = True


class Leader:
    """The worker's ``is_leader``, which also counts how often the worker asked.

    The worker asks once at the start of every iteration, so after :meth:`next_iterations`
    returns, every iteration begun before the call has finished: a test can tell that
    nothing happened without sleeping.
    """

    def __init__(self) -> None:
        self._leading = True
        self._asked = 0
        self._changed = threading.Condition()

    def __call__(self) -> bool:
        with self._changed:
            self._asked += 1
            self._changed.notify_all()
            return self._leading

    def set(self) -> None:
        self._leading = True

    def clear(self) -> None:
        self._leading = False

    def next_iterations(self, count: int, wake: RunQueue, timeout: float = 5) -> None:
        """Wait until the worker has started ``count`` more iterations."""
        with self._changed:
            target = self._asked + count
            while self._asked < target:
                wake.wake()  # no need to sit out the poll period
                assert self._changed.wait(timeout), "the worker stopped iterating"


@dataclass
class World:
    db: Database
    queue: RunQueue
    executor: ScriptedExecutor
    leader: Leader
    worker: Worker


@pytest.fixture
def world(db: Database) -> Iterator[World]:
    queue, executor, leader = RunQueue(), ScriptedExecutor(db), Leader()
    worker = Worker(
        db=db,
        queue=queue,
        instance_id="me",
        executor=executor,
        is_leader=leader,
        fence=lambda: None,
        poll_every=0.05,
        retry_every=0.2,
    )
    worker.start()
    yield World(db, queue, executor, leader, worker)
    worker.stop(1)
    worker.join(5)
    assert not worker.is_alive()


def _request_status(db: Database, rid: int) -> str | None:
    req = requests.get(db, rid)
    return req.status if req else None


def test_scheduled_and_manual_work_run_serially_manual_first(world: World) -> None:
    world.leader.clear()
    world.leader.next_iterations(1, world.queue)  # the iteration begun as leader is over
    world.queue.put("incremental", "schedule")
    rid = requests.create(world.db, "targeted", external_ids=["x"])
    world.leader.next_iterations(2, world.queue)  # a whole iteration saw the work, as standby
    assert world.executor.calls == []  # a standby runs nothing and claims nothing
    assert _request_status(world.db, rid) == "pending"
    world.queue.put("incremental", "schedule")
    world.leader.set()
    rid2 = requests.create(world.db, "full")
    world.queue.put("incremental", "schedule")
    eventually(lambda: len(world.executor.calls) == 3, 5, "three runs")
    kinds = [(c.request.kind, c.trigger) for c in world.executor.calls]
    assert kinds == [("targeted", "manual"), ("full", "manual"), ("incremental", "schedule")]
    assert world.executor.calls[0].request.external_ids == ("x",)
    assert world.executor.calls[0].request.request_id == rid
    done = wait_request(world.db, rid2, timeout=5)
    assert (done.status, done.exit_code, done.run_id) == ("done", 0, 2)


def test_a_run_that_raises_fails_its_request_and_the_worker_goes_on(world: World) -> None:
    def boom(_call: Call) -> RunOutcome:
        raise RuntimeError("engine bug")

    world.executor.script.append(boom)
    with capture_logs() as logs:
        rid = requests.create(world.db, "incremental")
        failed = wait_request(world.db, rid, timeout=5)
        assert (failed.status, failed.exit_code) == ("failed", 1)
        assert "engine bug" in (failed.error or "")
        assert failed.run_id == 1  # the run had started: the request links it
        world.queue.put("incremental", "schedule")
        eventually(lambda: len(world.executor.calls) == 2, 5, "the next run")
    assert any(e["event"] == "daemon.run.failed" for e in logs)
    assert world.worker.is_alive()


def test_lock_held_defers_and_retries_the_same_work(world: World) -> None:
    def held(_call: Call) -> RunOutcome:
        raise LockHeldError("a sync run is already in progress: held by sync@host:1")

    world.executor.script.extend([held, held])
    with capture_logs() as logs:
        rid = requests.create(world.db, "incremental")
        done = wait_request(world.db, rid, timeout=5)
    assert done.status == "done"
    assert [c.request.request_id for c in world.executor.calls] == [rid, rid, rid]
    deferred = [e for e in logs if e["event"] == "daemon.run.deferred"]
    assert len(deferred) == 2
    assert [e["log_level"] for e in deferred] == ["info", "debug"]  # said once, loudly


def test_interrupt_reaches_the_executor_and_requeues_the_request(world: World) -> None:
    seen: list[float | None] = []

    def slow(call: Call) -> RunOutcome:
        assert call.stop.wait(10)
        seen.append(call.stop.deadline)
        return RunOutcome(1, "interrupted", ExitCode.PARTIAL)

    world.executor.script.append(slow)
    rid = requests.create(world.db, "full")
    eventually(lambda: world.executor.calls, 5, "the run to start")
    world.leader.clear()  # as when leadership is lost: the run is interrupted
    before = time.monotonic()
    world.worker.interrupt(7.0)
    after = time.monotonic()
    req = wait_request(world.db, rid, "pending", timeout=5)
    assert req.run_id == 1
    (deadline,) = seen
    assert deadline is not None
    assert before + 7 <= deadline <= after + 7  # the grace travelled with the stop event


def test_replaced_executor_serves_the_next_run_and_the_old_one_is_closed(world: World) -> None:
    new = ScriptedExecutor(world.db)
    world.worker.replace_executor(new)
    world.queue.put("incremental", "schedule")
    eventually(lambda: new.calls, 5, "a run on the new executor")
    assert world.executor.calls == []
    assert world.executor.closed


def test_structlog_context_is_bound_per_run(world: World) -> None:
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        rid = requests.create(world.db, "targeted", external_ids=["a"])
        wait_request(world.db, rid, timeout=5)
        world.queue.put("incremental", "schedule")
        eventually(lambda: len(world.executor.calls) == 2, 5)
        eventually(lambda: world.worker.current is None, 5)
    working = [e for e in logs if e["event"] == "executor.working"]
    assert working[0]["job"] == "targeted"
    assert working[0]["request_id"] == rid
    assert working[0]["run_id"] == 1
    assert working[1]["job"] == "incremental"
    assert working[1]["trigger"] == "schedule"
    assert "request_id" not in working[1]  # nothing leaks from one run to the next
    assert working[1]["run_id"] == 2


def test_queue_coalesces_ticks_per_kind() -> None:
    q = RunQueue()
    assert q.put("incremental", "schedule")
    assert not q.put("incremental", "schedule")
    assert q.put("full", "schedule")
    assert q.kinds() == ["incremental", "full"]
    item = q.pop()
    assert item
    assert item.kind == "incremental"
    q.discard("full")
    assert q.pop() is None
    t0 = time.monotonic()
    q.wait(0.05)
    assert time.monotonic() - t0 >= 0.04


def test_stop_event_deadline() -> None:
    now = [100.0]
    stop = StopEvent(clock=lambda: now[0])
    assert stop.remaining() is None
    stop.stop(5)
    assert stop.deadline == 105.0
    now[0] += 1
    stop.stop(100)  # a second request never extends the first deadline
    assert stop.deadline == 105.0
    assert stop.remaining() == 4.0
    now[0] += 10
    assert stop.remaining() == 0.0  # never negative
