"""Random sequences of run and capture-session moves through the API, checked against a model.

Every legal move must succeed and write exactly one audit row; every illegal one must be refused
with the code of the rule it breaks (409, or 404 for what is gone) and write none. After each step
the invariants compare all runs and capture sessions of the project with the model.

The app is served from a background thread (live_service.py) because hypothesis' state machines are
synchronous. Each example works in a fresh project, so examples never see each other's rows. The
model states the rules of the issue on its own: it must not import the service's transitions.
"""

import functools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from backend_common.rbac import Role
from tests.experiment.live_service import LiveExperiment, User, serve_experiment

EXPERIMENTS = 2
MAX_LIVE_RUNS = 3
RUN_STATUSES = ("draft", "running", "succeeded", "failed", "archived")
RUN_NEXT = {
    "draft": {"running"},
    "running": {"succeeded", "failed"},
    "succeeded": {"archived"},
    "failed": {"archived"},
    "archived": set(),
}
RUN_FINISHED = {"succeeded", "failed"}
RUN_NEEDS_IDLE_CAPTURE = {"succeeded", "failed", "archived"}
CAPTURE_DELETABLE = {"draft", "failed"}
CAPTURE_STOPS = [("succeeded", None), ("failed", "sensor lost")]
SESSION_FIELDS = ("id", "ordinal_number", "status", "started_at", "stopped_at", "failure_reason")


@pytest.fixture
def live_experiment(pgsql, make_settings) -> Iterator[LiveExperiment]:
    settings_for = functools.partial(make_settings, "experiment")
    with serve_experiment(settings_for, db=pgsql["experiment"]) as live:
        yield live


@dataclass
class CaptureModel:
    id: str
    ordinal_number: int
    started_at: str
    status: str = "running"
    stopped_at: str | None = None
    failure_reason: str | None = None


@dataclass
class RunModel:
    """A run as the rules say it must be; each `refuses_*` names the rule a move breaks, or None."""

    id: str
    experiment_id: str
    status: str = "draft"
    started_at: str | None = None
    finished_at: str | None = None
    sessions: dict[str, CaptureModel] = field(default_factory=dict)
    last_ordinal: int = 0
    deleted: bool = False

    def capturing(self) -> bool:
        return any(s.status == "running" for s in self.sessions.values())

    def next_ordinal(self) -> int:
        # Ordinals are never reused, even after the newest session was deleted.
        self.last_ordinal += 1
        return self.last_ordinal

    def refuses_status(self, status: str) -> str | None:
        if self.deleted:
            return "run_not_found"
        if status not in RUN_NEXT[self.status]:
            return "invalid_transition"
        if status in RUN_NEEDS_IDLE_CAPTURE and self.capturing():
            return "run_has_active_capture"
        return None

    def refuses_delete(self) -> str | None:
        if self.deleted:
            return "run_not_found"
        return "run_has_active_capture" if self.capturing() else None

    def refuses_capture_start(self) -> str | None:
        if self.deleted:
            return "run_not_found"
        if self.status != "running":
            return "run_not_running"
        return "capture_already_running" if self.capturing() else None

    def refuses_capture(self, session_id: str, allowed: set[str], rule: str) -> str | None:
        """Stopping or deleting a session: it must exist and be in one of `allowed`."""
        if self.deleted:
            return "run_not_found"
        session = self.sessions.get(session_id)
        if session is None:
            return "capture_session_not_found"
        return None if session.status in allowed else rule

    def view(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "has_duration": self.finished_at is not None,
        }


def served_run(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment_id": body["experiment_id"],
        "status": body["status"],
        "started_at": body["started_at"],
        "finished_at": body["finished_at"],
        "has_duration": body["duration_seconds"] is not None,
    }


def session_view(session: CaptureModel) -> dict[str, Any]:
    return {name: getattr(session, name) for name in SESSION_FIELDS}


def served_session(body: dict[str, Any]) -> dict[str, Any]:
    return {name: body[name] for name in SESSION_FIELDS}


class RunsAndCaptures(RuleBasedStateMachine):
    runs = Bundle("runs")
    sessions = Bundle("sessions")

    def __init__(self, live: LiveExperiment) -> None:
        super().__init__()
        self.live = live
        self.project_id = uuid.uuid4()
        self.editor = live.member(self.project_id, Role.EDITOR)
        self.owner = live.member(self.project_id, Role.OWNER)
        self.experiment_ids = [self._create_experiment(n) for n in range(EXPERIMENTS)]
        self.model: dict[str, RunModel] = {}
        self.audit_id = max(row[0] for row in live.audit_rows(self.project_id, 0))

    def _create_experiment(self, n: int) -> str:
        body = {"project_id": str(self.project_id), "name": f"experiment {n}"}
        status, experiment = self.live.call(self.editor, "POST", "/api/v1/experiments", body)
        assert status == 201, experiment
        return experiment["id"]

    def _live_runs(self) -> list[RunModel]:
        return [run for run in self.model.values() if not run.deleted]

    def _move(
        self,
        user: User,
        method: str,
        path: str,
        body: Any = None,
        *,
        refusal: str | None,
        action: str,
        entity_id: str | None = None,
    ) -> Any:
        """A legal move succeeds with one audit row; a refused one names its rule, with no row."""
        status, answer = self.live.call(user, method, path, body)
        rows = self.live.audit_rows(self.project_id, self.audit_id)
        move = f"{method} {path} {body or ''}"
        if refusal is None:
            assert 200 <= status < 300, f"{move}: expected success, got {status} {answer}"
            written = [row[1:] for row in rows]
            expected = [(action, entity_id or answer["id"], user.role.value)]
            assert written == expected, f"{move}: audit rows {written}"
            self.audit_id = rows[-1][0]
        else:
            expected_status = 404 if refusal.endswith("_not_found") else 409
            code = answer.get("code") if isinstance(answer, dict) else None
            assert (status, code) == (expected_status, refusal), f"{move}: {status} {answer}"
            assert rows == [], f"{move} was refused but wrote audit rows {rows}"
        return answer

    def _check_run(self, run: RunModel) -> None:
        status, body = self.live.call(self.editor, "GET", f"/api/v1/runs/{run.id}")
        if run.deleted:
            assert (status, body["code"]) == (404, "run_not_found"), body
        else:
            assert status == 200, body
            assert served_run(body) == run.view()

    @precondition(lambda self: len(self._live_runs()) < MAX_LIVE_RUNS)
    @rule(target=runs, experiment=st.integers(0, EXPERIMENTS - 1))
    def create_run(self, experiment: int) -> str:
        experiment_id = self.experiment_ids[experiment]
        path = f"/api/v1/experiments/{experiment_id}/runs"
        body = self._move(
            self.editor, "POST", path, {"name": "run"}, refusal=None, action="run.created"
        )
        run = self.model[body["id"]] = RunModel(id=body["id"], experiment_id=experiment_id)
        assert served_run(body) == run.view()
        return run.id

    @rule(run_id=runs, status=st.sampled_from(RUN_STATUSES))
    def set_run_status(self, run_id: str, status: str) -> None:
        run = self.model[run_id]
        refusal = run.refuses_status(status)
        body = self._move(
            self.editor,
            "PATCH",
            f"/api/v1/runs/{run_id}",
            {"status": status},
            refusal=refusal,
            action="run.status_changed",
            entity_id=run_id,
        )
        if refusal is None:
            run.status = status
            if status == "archived":
                for session in run.sessions.values():
                    session.status = "archived"
            # Transitions stamp the times once; later reads must show the same instants.
            if status == "running":
                run.started_at = body["started_at"]
                assert run.started_at is not None, body
            if status in RUN_FINISHED:
                run.finished_at = body["finished_at"]
                assert run.finished_at is not None, body
            assert served_run(body) == run.view()
        self._check_run(run)

    @precondition(lambda self: any(RUN_NEXT[run.status] for run in self._live_runs()))
    @rule(data=st.data())
    def advance_run(self, data: st.DataObject) -> None:
        """A status the run may take next (random ones are mostly refused): gets runs capturing."""
        run_id = data.draw(st.sampled_from([r.id for r in self._live_runs() if RUN_NEXT[r.status]]))
        next_statuses = sorted(RUN_NEXT[self.model[run_id].status])
        self.set_run_status(run_id, data.draw(st.sampled_from(next_statuses)))

    @precondition(lambda self: any(self._live_runs()))
    @rule()
    def try_illegal_statuses(self) -> None:
        """Every status each live run may not take next, one after the other: all are refused."""
        for run in self._live_runs():
            for status in RUN_STATUSES:
                if status not in RUN_NEXT[run.status]:
                    self.set_run_status(run.id, status)

    @rule(target=sessions, run_id=runs)
    def start_capture(self, run_id: str) -> Any:
        run = self.model[run_id]
        refusal = run.refuses_capture_start()
        path = f"/api/v1/runs/{run_id}/capture-sessions"
        body = self._move(
            self.editor, "POST", path, {}, refusal=refusal, action="capture_session.started"
        )
        self._check_run(run)
        if refusal is not None:
            return multiple()
        session = CaptureModel(body["id"], run.next_ordinal(), started_at=body["started_at"])
        assert session.started_at is not None, body
        run.sessions[session.id] = session
        assert served_session(body) == session_view(session)
        return run_id, session.id

    @precondition(lambda self: any(run.status == "running" for run in self._live_runs()))
    @rule(target=sessions, data=st.data())
    def start_capture_in_running_run(self, data: st.DataObject) -> Any:
        """Runs taken at random are seldom running: this one is, so capture gets going."""
        running = [run.id for run in self._live_runs() if run.status == "running"]
        return self.start_capture(data.draw(st.sampled_from(running)))

    @rule(ref=sessions, stop=st.sampled_from(CAPTURE_STOPS))
    def stop_capture(self, ref: tuple[str, str], stop: tuple[str, str | None]) -> None:
        run_id, session_id = ref
        run = self.model[run_id]
        refusal = run.refuses_capture(session_id, {"running"}, "capture_not_running")
        status, reason = stop
        body = self._move(
            self.editor,
            "POST",
            f"/api/v1/runs/{run_id}/capture-sessions/{session_id}/stop",
            {"status": status, "reason": reason} if reason else {"status": status},
            refusal=refusal,
            action="capture_session.stopped",
            entity_id=session_id,
        )
        if refusal is None:
            session = run.sessions[session_id]
            session.status, session.failure_reason = status, reason
            session.stopped_at = body["stopped_at"]
            assert session.stopped_at is not None, body
            assert served_session(body) == session_view(session)
        self._check_run(run)

    @precondition(lambda self: any(run.capturing() for run in self._live_runs()))
    @rule(data=st.data(), stop=st.sampled_from(CAPTURE_STOPS))
    def stop_running_capture(self, data: st.DataObject, stop: tuple[str, str | None]) -> None:
        """Sessions taken at random are seldom running: this one is."""
        running = [
            (run.id, session.id)
            for run in self._live_runs()
            for session in run.sessions.values()
            if session.status == "running"
        ]
        self.stop_capture(data.draw(st.sampled_from(running)), stop)

    @rule(ref=sessions)
    def delete_capture(self, ref: tuple[str, str]) -> None:
        run_id, session_id = ref
        run = self.model[run_id]
        refusal = run.refuses_capture(session_id, CAPTURE_DELETABLE, "capture_not_deletable")
        self._move(
            self.owner,
            "DELETE",
            f"/api/v1/runs/{run_id}/capture-sessions/{session_id}",
            refusal=refusal,
            action="capture_session.deleted",
            entity_id=session_id,
        )
        if refusal is None:
            del run.sessions[session_id]
        self._check_run(run)

    # Deleting only at capacity lets runs live long enough to capture. Deleted runs leave the
    # bundle, or most moves would be spent on them; poke_deleted_run still tries them.
    @precondition(lambda self: len(self._live_runs()) == MAX_LIVE_RUNS)
    @rule(target=runs, run_id=consumes(runs))
    def delete_run(self, run_id: str) -> Any:
        run = self.model[run_id]
        refusal = run.refuses_delete()
        self._move(
            self.owner,
            "DELETE",
            f"/api/v1/runs/{run_id}",
            refusal=refusal,
            action="run.deleted",
            entity_id=run_id,
        )
        if refusal is None:
            run.deleted = True
        self._check_run(run)
        return multiple() if run.deleted else multiple(run_id)

    @precondition(lambda self: any(run.deleted for run in self.model.values()))
    @rule(data=st.data(), move=st.sampled_from(["set_status", "start_capture", "delete"]))
    def poke_deleted_run(self, data: st.DataObject, move: str) -> None:
        run_id = data.draw(st.sampled_from([r.id for r in self.model.values() if r.deleted]))
        if move == "set_status":
            self.set_run_status(run_id, "running")
        elif move == "start_capture":
            self.start_capture(run_id)
        else:
            self.delete_run(run_id)

    @invariant()
    def runs_match_the_model(self) -> None:
        path = f"/api/v1/runs?project_id={self.project_id}&limit=500"
        status, body = self.live.call(self.editor, "GET", path)
        assert status == 200, body
        served = {run["id"]: served_run(run) for run in body["items"]}
        assert served == {run.id: run.view() for run in self._live_runs()}

    @invariant()
    def capture_sessions_match_the_model(self) -> None:
        for run in self._live_runs():
            path = f"/api/v1/runs/{run.id}/capture-sessions?limit=500"
            status, body = self.live.call(self.editor, "GET", path)
            assert status == 200, body
            expected = sorted(run.sessions.values(), key=lambda s: s.ordinal_number)
            served = [served_session(s) for s in body["items"]]
            assert served == [session_view(s) for s in expected], f"run {run.id}"


def test_random_run_and_capture_moves_match_the_model(live_experiment):
    run_state_machine_as_test(
        # Any factory works (hypothesis' own docs); its annotation only names the class.
        lambda: RunsAndCaptures(live_experiment),  # type: ignore[arg-type]
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            # No example database: it would be written into the shared checkout. No explain
            # phase: it traces every replayed step and made a failing run take minutes.
            database=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
        ),
    )
