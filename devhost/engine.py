"""A durable orchestration engine: the Durable Task extension's job, on SQLite.

It replays orchestrators through their real ``main`` (context JSON in,
OrchestratorState JSON out), turns new actions into scheduled work, runs
activities, fires timers and records every event in a history, as the
extension does. Each decision is committed in one SQLite transaction before it
is acted on, so killing the process at any moment and starting it again loses
nothing: an activity that was running when the process died simply runs again
(activities are at-least-once, as on Azure, which is why the store is idempotent).
"""

from __future__ import annotations

import json
import sqlite3
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from devhost import protocol as p
from devhost.worker import InvocationFailed

ACTIVE = ("Pending", "Running", "ContinuedAsNew", "Suspended")
TERMINAL = ("Completed", "Failed", "Terminated", "Canceled")


class InstanceAlreadyExists(Exception):
    """Start refused: an instance with that id is pending or running."""


class UnsupportedAction(ValueError):
    """The orchestrator asked for something this host does not implement."""


class UnknownFunction(Exception):
    """The orchestration or activity name is not registered."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand, so a 60-second retry delay costs no time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        self._now = max(self._now, moment)


@dataclass(frozen=True)
class WorkItem:
    id: int
    instance_id: str
    execution_id: str
    kind: str  # "activity" | "timer"
    task_id: int
    name: str
    input: str | None
    due_at: str | None


# Both take and give JSON text, as on the wire between the extension and the worker.
Activity = Callable[[str | None], str]
Orchestrator = Callable[[str], str]


def python_activity(fn: Callable[[Any], Any]) -> Activity:
    """A plain Python callable as an activity (test stand-ins; the app's own go through the worker)."""
    return lambda input_json: json.dumps(fn(json.loads(input_json) if input_json is not None else None))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    history TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_instance ON inbox (instance_id);
CREATE TABLE IF NOT EXISTS work (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT,
    due_at TEXT,
    UNIQUE (instance_id, execution_id, task_id)
);
CREATE INDEX IF NOT EXISTS work_kind_due ON work (kind, due_at);
CREATE TABLE IF NOT EXISTS starts (
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    name TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


class Engine:
    def __init__(
        self,
        db_path: str,
        orchestrators: dict[str, Orchestrator],
        activities: dict[str, Activity],
        clock: Any = None,
    ) -> None:
        self.orchestrators = orchestrators
        self.activities = activities
        self.clock = clock or SystemClock()
        self.db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed transaction survives the process being killed (the OS holds
        # it); only a power cut could lose the last ones. FULL would fsync every commit, about
        # doubling the host's cost per image, for a development host.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.on_change: Callable[[], None] = lambda: None
        # ContinueAsNew bookkeeping of this process (tests read it): generations started per
        # instance, and the longest history a generation of it ended with.
        self.generations: dict[str, int] = {}
        self.longest_generation: dict[str, int] = {}

    def close(self) -> None:
        self.db.close()

    # -- transactions -----------------------------------------------------
    def _tx(self, work: Callable[[sqlite3.Connection], Any]) -> Any:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            result = work(self.db)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        self.on_change()
        return result

    def _now(self) -> str:
        return p.timestamp(self.clock.now())

    # -- client operations ------------------------------------------------
    def start(self, name: str, instance_id: str | None = None, input_json: str | None = None) -> str:
        """Create (or replace a finished) instance, as the extension's start API does."""
        if name not in self.orchestrators:
            raise UnknownFunction(f"The function '{name}' doesn't exist, is disabled, or is not an "
                                  "orchestrator function.")
        instance_id = instance_id or uuid.uuid4().hex
        execution_id = uuid.uuid4().hex

        def work(db: sqlite3.Connection) -> str:
            row = db.execute("SELECT status FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
            if row and row[0] in ACTIVE:
                raise InstanceAlreadyExists(
                    f"An Orchestration instance with the status {row[0]} already exists."
                )
            now = self._now()
            db.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))
            db.execute("DELETE FROM work WHERE instance_id = ?", (instance_id,))
            db.execute(
                "INSERT OR REPLACE INTO instances VALUES (?, ?, ?, 'Pending', ?, NULL, NULL, '[]', ?, ?)",
                (instance_id, name, execution_id, input_json, now, now),
            )
            started = p.event(p.EXECUTION_STARTED, -1, self.clock.now(), Name=name, Version="",
                              Input=input_json,
                              OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id})
            db.execute("INSERT INTO inbox (instance_id, execution_id, event) VALUES (?, ?, ?)",
                       (instance_id, execution_id, json.dumps(started)))
            # Every start, kept when the instance is replaced or purged: how many executions an
            # instance id had, and when (tests count duplicates and measure start rates from it).
            db.execute("INSERT INTO starts VALUES (?, ?, ?, ?)", (instance_id, execution_id, name, now))
            return instance_id

        return self._tx(work)

    def start_log(self, name: str | None = None) -> list[tuple[str, str]]:
        """(instance id, start time) of every start, oldest first (of one orchestrator when named)."""
        sql = "SELECT instance_id, at FROM starts" + (" WHERE name = ?" if name else "") + " ORDER BY at, rowid"
        return [(r[0], r[1]) for r in self.db.execute(sql, (name,) if name else ())]

    def terminate(self, instance_id: str, reason: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            row = db.execute("SELECT status FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
            if not row or row[0] not in ACTIVE:
                return False
            db.execute("UPDATE instances SET status = 'Terminated', output = ?, updated_at = ? "
                       "WHERE instance_id = ?", (json.dumps(reason), self._now(), instance_id))
            db.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))
            db.execute("DELETE FROM work WHERE instance_id = ?", (instance_id,))
            return True

        return self._tx(work)

    def purge(self, created_from: str, created_to: str, statuses: Iterable[str] | None = None) -> int:
        """Delete the instances created in [created_from, created_to] (inclusive) with one of
        ``statuses`` (every status when none is given, as the extension does), with their history
        and pending work; the number deleted. Times are the wire's UTC timestamps."""
        wanted = list(statuses or [])

        def work(db: sqlite3.Connection) -> int:
            sql = "SELECT instance_id FROM instances WHERE created_at >= ? AND created_at <= ?"
            args: list[Any] = [created_from, created_to]
            if wanted:
                sql += f" AND status IN ({', '.join('?' for _ in wanted)})"
                args += wanted
            ids = [r[0] for r in db.execute(sql, args)]
            for instance_id in ids:
                for table in ("inbox", "work", "instances"):
                    db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))
            return len(ids)

        return self._tx(work)

    def purge_instance(self, instance_id: str) -> int:
        def work(db: sqlite3.Connection) -> int:
            for table in ("inbox", "work"):
                db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))
            return db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,)).rowcount

        return self._tx(work)

    def status(self, instance_id: str, show_history: bool = False, show_input: bool = True) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT instance_id, name, status, input, output, custom_status, history, created_at, "
            "updated_at FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
        return self._status_json(row, show_history, show_input) if row else None

    def query(self, statuses: Iterable[str] | None = None, prefix: str | None = None,
              created_from: str | None = None, created_to: str | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT instance_id, name, status, input, output, custom_status, history, created_at, "
               "updated_at FROM instances WHERE 1 = 1")
        args: list[Any] = []
        statuses = list(statuses or [])
        if statuses:
            sql += f" AND status IN ({', '.join('?' for _ in statuses)})"
            args += statuses
        if prefix:
            sql += " AND substr(instance_id, 1, ?) = ?"
            args += [len(prefix), prefix]
        if created_from:
            sql += " AND created_at >= ?"
            args.append(created_from)
        if created_to:
            sql += " AND created_at <= ?"
            args.append(created_to)
        rows = self.db.execute(sql + " ORDER BY created_at", args).fetchall()
        return [self._status_json(r, False, True) for r in rows]

    @staticmethod
    def _status_json(row: tuple[Any, ...], show_history: bool, show_input: bool) -> dict[str, Any]:
        iid, name, status, input_json, output, custom, history, created, updated = row
        body: dict[str, Any] = {
            "name": name, "instanceId": iid, "runtimeStatus": status,
            "input": json.loads(input_json) if (show_input and input_json) else None,
            "customStatus": json.loads(custom) if custom else None,
            "output": json.loads(output) if output else None,
            "createdTime": created, "lastUpdatedTime": updated,
        }
        if show_history:
            body["historyEvents"] = json.loads(history)
        return body


    # -- orchestration episodes --------------------------------------------
    def process_episodes(self) -> int:
        """Replay every instance that has new events; one transaction for the whole batch
        (under load that saves a commit per episode, and a crash just replays the batch)."""

        def work(db: sqlite3.Connection) -> int:
            ids = [r[0] for r in db.execute("SELECT DISTINCT instance_id FROM inbox")]
            for instance_id in ids:
                self._episode(db, instance_id)
            return len(ids)

        if self.db.execute("SELECT 1 FROM inbox LIMIT 1").fetchone() is None:
            return 0
        return self._tx(work)

    def run_episode(self, instance_id: str) -> None:
        """Replay one instance with its new events and commit what it decided, atomically."""
        self._tx(lambda db: self._episode(db, instance_id))

    def _episode(self, db: sqlite3.Connection, instance_id: str) -> None:
        """Replay one instance with its new events and record what it decided (inside a transaction)."""
        row = db.execute("SELECT name, execution_id, status, input, history FROM instances "
                         "WHERE instance_id = ?", (instance_id,)).fetchone()
        inbox = db.execute("SELECT id, execution_id, event FROM inbox WHERE instance_id = ? ORDER BY id",
                           (instance_id,)).fetchall()
        db.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))
        if row is None:
            return
        name, execution_id, status, input_json, history_json = row
        new = [json.loads(e) for (_, ex, e) in inbox if ex == execution_id]
        if status not in ACTIVE or not new:
            return
        now = self.clock.now()
        played = json.loads(history_json)
        new = [p.event(p.ORCHESTRATOR_STARTED, -1, now)] + new
        main = self.orchestrators.get(name)
        if main is None:
            result = p.EpisodeResult(done=True, error=f"orchestrator {name!r} is not registered")
        else:
            result = p.run_episode(main, p.context_json(instance_id, input_json, played, new))
        history = played + new
        scheduled, work_items, refusal, continued = self._decide(history, result, now)
        history += scheduled
        history.append(p.event(p.ORCHESTRATOR_COMPLETED, -1, now))
        output = result.output
        if not refusal and result.error is None and continued is not None:
            self._continue_as_new(db, instance_id, name, continued, history, result, now)
            return
        if refusal:
            new_status, output = "Failed", refusal
        elif result.error is not None:
            new_status, output = "Failed", result.error
        elif result.done:
            new_status = "Completed"
        else:
            new_status = "Running"
        if new_status != "Running":
            history.append(p.event(p.EXECUTION_COMPLETED, -1, now,
                                   OrchestrationStatus=new_status, Result=json.dumps(output)))
            db.execute("DELETE FROM work WHERE instance_id = ?", (instance_id,))
        else:
            for item in work_items:
                db.execute("INSERT OR IGNORE INTO work (instance_id, execution_id, kind, task_id, "
                           "name, input, due_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (instance_id, execution_id, *item))
        db.execute(
            "UPDATE instances SET status = ?, output = ?, custom_status = ?, history = ?, "
            "updated_at = ? WHERE instance_id = ?",
            (new_status, json.dumps(output) if output is not None else None,
             json.dumps(result.custom_status) if result.custom_status is not None else None,
             json.dumps(history), p.timestamp(now), instance_id),
        )

    def _continue_as_new(self, db: sqlite3.Connection, instance_id: str, name: str, new_input: str | None,
                         history: list[dict[str, Any]], result: p.EpisodeResult, now: datetime) -> None:
        """The generation ends as the extension ends it: ExecutionCompleted with status
        ContinuedAsNew, then the same instance id restarts with the new input, a new ExecutionId and
        an empty history; results of the old generation's outstanding tasks are dropped (its work
        rows go, and results still in flight name the old ExecutionId). The status reads
        ContinuedAsNew until the new generation's first episode makes it Running."""
        history.append(p.event(p.EXECUTION_COMPLETED, -1, now, OrchestrationStatus="ContinuedAsNew",
                               Result=json.dumps(new_input)))
        execution_id = uuid.uuid4().hex
        db.execute("DELETE FROM work WHERE instance_id = ?", (instance_id,))
        db.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))
        db.execute(
            "UPDATE instances SET execution_id = ?, status = 'ContinuedAsNew', input = ?, output = NULL, "
            "custom_status = ?, history = '[]', updated_at = ? WHERE instance_id = ?",
            (execution_id, new_input,
             json.dumps(result.custom_status) if result.custom_status is not None else None,
             p.timestamp(now), instance_id))
        started = p.event(p.EXECUTION_STARTED, -1, now, Name=name, Version="", Input=new_input,
                          OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id})
        db.execute("INSERT INTO inbox (instance_id, execution_id, event) VALUES (?, ?, ?)",
                   (instance_id, execution_id, json.dumps(started)))
        self.generations[instance_id] = self.generations.get(instance_id, 0) + 1
        self.longest_generation[instance_id] = max(len(history), self.longest_generation.get(instance_id, 0))

    def _decide(self, history: list[dict[str, Any]], result: p.EpisodeResult, now: datetime
                ) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]], str | None, str | None]:
        """Match the orchestrator's actions to the history; schedule the ones that are new. The last
        value is the ContinueAsNew action's input (JSON text) when the episode continued as new."""
        matcher = _Matcher(history, now, schedule=not result.done)
        try:
            for leaf in result.actions:
                matcher.match(leaf)
            if matcher.pos < len(matcher.sched) and result.error is None:
                raise ValueError(f"the history has {len(matcher.sched)} scheduled tasks but the "
                                 f"orchestrator now produces only {matcher.pos}")
        except UnsupportedAction as exc:
            return [], [], str(exc), None
        except ValueError as exc:
            return [], [], f"Non-Deterministic workflow detected: {exc}", None
        return matcher.new_events, matcher.new_work, None, matcher.continued

    # -- work: activities and timers ----------------------------------------
    def ready_activities(self, exclude: set[int] | None = None, limit: int = 100) -> list[WorkItem]:
        """The oldest activities not already running (exclude), at most ``limit`` of them."""
        exclude = exclude or set()
        rows = self.db.execute("SELECT id, instance_id, execution_id, kind, task_id, name, input, due_at "
                               "FROM work WHERE kind = 'activity' ORDER BY id LIMIT ?",
                               (limit + len(exclude),)).fetchall()
        return [WorkItem(*r) for r in rows if r[0] not in exclude][:limit]

    def next_timer_due(self) -> datetime | None:
        row = self.db.execute("SELECT MIN(due_at) FROM work WHERE kind = 'timer'").fetchone()
        return p.parse_timestamp(row[0]) if row and row[0] else None

    def fire_due_timers(self) -> int:
        now = self._now()
        due = self.db.execute("SELECT id, instance_id, execution_id, task_id, due_at FROM work "
                              "WHERE kind = 'timer' AND due_at <= ? ORDER BY due_at", (now,)).fetchall()

        def work(db: sqlite3.Connection) -> None:
            for wid, iid, ex, task_id, due_at in due:
                fired = p.event(p.TIMER_FIRED, -1, self.clock.now(), TimerId=task_id, FireAt=due_at)
                db.execute("INSERT INTO inbox (instance_id, execution_id, event) VALUES (?, ?, ?)",
                           (iid, ex, json.dumps(fired)))
                db.execute("DELETE FROM work WHERE id = ?", (wid,))

        if due:
            self._tx(work)
        return len(due)

    def execute_activity(self, item: WorkItem) -> dict[str, Any]:
        """Run one activity (no engine state touched: safe on a worker thread)."""
        return invoke_activity(self.activities, item.name, item.input)

    def complete_activity(self, item: WorkItem, outcome: dict[str, Any]) -> None:
        self.complete_activities([(item, outcome)])

    def complete_activities(self, results: list[tuple[WorkItem, dict[str, Any]]]) -> None:
        """Record activity results as their instances' next events (unless an instance was
        replaced meanwhile), all in one transaction."""

        def work(db: sqlite3.Connection) -> None:
            for item, outcome in results:
                if db.execute("DELETE FROM work WHERE id = ?", (item.id,)).rowcount == 0:
                    continue
                event = p.event(outcome["EventType"], -1, self.clock.now(), TaskScheduledId=item.task_id,
                                **{k: v for k, v in outcome.items() if k != "EventType"})
                db.execute("INSERT INTO inbox (instance_id, execution_id, event) VALUES (?, ?, ?)",
                           (item.instance_id, item.execution_id, json.dumps(event)))

        if results:
            self._tx(work)


    def run_until_idle(self, max_steps: int = 10_000) -> None:
        """Drive everything to rest on the calling thread; a ManualClock jumps to each timer."""
        for _ in range(max_steps):
            if self.process_episodes():
                continue
            items = self.ready_activities()
            if items:
                for item in items:
                    self.complete_activity(item, self.execute_activity(item))
                continue
            if self.fire_due_timers():
                continue
            due = self.next_timer_due()
            if due is None:
                return
            if isinstance(self.clock, ManualClock):
                self.clock.advance_to(due)
            else:
                raise RuntimeError("run_until_idle with a real clock would wait for a timer")
        raise RuntimeError("orchestrations did not come to rest")


def invoke_activity(activities: dict[str, Activity], name: str, input_json: str | None) -> dict[str, Any]:
    """Run one activity: its result JSON becomes TaskCompleted, a failure TaskFailed."""
    fn = activities.get(name)
    try:
        if fn is None:
            raise UnknownFunction(f"activity {name!r} is not registered")
        return {"EventType": p.TASK_COMPLETED, "Result": fn(input_json)}
    except InvocationFailed as exc:  # the worker's RpcException text, as the extension records it
        return {"EventType": p.TASK_FAILED, "Reason": str(exc), "Details": ""}
    except Exception as exc:  # noqa: BLE001 - reported to the orchestrator as TaskFailed
        return {"EventType": p.TASK_FAILED, "Reason": f"{type(exc).__name__}: {exc}",
                "Details": traceback.format_exc(limit=5)}


class _Matcher:
    """Walks an episode's actions against the scheduled events already in the history."""

    def __init__(self, history: list[dict[str, Any]], now: datetime, schedule: bool) -> None:
        self.sched = sorted((e for e in history if e["EventType"] in (p.TASK_SCHEDULED, p.TIMER_CREATED)),
                            key=lambda e: e["EventId"])
        self.results = {e["TaskScheduledId"]: e for e in history
                        if e["EventType"] in (p.TASK_COMPLETED, p.TASK_FAILED)}
        self.fired = {e["TimerId"] for e in history if e["EventType"] == p.TIMER_FIRED}
        self.now = now
        self.schedule = schedule
        self.pos = 0
        self.next_id = len(self.sched)
        self.new_events: list[dict[str, Any]] = []
        self.new_work: list[tuple[Any, ...]] = []
        self.continued: str | None = None

    def _recorded(self) -> bool:
        return self.pos < len(self.sched)

    def _expect(self, kind: int, name: str | None, leaf: dict[str, Any]) -> dict[str, Any]:
        recorded = self.sched[self.pos]
        self.pos += 1
        if recorded["EventType"] != kind or (name is not None and recorded.get("Name") != name):
            raise ValueError(
                f"action #{self.pos - 1} is {json.dumps(leaf)[:200]} but the history recorded "
                f"{recorded.get('Name') or 'a timer'} (event type {recorded['EventType']})"
            )
        return recorded

    def _activity(self, name: str, input_json: str | None) -> None:
        if self.schedule:
            self.new_events.append(p.event(p.TASK_SCHEDULED, self.next_id, self.now, Name=name,
                                           Input=input_json))
            self.new_work.append(("activity", self.next_id, name, input_json, None))
            self.next_id += 1

    def _timer(self, fire_at: datetime) -> None:
        if self.schedule:
            self.new_events.append(p.event(p.TIMER_CREATED, self.next_id, self.now,
                                           FireAt=p.timestamp(fire_at)))
            self.new_work.append(("timer", self.next_id, "timer", None, p.timestamp(fire_at)))
            self.next_id += 1

    def match(self, leaf: dict[str, Any]) -> None:
        kind = leaf.get("actionType")
        if kind == p.CALL_ACTIVITY:
            if self._recorded():
                self._expect(p.TASK_SCHEDULED, leaf["functionName"], leaf)
            else:
                self._activity(leaf["functionName"], leaf.get("input"))
        elif kind == p.CREATE_TIMER:
            if self._recorded():
                self._expect(p.TIMER_CREATED, None, leaf)
            else:
                self._timer(p.parse_timestamp(leaf["fireAt"]))
        elif kind == p.CALL_ACTIVITY_WITH_RETRY:
            self._retrying(leaf)
        elif kind == p.CONTINUE_AS_NEW:
            # Fire and forget: no history event of its own; the SDK sends isDone with this action last.
            self.continued = leaf.get("input")
        else:
            raise UnsupportedAction(f"action type {kind} (sub-orchestrations, external events and "
                                    "entities) is not supported by the local host")

    def _retrying(self, leaf: dict[str, Any]) -> None:
        """One call_activity_with_retry: attempts, failures and the timers between them.

        After the last failed attempt the extension still records a timer that fires at
        once; the SDK waits for it before raising, so it is scheduled here too.
        """
        options = leaf.get("retryOptions") or {}
        allowed = int(options.get("maxNumberOfAttempts", 1))
        interval = timedelta(milliseconds=float(options.get("firstRetryIntervalInMilliseconds", 0)))
        name = leaf["functionName"]
        attempts = 0
        while True:
            if not self._recorded():
                self._activity(name, leaf.get("input"))
                return
            scheduled = self._expect(p.TASK_SCHEDULED, name, leaf)
            attempts += 1
            outcome = self.results.get(scheduled["EventId"])
            if outcome is None or outcome["EventType"] == p.TASK_COMPLETED:
                return
            if not self._recorded():
                self._timer(self.now + (interval if attempts < allowed else timedelta(0)))
                return
            timer = self._expect(p.TIMER_CREATED, None, leaf)
            if timer["EventId"] not in self.fired or attempts >= allowed:
                return
