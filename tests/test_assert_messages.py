"""A failed contract check says in words what it compared, as a backend author reads it.

Every `assert` of the contract tests and state machines carries a message (checked on
the source); `diff` names the fields in which two records, lists or snapshots differ;
and broken stores run against single contract tests fail with those words on screen.
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import pytest

import conformance.kit
from conformance import PersistedState, RunStatus, Thread, ThreadMetadata
from conformance.kit._differ import diff, diff_fields, named
from conformance.kit._scenarios import Snapshot, assistant, run, thread, user

KIT = Path(conformance.kit.__file__).parent
CHECKED = [*sorted((KIT / "_contract_tests").glob("*.py")), *sorted((KIT / "_machines").glob("*.py"))]

#: A run whose status a store read back as plain text: equal under `==` (a StrEnum), yet not the same.
TEXT_STATUS = replace(run("r1", "t"), status="created")  # type: ignore[arg-type]  # the wrong type, on purpose

STORES = """
    from dataclasses import replace

    from reference_store import ReferenceStore


    class PrevCursorAtItsOwnOffset(ReferenceStore):
        \"\"\"Gives a prev_cursor to the page's own offset instead of one limit back.\"\"\"

        async def list_threads_query(self, query):
            page = await super().list_threads_query(query)
            normalized = query.normalized()
            if page.prev_cursor is not None:
                page.prev_cursor = normalized.encode_cursor(min(normalized.offset, page.total))
            return page


    class CheckpointWithoutState(ReferenceStore):
        \"\"\"load_checkpoint reads the thread state under another key, and so finds none.\"\"\"

        async def load_checkpoint(self, thread_id):
            found = await super().load_checkpoint(thread_id)
            return None if found is None else replace(found, thread_state=None)
"""


def _unworded(path: Path) -> list[str]:
    """`file:line` of each `assert` statement in `path` that has no message."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno}" for node in ast.walk(tree) if isinstance(node, ast.Assert) and node.msg is None
    ]


def test_every_kit_assert_has_a_message() -> None:
    """No `assert` in the contract tests or the state machines leaves its words to pytest's rewriting."""
    asserts = sum(isinstance(node, ast.Assert) for path in CHECKED for node in ast.walk(ast.parse(path.read_text())))
    assert asserts > 300, f"found only {asserts} asserts under {KIT}: did the modules move?"
    assert [where for path in CHECKED for where in _unworded(path)] == []


# ── diff: the words for two values that differ ────────────────────────


def test_diff_names_each_differing_field_of_a_record() -> None:
    """Two runs differ in status and updated_at: both fields are named under the run's id."""
    expected = run("r1", "t", RunStatus.RUNNING, updated_at=7)
    found = replace(expected, status=RunStatus.DONE, updated_at=5)
    assert diff(found, expected) == "run 'r1': status is 'done', expected 'running'; updated_at is 5, expected 7"


def test_diff_names_nested_fields_by_path() -> None:
    """A thread whose custom value reads back changed is named down to the key."""
    found = Thread(id="t", metadata=ThreadMetadata(title="T", custom={"n": 2}))
    expected = Thread(id="t", metadata=ThreadMetadata(title="T", custom={"n": 1}))
    assert diff(found, expected) == "thread 't': metadata.custom['n'] is 2, expected 1"


@pytest.mark.parametrize(
    ("found", "expected", "words"),
    [
        (1.0, 1, "got float 1.0, expected int 1"),
        (True, 1, "got bool True, expected int 1"),
        (PersistedState(extensions={"k": [1.0]}), PersistedState(extensions={"k": [1]}), "float 1.0, expected int 1"),
        (TEXT_STATUS, run("r1", "t"), "status is str 'created', expected RunStatus 'created'"),
    ],
    ids=["float-for-int", "bool-for-int", "nested-float", "str-for-enum"],
)
def test_diff_compares_exactly(found: object, expected: object, words: str) -> None:
    """As the kit compares (`_exact`), 1.0 is not 1 and True is not 1: the types are named."""
    assert words in diff(found, expected)


def test_diff_matches_lists_of_records_by_id() -> None:
    """A missing record is named as such, and the records both lists hold are compared field by field."""
    found = [user("m1"), user("m2", "changed")]
    expected = [user("m1"), user("m2"), user("m3")]
    assert diff(found, expected) == (
        "the list holds [message 'm1', message 'm2'], expected [message 'm1', message 'm2', message 'm3']; "
        "message 'm2': content[0]['text'] is 'changed', expected 'm2'"
    )


def test_diff_of_a_tool_call_list_names_the_calls() -> None:
    """An unanswered call the read view should have stripped is named by its id."""
    found = assistant("a1", calls=["c1", "c2"])
    expected = assistant("a1", calls=["c1"])
    assert diff(found, expected) == (
        "message 'a1': tool_calls holds [tool call 'c1', tool call 'c2'], expected [tool call 'c1']"
    )


def test_diff_of_none_and_a_record() -> None:
    """A read that gave nothing where a record was due says so, naming the record."""
    assert diff(None, run("r1", "t")) == "got None, expected run 'r1'"
    assert named(None) == "None"
    assert named(run("r1", "t")) == "run 'r1'"


def test_diff_of_snapshots_names_what_changed() -> None:
    """A snapshot names the threads, logs and runs that appeared, went or changed."""
    before = Snapshot(threads={"t": thread("t", updated_at=1)}, logs={"t": [user("m1")]}, runs={"r1": run("r1", "t")})
    after = Snapshot(threads={"t": thread("t", updated_at=2), "u": thread("u")}, logs={"t": [user("m1"), user("m2")]})
    assert diff(after, before) == (
        "thread 'u' is new; thread 't': metadata.updated_at is 2, expected 1; "
        "log of 't': the list holds [message 'm1', message 'm2'], expected [message 'm1']; run 'r1' is gone"
    )


def test_diff_counts_what_it_leaves_out() -> None:
    """Past six differences, the rest are counted, not listed."""
    found = [PersistedState(revision=n) for n in range(8)]
    expected = [PersistedState(revision=n + 1) for n in range(8)]
    assert diff(found, expected).endswith("; [5].revision is 5, expected 6; and 2 more")


def test_diff_fields_names_the_fields_of_a_tuple() -> None:
    """A tuple of named fields (a thread's run projection, say) is worded field by field."""
    names = ("active_run_id", "open_run_id", "latest_run_updated_at")
    assert diff_fields(names, (None, "r1", 5), ("r1", "r1", 10)) == (
        "active_run_id is None, expected 'r1'; latest_run_updated_at is 5, expected 10"
    )


def test_diff_of_equal_values() -> None:
    assert diff(run("r1", "t"), run("r1", "t")) == "no difference"


# ── broken stores: the words on the screen ───────────────────────────


def _run_one(pytester: pytest.Pytester, target: str, rule_id: str, test: str) -> pytest.RunResult:
    """Only contract test `test` (tagged `rule_id`) of the kit against `target`, in a session of its own."""
    pytester.makepyfile(message_stores=STORES)
    return pytester.runpytest_inprocess(
        "--pyargs", "conformance.suite", "--store", target, "--conformance-rules", rule_id,
        "-m", "not conformance_stateful", "-k", test, "--conformance-timeout", "3",
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("target", "rule_id", "test", "words"),
    [
        pytest.param(
            "message_stores:PrevCursorAtItsOwnOffset",
            "QRY-4",
            "test_prev_cursor_steps_back_one_limit",
            "*AssertionError: prev_cursor of offset=5, limit=2 decodes to offset 5; expected 3",
            id="wrong-prev-cursor",
        ),
        pytest.param(
            "broken.messages:RecordsStampedWithCreatedAt",
            "MSG-6",
            "test_record_fields_are_projected_from_the_message and load",
            "*AssertionError: load reader misprojects: record 'u1': created_at is 1700000000, expected None; "
            "record 'a1': created_at is 1700000000, expected None; *",
            id="record-field-misread",
        ),
        pytest.param(
            "broken.checkpoints:CheckpointKeepsFirstRunWrite",
            "CKP-2",
            "test_checkpoint_upserts_the_run_exactly",
            "*AssertionError: load_run('r1') after checkpoint: run 'r1': created_at is 1, expected 2",
            id="run-field-kept",
        ),
        pytest.param(
            "message_stores:CheckpointWithoutState",
            "CKP-5",
            "test_load_checkpoint_carries_the_thread_state",
            "*AssertionError: load_checkpoint('t') has no thread_state: did the store read another key?",
            id="checkpoint-state-lost",
        ),
        pytest.param(
            "broken.checkpoints:CheckpointValidatesMessagesLate",
            "CKP-1",
            "test_checkpoint_rejects_invalid_messages and repeated-id",
            "*AssertionError: checkpoint refused invalid messages but changed the store: thread 't' is new; *",
            id="refused-call-changed-the-store",
        ),
    ],
)
def test_a_broken_store_fails_with_words(
    pytester: pytest.Pytester, target: str, rule_id: str, test: str, words: str
) -> None:
    """The failure shows what was compared and what was due, in words, not two reprs."""
    result = _run_one(pytester, target, rule_id, test)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines([words])
