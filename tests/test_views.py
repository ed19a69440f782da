"""Read views of the message log and the run projection (VIEW-1, VIEW-2, CKP-5, CKP-6, CKP-1, THR-5).

Pure helpers only: `strip_unpaired_tool_calls`, `effective_messages`,
`effective_committed_view`, `apply_run_projection`, `checkpoint_parent_thread_id`
and the THR-5 order helpers. Expectations are written out from the SPEC.
"""

from __future__ import annotations

import pytest

from conformance import (
    CompactionMark,
    JsonValue,
    Message,
    MessageMetadata,
    MessageRecord,
    Role,
    RunRecord,
    RunRequestSnapshot,
    RunStatus,
    RunWaitingState,
    Thread,
    ThreadMetadata,
    ToolCall,
    Visibility,
    WaitingReason,
    apply_run_projection,
    checkpoint_parent_thread_id,
    effective_committed_view,
    effective_messages,
    recent_activity_key,
    sort_threads_by_recent_activity,
    sorted_threads_by_recent_activity,
    strip_unpaired_tool_calls,
)

# --- message builders --------------------------------------------------------------------


def text(value: str) -> list[dict[str, JsonValue]]:
    """A content list of one text block."""
    return [{"type": "text", "text": value}]


def user(message_id: str) -> Message:
    return Message(id=message_id, role=Role.USER, content=text(message_id))


def system(message_id: str) -> Message:
    return Message(id=message_id, role=Role.SYSTEM, content=text(message_id))


def assistant(message_id: str, calls: list[str] | None = None) -> Message:
    """An assistant message making the tool calls `calls` (ids), or none."""
    tool_calls = None if calls is None else [ToolCall(id=c, name="lookup", arguments={"q": c}) for c in calls]
    return Message(id=message_id, role=Role.ASSISTANT, content=text(message_id), tool_calls=tool_calls)


def tool(message_id: str, call_id: str, *, internal: bool = False) -> Message:
    """The result of tool call `call_id`; an internal one retracts the call (VIEW-1)."""
    return Message(
        id=message_id,
        role=Role.TOOL,
        content=text(message_id),
        tool_call_id=call_id,
        visibility=Visibility.INTERNAL if internal else Visibility.ALL,
    )


def summary(message_id: str, from_seq: int, to_seq: int) -> Message:
    """A compaction summary standing for the committed interval [from_seq, to_seq]."""
    return Message(
        id=message_id,
        role=Role.ASSISTANT,
        content=text(f"summary of {from_seq}..{to_seq}"),
        metadata=MessageMetadata(compaction=CompactionMark(from_seq=from_seq, to_seq=to_seq)),
    )


def records(*messages: Message) -> list[MessageRecord]:
    """The committed records of `messages`, seq 1..n."""
    return [MessageRecord.from_message("t1", seq, m) for seq, m in enumerate(messages, start=1)]


def ids(messages: list[Message]) -> list[str | None]:
    return [m.id for m in messages]


def call_ids(message: Message) -> list[str] | None:
    return None if message.tool_calls is None else [c.id for c in message.tool_calls]


def by_id(messages: list[Message], message_id: str) -> Message:
    return next(m for m in messages if m.id == message_id)


# --- MSG-6, ISO-1: MessageRecord.from_message ------------------------------------------------


def test_a_record_holds_a_copy_of_its_message() -> None:
    """ISO-1: as upstream clones it, `from_message` copies the message; changing the original leaves the record."""
    message = Message(
        id="m1",
        role=Role.USER,
        content=text("before"),
        metadata=MessageMetadata(run_id="r1", step_index=2),
    )
    record = MessageRecord.from_message("t1", 1, message)
    assert record.message == message
    message.content[0]["text"] = "after"
    assert message.metadata is not None
    message.metadata.run_id = "r2"
    assert record.message.content == text("before")
    assert record.message.metadata == MessageMetadata(run_id="r1", step_index=2)
    assert (record.produced_by_run_id, record.step_index) == ("r1", 2)


def test_a_record_may_keep_a_message_the_store_owns() -> None:
    """`copy=False` keeps the message itself, for one a store has just parsed or copied."""
    message = user("m1")
    assert MessageRecord.from_message("t1", 1, message, copy=False).message is message


# --- VIEW-1: strip_unpaired_tool_calls -----------------------------------------------------


def test_answered_call_survives() -> None:
    """VIEW-1: a call answered by a visible result, not retracted, stays with its result."""
    log = [user("m1"), assistant("m2", calls=["c1"]), tool("m3", "c1"), assistant("m4")]
    view = strip_unpaired_tool_calls(log)
    assert view == log
    assert call_ids(by_id(view, "m2")) == ["c1"]


def test_unanswered_calls_are_stripped() -> None:
    """VIEW-1: an unanswered call is removed; a message left with no calls gets tool_calls None."""
    log = [
        user("m1"),
        assistant("m2", calls=["c1", "c2"]),
        tool("m3", "c1"),
        assistant("m4", calls=["c3"]),
        assistant("m5", calls=[]),
    ]
    view = strip_unpaired_tool_calls(log)
    assert ids(view) == ["m1", "m2", "m3", "m4", "m5"]
    assert call_ids(view[1]) == ["c1"]
    assert view[3].tool_calls is None
    assert view[4].tool_calls is None
    # Everything else about a stripped message is unchanged.
    assert view[3].content == log[3].content
    assert view[3].role is Role.ASSISTANT


def test_internal_result_retracts_the_call() -> None:
    """VIEW-1: an internal tool result retracts its call; the result itself is dropped."""
    log = [user("m1"), assistant("m2", calls=["c1"]), tool("m3", "c1", internal=True), user("m4")]
    view = strip_unpaired_tool_calls(log)
    assert ids(view) == ["m1", "m2", "m4"]
    assert view[1].tool_calls is None


def test_retracted_call_with_visible_result_is_stripped_with_it() -> None:
    """VIEW-1: a call that has a visible result but is also retracted is removed, and so are both results."""
    log = [
        assistant("m1", calls=["c1", "c2"]),
        tool("m2", "c1"),
        tool("m3", "c2"),
        tool("m4", "c1", internal=True),
    ]
    view = strip_unpaired_tool_calls(log)
    assert ids(view) == ["m1", "m3"]
    assert call_ids(view[0]) == ["c2"]
    # The retraction also works when it comes before the visible result.
    early = [assistant("m1", calls=["c1"]), tool("m2", "c1", internal=True), tool("m3", "c1")]
    early_view = strip_unpaired_tool_calls(early)
    assert ids(early_view) == ["m1"]
    assert early_view[0].tool_calls is None


def test_orphan_results_are_dropped() -> None:
    """VIEW-1: a tool result whose call no assistant message makes (or keeps) is dropped."""
    log = [user("m1"), tool("m2", "c9"), assistant("m3", calls=["c1"]), tool("m4", "c1"), tool("m5", "c7")]
    view = strip_unpaired_tool_calls(log)
    assert ids(view) == ["m1", "m3", "m4"]


def test_non_tool_messages_are_untouched() -> None:
    """VIEW-1: system, user and call-less assistant messages come through equal and in order."""
    log = [system("m1"), user("m2"), assistant("m3"), user("m4")]
    internal_user = Message(id="m5", role=Role.USER, content=text("x"), visibility=Visibility.INTERNAL)
    log.append(internal_user)
    assert strip_unpaired_tool_calls(log) == log
    assert strip_unpaired_tool_calls([]) == []


def test_strip_does_not_mutate_its_input() -> None:
    """VIEW-1, ISO-1: the input list and its messages are left as they were."""
    log = [assistant("m1", calls=["c1", "c2"]), tool("m2", "c1"), tool("m3", "c3"), tool("m4", "c1", internal=True)]
    before = [m.copy() for m in log]
    identities = [id(m) for m in log]
    view = strip_unpaired_tool_calls(log)
    assert ids(view) == ["m1"]
    assert view[0].tool_calls is None
    assert log == before
    assert [id(m) for m in log] == identities
    assert call_ids(log[0]) == ["c1", "c2"]


# --- VIEW-2: effective_messages ------------------------------------------------------------


def test_no_compaction_leaves_the_log_unchanged() -> None:
    """VIEW-2: without compaction marks the effective messages are the log itself."""
    log = [user("m1"), assistant("m2", calls=["c1"]), tool("m3", "c1"), user("m4")]
    assert effective_messages(records(*log)) == log
    assert effective_messages([]) == []


def test_summary_replaces_its_interval_at_its_start() -> None:
    """VIEW-2: [2, 4] is replaced by its summary at position 2; the summary leaves its own position 6."""
    log = records(user("m1"), user("m2"), user("m3"), user("m4"), user("m5"), summary("s6", 2, 4), user("m7"))
    assert ids(effective_messages(log)) == ["m1", "s6", "m5", "m7"]


def test_contained_interval_is_dropped() -> None:
    """VIEW-2: an interval inside another is dropped; the wider summary wins, whichever came first."""
    narrow_first = records(*[user(f"m{i}") for i in range(1, 7)], summary("s7", 2, 3), summary("s8", 1, 6), user("m9"))
    assert ids(effective_messages(narrow_first)) == ["s8", "m9"]
    wide_first = records(*[user(f"m{i}") for i in range(1, 7)], summary("s7", 1, 6), summary("s8", 2, 3), user("m9"))
    assert ids(effective_messages(wide_first)) == ["s7", "m9"]


def test_cumulative_prefix_summaries() -> None:
    """VIEW-2: summaries of [1, 3] then [1, 6] (covering the first summary): only the later, wider one stays."""
    log = records(
        user("m1"),
        user("m2"),
        user("m3"),
        summary("s4", 1, 3),
        user("m5"),
        user("m6"),
        summary("s7", 1, 6),
        user("m8"),
    )
    assert ids(effective_messages(log)) == ["s7", "m8"]


def test_disjoint_intervals_are_all_kept_in_start_order() -> None:
    """VIEW-2: disjoint intervals each become their summary, ordered by interval start, not by summary seq."""
    log = records(*[user(f"m{i}") for i in range(1, 7)], summary("s7", 4, 5), summary("s8", 1, 2), user("m9"))
    assert ids(effective_messages(log)) == ["s8", "m3", "s7", "m6", "m9"]


def test_partly_overlapping_intervals_are_both_kept_in_start_order() -> None:
    """VIEW-2: [2, 4] and [3, 5] both stay, ordered by start whichever was appended first; m2..m5 go."""
    raw = [user(f"m{i}") for i in range(1, 6)]
    earlier_first = records(*raw, summary("s6", 2, 4), summary("s7", 3, 5), user("m8"))
    assert ids(effective_messages(earlier_first)) == ["m1", "s6", "s7", "m8"]
    later_first = records(*raw, summary("s6", 3, 5), summary("s7", 2, 4), user("m8"))
    assert ids(effective_messages(later_first)) == ["m1", "s7", "s6", "m8"]


def test_summary_whose_interval_starts_after_the_last_raw_record() -> None:
    """VIEW-2: a summary of [3, 3] where seq 3 is itself a summary lands after the last raw record."""
    log = records(user("m1"), user("m2"), summary("s3", 1, 2), summary("s4", 3, 3))
    assert ids(effective_messages(log)) == ["s3", "s4"]
    tail = records(user("m1"), user("m2"), user("m3"), summary("s4", 3, 3), summary("s5", 4, 4))
    assert ids(effective_messages(tail)) == ["m1", "m2", "s4", "s5"]


def test_summaries_are_returned_as_messages() -> None:
    """VIEW-2: the summary message itself (content, mark) takes the interval's place."""
    mark_holder = summary("s3", 1, 2)
    out = effective_messages(records(user("m1"), user("m2"), mark_holder))
    assert out == [mark_holder]


# --- CKP-5: effective_committed_view -------------------------------------------------------


def test_committed_view_folds_then_strips() -> None:
    """CKP-5, VIEW-2, VIEW-1: the fold runs first, then the read view of what remains."""
    # The summary covers only the result of c1 (seq 3): once folded, c1 is unanswered.
    log = [user("m1"), assistant("m2", calls=["c1"]), tool("m3", "c1"), summary("s4", 3, 3), user("m5")]
    view = effective_committed_view(log, "t1")
    assert ids(view) == ["m1", "m2", "s4", "m5"]
    assert view[1].tool_calls is None
    # The summary covers the call (seq 2): its result becomes an orphan and is dropped.
    orphaned = [user("m1"), assistant("m2", calls=["c1"]), summary("s3", 2, 2), tool("m4", "c1"), user("m5")]
    assert ids(effective_committed_view(orphaned, "t1")) == ["m1", "s3", "m5"]


def test_committed_view_without_marks_is_the_read_view() -> None:
    """CKP-5, VIEW-1: without marks the committed view equals strip_unpaired_tool_calls."""
    log = [user("m1"), assistant("m2", calls=["c1", "c2"]), tool("m3", "c2"), tool("m4", "c5")]
    view = effective_committed_view(log, "t1")
    assert ids(view) == ["m1", "m2", "m3"]
    assert call_ids(view[1]) == ["c2"]
    assert log[1].tool_calls is not None
    assert len(log[1].tool_calls) == 2


# --- CKP-6: apply_run_projection ---------------------------------------------------------


def make_run(
    run_id: str, status: RunStatus, updated_at: int, *, parent: str | None = None, thread_id: str = "t1"
) -> RunRecord:
    """A valid run of `thread_id` with the given status, updated at `updated_at` (s)."""
    return RunRecord(
        run_id=run_id,
        thread_id=thread_id,
        agent_id="agent",
        status=status,
        request=RunRequestSnapshot(parent_thread_id=parent) if parent is not None else None,
        waiting=RunWaitingState(reason=WaitingReason.USER_INPUT) if status is RunStatus.WAITING else None,
        created_at=1,
        updated_at=updated_at,
        finished_at=updated_at if status is RunStatus.DONE else None,
    )


def projection(thread: Thread) -> tuple[str | None, str | None, str | None, int | None]:
    """(active_run_id, open_run_id, latest_run_id, latest_run_updated_at)."""
    return (thread.active_run_id, thread.open_run_id, thread.latest_run_id, thread.latest_run_updated_at)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (RunStatus.CREATED, (None, "r1", "r1", 10)),
        (RunStatus.RUNNING, ("r1", "r1", "r1", 10)),
        (RunStatus.WAITING, (None, "r1", "r1", 10)),
        (RunStatus.DONE, (None, None, "r1", 10)),
    ],
)
def test_projection_on_a_fresh_thread(
    status: RunStatus, expected: tuple[str | None, str | None, str | None, int | None]
) -> None:
    """CKP-6: created/waiting open the run; running opens and activates it; done clears; latest is the run."""
    projected = apply_run_projection(Thread(id="t1"), make_run("r1", status, 10))
    assert projection(projected) == expected


def busy_thread(active: str | None = "r0", open_run: str | None = "r0") -> Thread:
    """A thread whose latest run r0 was updated at 10, with the given active/open ids."""
    return Thread(
        id="t1",
        resource_id="res",
        metadata=ThreadMetadata(created_at=5, updated_at=6, title="hello", custom={"k": [1]}),
        active_run_id=active,
        open_run_id=open_run,
        latest_run_id="r0",
        latest_run_updated_at=10,
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (RunStatus.CREATED, (None, "r1", "r1", 20)),
        (RunStatus.RUNNING, ("r1", "r1", "r1", 20)),
        (RunStatus.WAITING, (None, "r1", "r1", 20)),
        # A done run clears only ids that name it: r0's stay.
        (RunStatus.DONE, ("r0", "r0", "r1", 20)),
    ],
)
def test_newer_run_over_another_run(
    status: RunStatus, expected: tuple[str | None, str | None, str | None, int | None]
) -> None:
    """CKP-6: a newer run becomes the latest; created/waiting clear active; done clears only its own ids."""
    projected = apply_run_projection(busy_thread(), make_run("r1", status, 20))
    assert projection(projected) == expected


def test_newer_done_run_clears_its_own_ids() -> None:
    """CKP-6: a newer done run that is the active and open run clears both."""
    projected = apply_run_projection(busy_thread(), make_run("r0", RunStatus.DONE, 11))
    assert projection(projected) == (None, None, "r0", 11)
    mixed = apply_run_projection(busy_thread(active=None, open_run="r0"), make_run("r0", RunStatus.DONE, 11))
    assert projection(mixed) == (None, None, "r0", 11)


@pytest.mark.parametrize("status", [RunStatus.CREATED, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.DONE])
def test_older_run_changes_nothing(status: RunStatus) -> None:
    """CKP-6: a run older than latest_run_updated_at naming no projected id changes nothing."""
    thread = busy_thread()
    projected = apply_run_projection(thread, make_run("r1", status, 9, parent="p"))
    assert projected == thread
    assert projected.parent_thread_id is None


def test_older_done_run_clears_ids_that_name_it() -> None:
    """CKP-6: an older done run clears active/open ids naming it, keeps ids naming another run and the latest."""
    both = apply_run_projection(busy_thread(active="r1", open_run="r1"), make_run("r1", RunStatus.DONE, 3))
    assert projection(both) == (None, None, "r0", 10)
    only_open = apply_run_projection(busy_thread(active="r0", open_run="r1"), make_run("r1", RunStatus.DONE, 3))
    assert projection(only_open) == ("r0", None, "r0", 10)
    only_active = apply_run_projection(busy_thread(active="r1", open_run="r0"), make_run("r1", RunStatus.DONE, 3))
    assert projection(only_active) == (None, "r0", "r0", 10)


@pytest.mark.parametrize("status", [RunStatus.CREATED, RunStatus.RUNNING, RunStatus.WAITING])
def test_older_unfinished_run_keeps_ids_that_name_it(status: RunStatus) -> None:
    """CKP-6: only a done older run clears ids; an older created/running/waiting one changes nothing."""
    thread = busy_thread(active="r1", open_run="r1")
    assert apply_run_projection(thread, make_run("r1", status, 3)) == thread


def test_equal_updated_at_applies() -> None:
    """CKP-6: a run with updated_at equal to latest_run_updated_at is not older: it applies."""
    projected = apply_run_projection(busy_thread(), make_run("r1", RunStatus.RUNNING, 10))
    assert projection(projected) == ("r1", "r1", "r1", 10)
    waiting = apply_run_projection(busy_thread(), make_run("r1", RunStatus.WAITING, 10))
    assert projection(waiting) == (None, "r1", "r1", 10)


def test_projection_keeps_other_fields() -> None:
    """CKP-6: the projection touches only the run ids, latest_run_updated_at and (if unset) the parent."""
    projected = apply_run_projection(busy_thread(), make_run("r1", RunStatus.RUNNING, 20))
    assert projected.id == "t1"
    assert projected.resource_id == "res"
    assert projected.metadata == ThreadMetadata(created_at=5, updated_at=6, title="hello", custom={"k": [1]})


def test_thread_without_parent_takes_the_request_parent() -> None:
    """CKP-6: a thread without parent takes run.request.parent_thread_id."""
    projected = apply_run_projection(Thread(id="t1"), make_run("r1", RunStatus.RUNNING, 10, parent="p"))
    assert projected.parent_thread_id == "p"
    no_request = apply_run_projection(Thread(id="t1"), make_run("r1", RunStatus.RUNNING, 10))
    assert no_request.parent_thread_id is None
    no_parent = make_run("r1", RunStatus.RUNNING, 10)
    no_parent.request = RunRequestSnapshot()
    assert apply_run_projection(Thread(id="t1"), no_parent).parent_thread_id is None


def test_thread_with_parent_keeps_it() -> None:
    """CKP-6: a thread that has a parent keeps it whatever the run's request says."""
    projected = apply_run_projection(
        Thread(id="t1", parent_thread_id="q"), make_run("r1", RunStatus.DONE, 10, parent="p")
    )
    assert projected.parent_thread_id == "q"
    assert projection(projected) == (None, None, "r1", 10)


def test_projection_does_not_mutate_the_thread() -> None:
    """CKP-6, ISO-1: apply_run_projection returns a projected copy; the input thread is unchanged."""
    thread = busy_thread()
    before = thread.copy()
    projected = apply_run_projection(thread, make_run("r1", RunStatus.RUNNING, 20, parent="p"))
    assert thread == before
    assert projected is not thread
    assert projection(projected) == ("r1", "r1", "r1", 20)
    projected.metadata.custom["k"] = "changed"
    assert thread.metadata.custom == {"k": [1]}
    cleared = apply_run_projection(thread, make_run("r0", RunStatus.DONE, 3))
    assert projection(cleared) == (None, None, "r0", 10)
    assert thread == before


# --- CKP-1: checkpoint_parent_thread_id ----------------------------------------------------


def test_checkpoint_parent_thread_id() -> None:
    """CKP-1: the parent a checkpoint validates is the stored thread's, else the run request's."""
    with_parent = make_run("r1", RunStatus.RUNNING, 1, parent="p")
    without_parent = make_run("r1", RunStatus.RUNNING, 1)
    assert checkpoint_parent_thread_id(None, with_parent) == "p"
    assert checkpoint_parent_thread_id(None, without_parent) is None
    assert checkpoint_parent_thread_id(Thread(id="t1"), with_parent) == "p"
    assert checkpoint_parent_thread_id(Thread(id="t1"), without_parent) is None
    assert checkpoint_parent_thread_id(Thread(id="t1", parent_thread_id="q"), with_parent) == "q"
    assert checkpoint_parent_thread_id(Thread(id="t1", parent_thread_id="q"), without_parent) == "q"


# --- THR-5: sorted_threads_by_recent_activity, recent_activity_key ------------------------


def stamped(thread_id: str, updated: int | None = None, created: int | None = None) -> Thread:
    return Thread(id=thread_id, metadata=ThreadMetadata(created_at=created, updated_at=updated))


def activity_set() -> list[Thread]:
    return [
        stamped("z", created=1),
        stamped("b", updated=50),
        stamped("a", updated=50),
        stamped("c", created=70),
        stamped("d", updated=0, created=500),
        stamped("e"),
        stamped("f", updated=60, created=10),
    ]


#: THR-5 order of `activity_set()`, written out from the spec.
ACTIVITY_ORDER = ["c", "f", "a", "b", "z", "d", "e"]


def test_sorted_threads_by_recent_activity_returns_a_new_list() -> None:
    """THR-5: updated_at (else created_at, else 0) descending, then id ascending; input unchanged."""
    threads = activity_set()
    before = [t.id for t in threads]
    ordered = sorted_threads_by_recent_activity(threads)
    assert [t.id for t in ordered] == ACTIVITY_ORDER
    assert [t.id for t in threads] == before
    assert sorted_threads_by_recent_activity([]) == []


def test_recent_activity_key_sorts_in_place() -> None:
    """`threads.sort(key=recent_activity_key)` is the in-place sort of upstream's Rust helper."""
    threads = activity_set()
    threads.sort(key=recent_activity_key)
    assert [t.id for t in threads] == ACTIVITY_ORDER


def test_the_old_sort_name_warns_and_still_returns_a_new_list() -> None:
    """`sort_threads_by_recent_activity` is deprecated: it warns, names its successors, and behaves as before."""
    threads = activity_set()
    before = [t.id for t in threads]
    with pytest.warns(DeprecationWarning, match=r"sorted_threads_by_recent_activity.*recent_activity_key"):
        ordered = sort_threads_by_recent_activity(threads)
    assert [t.id for t in ordered] == ACTIVITY_ORDER
    assert [t.id for t in threads] == before


def test_a_repeated_interval_keeps_only_its_first_summary() -> None:
    """VIEW-2: two summaries of the same interval each contain the other; the earlier one stays, once."""
    log = records(user("m1"), user("m2"), summary("s3", 1, 2), summary("s4", 1, 2), user("m5"))
    assert ids(effective_messages(log)) == ["s3", "m5"]
