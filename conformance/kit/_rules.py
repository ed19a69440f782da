"""The rule registry: every rule ID of SPEC.md with its one-line text and capability."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CAPABILITIES", "RULES", "Rule", "rules_in_area"]

#: Optional behaviours a backend may declare; rules that need one are skipped without it.
CAPABILITIES: dict[str, str] = {
    "thread_state": "persists thread-scoped state (THR-6)",
    "atomic_delete": "strategy deletes are all or nothing to concurrent readers (DEL-6)",
    "concurrent_writers": "concurrent writers keep version checks, appends and hierarchies (CON-1..3)",
    "cancel_safe": "a cancelled write leaves the state before or after it (ATO-3)",
    "durable": "data survives close and reopen, and two stores on one location act as one (DUR-1..2)",
    "any_ids": "accepts any non-blank id without control characters (MOD-6)",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the contract: its stable ID, one line of text, and the capability it needs."""

    id: str
    text: str
    capability: str | None = None
    #: A new rule in its first minor release: checked and reported, but no store fails by it yet.
    warning: bool = False

    @property
    def area(self) -> str:
        """The area prefix of the ID (`"DEL"` for `"DEL-3"`)."""
        return self.id.split("-", 1)[0]

    @property
    def number(self) -> int:
        """The number of the ID (`3` for `"DEL-3"`), for ordering."""
        return int(self.id.split("-", 1)[1])


_RULES = [
    Rule("MOD-1", "normalize_lineage_id strips whitespace; blank or None becomes None."),
    Rule("MOD-2", "A thread needs a non-blank id and lineage ids, and cannot parent itself."),
    Rule("MOD-3", "An appended message has an id, consistent tool fields and a valid compaction mark."),
    Rule("MOD-4", "A run has non-blank ids, input/output/activation of its own thread, a status-consistent shape."),
    Rule("MOD-5", "Every model round-trips through JSON unchanged, in the serde shape."),
    Rule("MOD-6", "Portable ids are accepted; an id a backend cannot store is refused with ValidationError."),
    Rule("THR-1", "load_thread of an unknown id returns None."),
    Rule("THR-2", "save_thread normalizes resource and parent ids, then validates; creates or overwrites."),
    Rule("THR-3", "update_thread_metadata replaces the metadata; an unknown id raises NotFoundError."),
    Rule("THR-4", "delete_thread removes thread, log and state, keeps runs; unknown ids are no error."),
    Rule("THR-5", "list_threads orders by updated_at (else created_at, else 0) descending, then id."),
    Rule("THR-6", "save_thread_state overwrites; load_thread_state returns the last state or None.", "thread_state"),
    Rule("HIE-1", "validate_thread_hierarchy passes a blank or None parent."),
    Rule("HIE-2", "A parent equal to the thread itself raises ValidationError."),
    Rule("HIE-3", "Reaching the thread again or any thread twice while walking up raises ValidationError."),
    Rule("HIE-4", "A missing parent or ancestor raises ValidationError."),
    Rule("HIE-5", "save_thread_validated checks the hierarchy, then saves; on error nothing is stored."),
    Rule("HIE-6", "list_child_threads returns exactly the direct children, as full threads."),
    Rule("DEL-1", "Every strategy raises NotFoundError for an unknown id."),
    Rule("DEL-2", "reject refuses a thread with a direct child and deletes nothing."),
    Rule("DEL-3", "detach clears each child's parent and sets its updated_at, then deletes the thread."),
    Rule("DEL-4", "cascade deletes the thread and all descendants, with messages and state."),
    Rule("DEL-5", "cascade over a cycle raises ValidationError and terminates."),
    Rule("DEL-6", "A strategy delete is all or nothing to every concurrent observer.", "atomic_delete"),
    Rule("QRY-1", "list_threads_query caps limit at 200 and normalizes resource and parent filters."),
    Rule("QRY-2", "Threads match by literal id prefix, normalized resource id, root or parent filter."),
    Rule("QRY-3", "Matches are ordered as THR-5; total counts them; items are the offset/limit slice."),
    Rule("QRY-4", "has_more, next_cursor and prev_cursor are present exactly when due and decode right."),
    Rule("QRY-5", "limit 0 returns no items, has_more false, no cursors, the right total."),
    Rule("CUR-1", "A cursor is thr_/msg_ and unpadded URL-safe base64 of a JSON token of offset and filters."),
    Rule("CUR-2", "decode_cursor refuses text that is no such token, or a token of other filters."),
    Rule("CUR-3", "Bare decimal offsets: always for messages, for threads only without filters."),
    Rule("CUR-4", "Following next_cursor from 0 visits every match exactly once, in order."),
    Rule("MSG-1", "load_messages and load_committed_messages return None for a log without messages."),
    Rule("MSG-2", "save_messages replaces the log after validating every message; the thread need not exist."),
    Rule("MSG-3", "delete_messages empties an existing thread's log; an unknown thread raises NotFoundError."),
    Rule("MSG-4", "append_message_records appends at the tail with seqs len+1...; an empty delta does nothing."),
    Rule("MSG-5", "A delta with a committed id, a repeated id or an invalid message appends nothing."),
    Rule("MSG-6", "Records carry raw committed-log seqs and fields projected from their message."),
    Rule("MSG-7", "list_message_records filters after/before/run/visibility, orders by seq, then pages."),
    Rule("MSG-8", "load_message_records_range is inclusive; load_message_record of an unknown id is None."),
    Rule("VIEW-1", "load_messages strips unanswered or retracted tool calls; committed messages stay raw."),
    Rule("VIEW-2", "effective_messages folds compaction intervals; the wider summary wins."),
    Rule("RUN-1", "create_run validates and stores; an existing run_id raises AlreadyExistsError."),
    Rule("RUN-2", "load_run of an unknown id returns None; a stored run reads back equal."),
    Rule("RUN-3", "latest_run picks the greatest updated_at, ties to the last write; None without runs."),
    Rule("RUN-4", "list_runs filters thread, status and thread-id prefix, orders by created_at then run_id."),
    Rule("CKP-1", "checkpoint validates its own thread's run, messages and hierarchy first; on error nothing changes."),
    Rule("CKP-2", "checkpoint creates the thread, stamps it, projects the run, replaces the log, upserts the run."),
    Rule("CKP-3", "checkpoint_append with a stale expected_version raises VersionConflictError."),
    Rule("CKP-4", "checkpoint_append merges the delta as MSG-5, writes as CKP-2, returns the new version."),
    Rule("CKP-5", "load_checkpoint returns the effective view, the raw version, the latest run and state."),
    Rule("CKP-6", "The run projection sets the thread's latest, open and active run ids by status and age."),
    Rule("ISO-1", "Objects passed in or returned are never shared with the store's state."),
    Rule("ISO-2", "Stores opened on different locations share nothing.", warning=True),
    Rule("ATO-1", "An operation that raises leaves the whole observable state exactly as before."),
    Rule("ATO-2", "Each write is visible to every read that starts after it returns."),
    Rule("ATO-3", "A cancelled write leaves the state as before or after it; the store stays usable.", "cancel_safe"),
    Rule("CON-1", "Concurrent checkpoint_append with one expected_version: exactly one wins.", "concurrent_writers"),
    Rule("CON-2", "Concurrent unconditional appends lose nothing; seqs are 1..total.", "concurrent_writers"),
    Rule("CON-3", "Concurrent save_thread_validated calls never create a cycle.", "concurrent_writers"),
    Rule("DUR-1", "Everything written reads back unchanged after close and reopen.", "durable"),
    Rule("DUR-2", "Two store objects on one location behave as one store.", "durable"),
    Rule("SEC-1", "An id_prefix filter never returns anything outside the prefix, and cursors cannot widen it."),
]

#: Every rule by ID, in SPEC order.
RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}


def rules_in_area(area: str) -> list[Rule]:
    """The rules whose ID starts with `area` (`"DEL"`), in SPEC order."""
    return [rule for rule in _RULES if rule.area == area]
