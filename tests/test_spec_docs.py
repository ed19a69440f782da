"""The contract by example (`python -m conformance spec`): docs/SPEC.md is current, HTML is sound, CLI works."""

from __future__ import annotations

import difflib
import io
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance import RULES, RULES_VERSION, StoreContract, __version__, rule
from conformance.__main__ import main
from conformance.contract._stores import ThreadRunStore
from conformance.kit._spec import AREAS, REGENERATE, contract_examples, render_spec

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "SPEC.md"


def test_docs_spec_is_current() -> None:
    """docs/SPEC.md is exactly what the kit renders now; regenerate it after changing rules or tests."""
    expected = render_spec("md")
    committed = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else ""
    if committed != expected:
        diff = difflib.unified_diff(
            committed.splitlines(), expected.splitlines(), "docs/SPEC.md", "rendered now", n=1, lineterm=""
        )
        excerpt = "\n".join(list(diff)[:40])
        pytest.fail(
            f"docs/SPEC.md is stale: regenerate it with `{REGENERATE}` from the repository root "
            f"(with the project's virtualenv active), then commit it.\n{excerpt}",
            pytrace=False,
        )


class _Page(HTMLParser):
    """Checks that tags nest and close, and collects ids and the text of every <pre><code>."""

    VOID = frozenset({"meta", "link", "br", "hr", "img", "input"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []
        self.tags: set[str] = set()
        self.code_blocks: list[str] = []
        self._code: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.ids += [value for name, value in attrs if name == "id" and value is not None]
        if tag in self.VOID:
            return
        if tag == "code" and self.stack[-1:] == ["pre"]:
            self._code = []
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "code" and self._code is not None:
            self.code_blocks.append("".join(self._code))
            self._code = None

    def handle_data(self, data: str) -> None:
        if self._code is not None:
            self._code.append(data)


@pytest.fixture(scope="module")
def page() -> _Page:
    text = render_spec("html")
    assert text.startswith("<!DOCTYPE html>\n")
    parsed = _Page()
    parsed.feed(text)
    parsed.close()
    return parsed


def test_html_is_well_formed(page: _Page) -> None:
    """Every element closes in order, and every id is unique."""
    assert page.problems == []
    assert page.stack == []
    assert len(page.ids) == len(set(page.ids))


def test_html_anchors_every_rule_and_area(page: _Page) -> None:
    """Every rule ID is an anchor, and so is every area."""
    assert set(RULES) <= set(page.ids)
    assert {f"area-{code}" for code in AREAS} <= set(page.ids)


def test_html_is_self_contained(page: _Page) -> None:
    """No script, stylesheet link, image or frame: one page that renders offline."""
    assert not page.tags & {"script", "link", "img", "iframe"}


def test_html_code_reads_back_as_the_source(page: _Page) -> None:
    """Escaping is exact: the text of each <pre><code> is the example's source, `<`, `&` and quotes included."""
    sources = {example.source for example in contract_examples() if example.source is not None}
    assert sources <= set(page.code_blocks)
    assert any("->" in source for source in sources)


def test_markdown_lists_every_rule_and_both_versions() -> None:
    """The Markdown starts with the versions, and has a heading per area and per rule."""
    text = render_spec("md")
    assert f"- kit version: {__version__}\n- rule set version: {RULES_VERSION}\n" in text
    assert text.startswith("# The thread/run store contract, by example\n\n<!-- fmt:off -->\n")
    assert text.endswith("\n<!-- fmt:on -->\n"), "formatters must leave the examples as the source has them"
    headings = set(text.splitlines())
    assert {f"### {rule_id}" for rule_id in RULES} <= headings
    assert {f"## {code}: {title}" for code, (title, _) in AREAS.items()} <= headings


def test_rendering_is_deterministic_and_machine_independent() -> None:
    """Two renderings are equal, and neither mentions where the kit or the checkout lives."""
    for format in ("md", "html"):
        text = render_spec(format)
        assert render_spec(format) == text
        assert str(ROOT) not in text
        assert str(Path(sys.prefix)) not in text


def test_every_contract_test_is_an_example() -> None:
    """Each test of StoreContract shows up once, with the rules its marks name; state machines have no body."""
    examples = contract_examples()
    names = [example.name for example in examples]
    assert sorted(names) == sorted(name for name in dir(StoreContract) if name.startswith("test"))
    assert all(example.kind in ("Example", "State machine") for example in examples)
    bodies = [example for example in examples if example.source is not None]
    assert all(example.source.startswith(("@rule(", "@pytest")) for example in bodies if example.source)


def test_every_area_has_a_heading() -> None:
    """A rule area added to the registry needs its heading in `AREAS`."""
    assert {r.area for r in RULES.values()} == set(AREAS)


class _OneExample:
    """A contract of one test, to render the corner cases."""

    @rule("THR-1", "THR-6", requires="durable")
    async def test_with_a_fence(self, store: ThreadRunStore) -> None:
        """Loads `x` and compares: 1 < 2 & *stars*.

        A second paragraph.
        """
        assert await store.load_thread("```") is None

    @pytest.mark.rule("THR-3")
    def test_marked_by_hand(self) -> None:
        """Tagged with the mark itself, not through `rule`: listed without code."""

    def test_not_a_contract_test(self) -> None:
        """No rule mark: not an example."""


def test_corner_cases_of_the_markdown() -> None:
    """Backtick runs lengthen the fence, prose is escaped outside code, other rules and needs are named."""
    text = render_spec("md", contract=_OneExample)
    assert "\n````python\n" in text
    assert "Loads `x` and compares: 1 \\< 2 & \\*stars\\*.\n\nA second paragraph.\n" in text
    assert "Also verifies THR-6. Needs capability `durable`." in text
    assert "### THR-2\n\n" in text
    assert "No example yet." in text
    assert "#### Test: `test_marked_by_hand`\n\nTagged with the mark itself" in text
    assert "test_not_a_contract_test" not in text


def test_corner_cases_of_the_html() -> None:
    """Code spans become <code>, the rest is escaped."""
    text = render_spec("html", contract=_OneExample)
    assert "<p>Loads <code>x</code> and compares: 1 &lt; 2 &amp; *stars*.</p>" in text
    assert "<p>No example yet.</p>" in text


def test_unknown_format_is_refused() -> None:
    """render_spec names the formats it knows."""
    with pytest.raises(ValueError, match="md, html"):
        render_spec("pdf")


def test_cli_writes_a_file(tmp_path: Path) -> None:
    """`spec --format html --output PATH` writes the page, making folders as needed."""
    target = tmp_path / "site" / "spec.html"
    assert main(["spec", "--format", "html", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render_spec("html")


def test_cli_prints_markdown_by_default(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """Without --output, the Markdown goes to stdout as UTF-8."""
    assert main(["spec"]) == 0
    assert capsysbinary.readouterr().out.decode("utf-8") == render_spec("md")


def test_cli_refuses_unknown_options(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad argument exits with status 2 and says what is allowed."""
    with pytest.raises(SystemExit) as exited:
        main(["spec", "--format", "pdf"])
    assert exited.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


def test_cli_in_a_pipe_that_closes_early() -> None:
    """`python -m conformance spec | head` exits 0 without a broken-pipe traceback."""
    completed = subprocess.run(
        ["bash", "-c", f"set -o pipefail; '{sys.executable}' -m conformance spec | head -n 2"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "# The thread/run store contract, by example\n\n"
    assert completed.stderr == ""


class _ClosedPipe:
    """A stdout whose reader went away: every write raises BrokenPipeError."""

    def __init__(self, fileno: int) -> None:
        self._fileno = fileno
        self.buffer = self

    def write(self, data: object) -> int:
        raise BrokenPipeError

    def flush(self) -> None:
        raise BrokenPipeError

    def fileno(self) -> int:
        return self._fileno


def test_cli_points_a_closed_stdout_at_devnull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a broken pipe, stdout's descriptor goes to /dev/null, so the exit-time flush cannot fail."""
    with (tmp_path / "stdout").open("wb") as fake:
        monkeypatch.setattr(sys, "stdout", _ClosedPipe(fake.fileno()))
        assert main(["spec"]) == 0
        fake.write(b"dropped")
    assert (tmp_path / "stdout").read_bytes() == b""


def test_only_a_leading_spec_is_the_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anything else, `spec` later on included, goes to pytest exactly as before."""
    seen: list[list[str]] = []

    def fake_pytest_main(args: list[str]) -> int:
        seen.append(args)
        return 3

    monkeypatch.setattr(pytest, "main", fake_pytest_main)
    assert main(["-q", "-k", "spec"]) == 3
    assert seen[0][-5:] == ["--store", "reference_store:ReferenceStore", "-q", "-k", "spec"]
    assert seen[0][0].endswith("suite")


def test_cli_writes_text_to_a_stdout_without_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A replaced stdout without a byte buffer (io.StringIO) gets the text."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["spec"]) == 0
    assert out.getvalue() == render_spec("md")
