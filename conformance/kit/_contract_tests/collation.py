"""Contract tests: ids that differ only by case, Unicode normal form or width are different ids.

A store keeps an id exactly as given (MOD-6), so `"a"` and `"A"` are two threads, two
runs, two messages of one log, and a prefix `"a"` does not match `"A-1"` (QRY-2,
RUN-4, SEC-1). Databases get this wrong by default: MySQL's default collation compares
`"a" = "A"`; a key store that NFC-normalizes its keys makes U+00E9 (é) and `e` followed
by U+0301 (a combining acute accent) one key; NFKC makes the fullwidth A (U+FF21) an
`A`. Portable ids (ASCII) stay apart on every store; the Unicode pairs on a store that
declares `any_ids`. Failures show ids as `ascii()` does (`'e\\u0301'`), so that two ids
that print alike read apart.
"""

from __future__ import annotations

import pytest

from conformance.contract._errors import StorageError
from conformance.contract._queries import RunQuery, ThreadQuery
from conformance.contract._stores import ThreadRunStore
from conformance.kit._runner import rule
from conformance.kit._scenarios import log, run, thread, user
from conformance.kit._violation import RuleViolation, expect

#: Portable ids that differ only by case: every store keeps each pair apart.
CASE_PAIRS = {"letter": ("a", "A"), "word": ("Thread-1", "thread-1")}
#: Ids that differ only by normal form, width or a compatibility mapping: kept apart under `any_ids`.
UNICODE_PAIRS = {
    "nfc-nfd": ("\u00e9", "e\u0301"),  # é precomposed, and e + COMBINING ACUTE ACCENT
    "singleton": ("\u212b", "\u00c5"),  # ANGSTROM SIGN, which NFC maps to Å
    "width": ("\uff21", "A"),  # FULLWIDTH LATIN CAPITAL LETTER A, which NFKC maps to A
    "ligature": ("\ufb01", "fi"),  # LATIN SMALL LIGATURE FI, which NFKC maps to fi
    "non-ascii-case": ("\u00e9", "\u00c9"),  # é and É
}
#: Prefixes and the thread ids of `PREFIXED_IDS` each must match: case and normal form count, code point by code point.
CASE_PREFIXES = {"a": ["a-1", "ab"], "A": ["A-2", "ABC"], "ab": ["ab"], "AB": ["ABC"], "Ab": []}
#: No two of these ids differ only by case (nor, below, only by normal form): a store keying ids by a
#: collation keeps them all, and only its prefix matching is put to the test.
CASE_PREFIXED_IDS = ["a-1", "A-2", "ab", "ABC", "b"]
UNICODE_PREFIXES = {
    "\u00e9": ["\u00e9-1"],
    "e\u0301": ["e\u0301-2"],
    # A literal prefix: the decomposed id starts with a plain "e", the precomposed one does not.
    "e": ["e\u0301-2", "e-3"],
    "\uff21": ["\uff21-4"],
    "A": ["A-5"],
    "\u212b": ["\u212b-6"],
    "\u00c5": ["\u00c5-7"],
}
UNICODE_PREFIXED_IDS = ["\u00e9-1", "e\u0301-2", "e-3", "\uff21-4", "A-5", "\u212b-6", "\u00c5-7"]


async def _two_threads(store: ThreadRunStore, pair: tuple[str, str]) -> None:
    """Save and log under both ids of `pair` (updated at 1 and 2); each then reads back only its own (MOD-6)."""
    for number, thread_id in enumerate(pair):
        await store.save_thread(thread(thread_id, updated_at=number + 1))
        await log(store, thread_id, f"m{number}")
    for number, thread_id in enumerate(pair):
        found = await store.load_thread(thread_id)
        shown = None if found is None else (found.id, found.metadata.updated_at)
        expect(
            shown == (thread_id, number + 1),
            "MOD-6",
            f"load_thread({thread_id!a}) gives (id, updated_at) {shown!a}, expected {(thread_id, number + 1)!a}: "
            f"the threads {pair[0]!a} and {pair[1]!a} are different threads",
        )
    listed = sorted(await store.list_threads(0, 10))
    expect(listed == sorted(pair), "MOD-6", f"list_threads lists {listed!a}, expected both of {sorted(pair)!a}")
    for number, thread_id in enumerate(pair):
        messages = await store.load_committed_messages(thread_id)
        ids = None if messages is None else [m.id for m in messages]
        expect(ids == [f"m{number}"], "MOD-6", f"the log of {thread_id!a} holds {ids!a}, expected ['m{number}']")


async def _two_runs(store: ThreadRunStore, pair: tuple[str, str]) -> None:
    """Create a run under each id of `pair`, on the thread of that id; each reads back as its own (MOD-6)."""
    for number, run_id in enumerate(pair):
        try:
            await store.create_run(run(run_id, run_id, created_at=number))
        except StorageError as error:
            raise RuleViolation(
                "MOD-6", f"create_run({run_id!a}) after {pair[0]!a} raised {error!r}: they are different runs"
            ) from error
    for number, run_id in enumerate(pair):
        found = await store.load_run(run_id)
        shown = None if found is None else (found.run_id, found.thread_id, found.created_at)
        expect(
            shown == (run_id, run_id, number),
            "MOD-6",
            f"load_run({run_id!a}) gives (run_id, thread_id, created_at) {shown!a}, "
            f"expected {(run_id, run_id, number)!a}",
        )
        latest = await store.latest_run(run_id)
        expect(
            latest is not None and latest.run_id == run_id,
            "MOD-6",
            f"latest_run({run_id!a}) gives {latest and latest.run_id!a}: the runs of thread {run_id!a} are its own",
        )


async def _two_messages(store: ThreadRunStore, pair: tuple[str, str]) -> None:
    """Append a message under each id of `pair` to one log, in one delta and in two; both stay, apart (MOD-6)."""
    first, second = pair
    for thread_id, deltas in [("together", [[first, second]]), ("apart", [[first], [second]])]:
        for delta in deltas:
            try:
                await log(store, thread_id, *[user(message_id, f"text of {message_id!a}") for message_id in delta])
            except StorageError as error:
                raise RuleViolation(
                    "MOD-6",
                    f"appending {delta!a} to the log of {thread_id!a} raised {error!r}: "
                    f"{first!a} and {second!a} are different message ids",
                ) from error
        messages = await store.load_committed_messages(thread_id)
        ids = None if messages is None else [m.id for m in messages]
        expect(ids == [first, second], "MOD-6", f"the log {thread_id!a} holds {ids!a}, expected {[first, second]!a}")
        for seq, message_id in enumerate(pair, start=1):
            record = await store.load_message_record(thread_id, message_id)
            shown = None if record is None else (record.seq, record.message_id)
            expect(
                shown == (seq, message_id),
                "MOD-6",
                f"load_message_record({thread_id!a}, {message_id!a}) gives (seq, id) {shown!a}, "
                f"expected {(seq, message_id)!a}",
            )


async def _thread_prefixes(store: ThreadRunStore, ids: list[str], prefixes: dict[str, list[str]]) -> None:
    """Save `ids`; each prefix lists exactly its ids: one outside it breaks SEC-1 too, a missing one QRY-2."""
    for thread_id in ids:
        await store.save_thread(thread(thread_id))
    for prefix, expected in prefixes.items():
        page = await store.list_threads_query(ThreadQuery(id_prefix=prefix, limit=200))
        outside = sorted(set(page.items) - set(expected))
        expect(not outside, ("QRY-2", "SEC-1"), f"id_prefix {prefix!a} lists {outside!a}, ids outside the prefix")
        found = (sorted(page.items), page.total)
        expect(found == (sorted(expected), len(expected)), "QRY-2", f"id_prefix {prefix!a} gives {found!a}")


async def _run_filters(store: ThreadRunStore, ids: list[str], prefixes: dict[str, list[str]]) -> None:
    """A run per thread of `ids` (run id `r<n>`); thread_id and id_prefix keep case and normal form (RUN-4, SEC-1)."""
    run_ids = {thread_id: f"r{number}" for number, thread_id in enumerate(ids)}
    for number, thread_id in enumerate(ids):
        await store.create_run(run(run_ids[thread_id], thread_id, created_at=number))
    for thread_id in ids:
        page = await store.list_runs(RunQuery(thread_id=thread_id, limit=200))
        found = [r.run_id for r in page.items]
        expect(found == [run_ids[thread_id]], "RUN-4", f"thread_id {thread_id!a} lists runs {found!a}")
    for prefix, threads in prefixes.items():
        expected = sorted(run_ids[thread_id] for thread_id in threads)
        page = await store.list_runs(RunQuery(id_prefix=prefix, limit=200))
        found = sorted(r.run_id for r in page.items)
        outside = sorted(set(found) - set(expected))
        expect(not outside, ("RUN-4", "SEC-1"), f"id_prefix {prefix!a} lists {outside!a}, runs of threads outside it")
        expect(found == expected, "RUN-4", f"id_prefix {prefix!a} lists runs {found!a}, expected {expected!a}")


class CollationRules:
    """Ids apart by case (every store) and by normal form or width (any_ids): MOD-6, QRY-2, RUN-4, SEC-1."""

    @rule("MOD-6")
    @pytest.mark.parametrize("pair", list(CASE_PAIRS.values()), ids=list(CASE_PAIRS))
    async def test_threads_differing_only_by_case_are_two_threads(
        self, store: ThreadRunStore, pair: tuple[str, str]
    ) -> None:
        """Threads "a" and "A" (and "Thread-1", "thread-1") each keep their own metadata and log; both are listed."""
        await _two_threads(store, pair)

    @rule("MOD-6", requires="any_ids")
    @pytest.mark.parametrize("pair", list(UNICODE_PAIRS.values()), ids=list(UNICODE_PAIRS))
    async def test_threads_differing_by_normal_form_or_width_are_two_threads(
        self, store: ThreadRunStore, pair: tuple[str, str]
    ) -> None:
        """Threads U+00E9 and e + U+0301, U+212B and U+00C5, U+FF21 and A, U+FB01 and fi, é and É: two each."""
        await _two_threads(store, pair)

    @rule("MOD-6")
    @pytest.mark.parametrize("pair", list(CASE_PAIRS.values()), ids=list(CASE_PAIRS))
    async def test_runs_differing_only_by_case_are_two_runs(self, store: ThreadRunStore, pair: tuple[str, str]) -> None:
        """create_run("A") after create_run("a") is no duplicate: both read back, each on its own thread."""
        await _two_runs(store, pair)

    @rule("MOD-6", requires="any_ids")
    @pytest.mark.parametrize("pair", list(UNICODE_PAIRS.values()), ids=list(UNICODE_PAIRS))
    async def test_runs_differing_by_normal_form_or_width_are_two_runs(
        self, store: ThreadRunStore, pair: tuple[str, str]
    ) -> None:
        """Runs U+00E9 and e + U+0301 (or fullwidth U+FF21 and A) are two runs, on two threads."""
        await _two_runs(store, pair)

    @rule("MOD-6")
    @pytest.mark.parametrize("pair", list(CASE_PAIRS.values()), ids=list(CASE_PAIRS))
    async def test_message_ids_differing_only_by_case_are_two_messages(
        self, store: ThreadRunStore, pair: tuple[str, str]
    ) -> None:
        """Messages "a" and "A" in one log are no repeat: appended together or apart, both are kept, at seqs 1 and 2."""
        await _two_messages(store, pair)

    @rule("MOD-6", requires="any_ids")
    @pytest.mark.parametrize("pair", list(UNICODE_PAIRS.values()), ids=list(UNICODE_PAIRS))
    async def test_message_ids_differing_by_normal_form_or_width_are_two_messages(
        self, store: ThreadRunStore, pair: tuple[str, str]
    ) -> None:
        """Messages U+00E9 and e + U+0301 (or fullwidth U+FF21 and A) in one log are two messages."""
        await _two_messages(store, pair)

    @rule("QRY-2", "SEC-1")
    async def test_id_prefix_is_case_sensitive(self, store: ThreadRunStore) -> None:
        """Of a-1, A-2, ab, ABC and b, prefix "a" lists a-1 and ab, "A" lists A-2 and ABC, "Ab" nothing."""
        await _thread_prefixes(store, CASE_PREFIXED_IDS, CASE_PREFIXES)

    @rule("QRY-2", "SEC-1", requires="any_ids")
    async def test_id_prefix_keeps_normal_forms_and_widths_apart(self, store: ThreadRunStore) -> None:
        """Prefix U+00E9 lists "U+00E9-1" only, e + U+0301 lists "e U+0301-2", U+FF21 lists "U+FF21-4", not "A-5".

        A prefix is literal, code point by code point: the decomposed "e U+0301-2"
        starts with "e", so prefix "e" lists it (and "e-3"), the precomposed "U+00E9-1" not.
        """
        await _thread_prefixes(store, UNICODE_PREFIXED_IDS, UNICODE_PREFIXES)

    @rule("RUN-4", "SEC-1")
    async def test_run_filters_are_case_sensitive(self, store: ThreadRunStore) -> None:
        """thread_id "a-1" lists the runs of a-1 only, not A-2's; id_prefix "A" lists the runs of A-2 and ABC."""
        await _run_filters(store, CASE_PREFIXED_IDS, CASE_PREFIXES)

    @rule("RUN-4", "SEC-1", requires="any_ids")
    async def test_run_filters_keep_normal_forms_and_widths_apart(self, store: ThreadRunStore) -> None:
        """thread_id "U+00E9-1" lists its own runs, not those of "e U+0301-2"; id_prefix U+FF21 not those of "A-5"."""
        await _run_filters(store, UNICODE_PREFIXED_IDS, UNICODE_PREFIXES)
