"""A deliberately minimal store: only the abstract methods, on plain dicts.

Every other method is the base classes' default (the seed's), and it declares no
capability. The kit must pass it on every rule that needs no capability: this is
what proves the ported defaults right.
"""

from __future__ import annotations

from itertools import count

from conformance import (
    AlreadyExistsError,
    Message,
    NotFoundError,
    RunPage,
    RunQuery,
    RunRecord,
    Thread,
    ThreadMetadata,
    ThreadRunStore,
    ValidationError,
    apply_run_projection,
    checkpoint_parent_thread_id,
    now_ms,
    paginate_runs,
    sorted_threads_by_recent_activity,
    validate_append_only_delta,
)


class MinimalStore(ThreadRunStore):
    """Threads, logs and runs in dicts; copies in and out; nothing more."""

    def __init__(self) -> None:
        self.threads: dict[str, Thread] = {}
        self.logs: dict[str, list[Message]] = {}
        self.runs: dict[str, RunRecord] = {}
        self.written: dict[str, int] = {}
        self.clock = count()

    async def load_thread(self, thread_id: str) -> Thread | None:
        found = self.threads.get(thread_id)
        return found.copy() if found else None

    async def save_thread(self, thread: Thread) -> None:
        kept = thread.normalized()
        kept.validate_for_persist()
        self.threads[kept.id] = kept

    async def delete_thread(self, thread_id: str) -> None:
        self.threads.pop(thread_id, None)
        self.logs.pop(thread_id, None)

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        for name, number in (("offset", offset), ("limit", limit)):
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise ValidationError(f"argument '{name}' must be an integer >= 0, got {number!r}")
        ordered = sorted_threads_by_recent_activity(list(self.threads.values()))
        return [t.id for t in ordered[offset : offset + limit]]

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        found = self.logs.get(thread_id)
        return [m.copy() for m in found] if found else None

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        validate_append_only_delta([], messages)
        self.logs[thread_id] = [m.copy() for m in messages]

    async def delete_messages(self, thread_id: str) -> None:
        if thread_id not in self.threads:
            raise NotFoundError(f"thread {thread_id!r} not found")
        self.logs.pop(thread_id, None)

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        metadata.check_types(f"metadata of thread {id!r}")  # arguments before state
        if id not in self.threads:
            raise NotFoundError(f"thread {id!r} not found")
        self.threads[id].metadata = metadata.copy()

    async def create_run(self, record: RunRecord) -> None:
        record.validate_for_persist()
        if record.run_id in self.runs:
            raise AlreadyExistsError(f"run {record.run_id!r} already exists")
        self._put_run(record)

    def _put_run(self, record: RunRecord) -> None:
        self.runs[record.run_id] = record.copy()
        self.written[record.run_id] = next(self.clock)

    async def load_run(self, run_id: str) -> RunRecord | None:
        found = self.runs.get(run_id)
        return found.copy() if found else None

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        mine = [r for r in self.runs.values() if r.thread_id == thread_id]
        if not mine:
            return None
        return max(mine, key=lambda r: (r.updated_at, self.written[r.run_id])).copy()

    async def list_runs(self, query: RunQuery) -> RunPage:
        page = paginate_runs(self.runs.values(), query)
        page.items = [r.copy() for r in page.items]
        return page

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        run.validate_for_persist()
        if run.thread_id != thread_id:
            raise ValidationError(f"run {run.run_id!r} belongs to thread {run.thread_id!r}, not {thread_id!r}")
        validate_append_only_delta([], messages)
        existing = self.threads.get(thread_id)
        await self.validate_thread_hierarchy(thread_id, checkpoint_parent_thread_id(existing, run))
        thread = existing.copy() if existing else Thread(id=thread_id)
        now = now_ms()
        if thread.metadata.created_at is None:
            thread.metadata.created_at = now
        thread.metadata.updated_at = now
        self.threads[thread_id] = apply_run_projection(thread, run)
        self.logs[thread_id] = [m.copy() for m in messages]
        self._put_run(run)
