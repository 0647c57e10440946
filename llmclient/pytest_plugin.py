"""llmclient's pytest plugin (registered through the `pytest11` entry point, so it is active in
every pytest run once llmclient is installed; `-p no:llmclient` turns it off).

- `@pytest.mark.llm_cassette(path=None, *, mode=None, strict=True, match="request")` replays (or
  records) the test's llmclient traffic through `llmclient.use_cassette`: keys scrubbed, request
  bodies matched semantically, and no API key needed in replay. The `llm_cassette` fixture yields
  the `CassetteSession` (also without the marker, with the defaults). The path defaults to
  `<test dir>/cassettes/<test module>/<test name>.yaml`; a relative path is read from the test's
  directory. The mode is the marker's, else `--llm-record-mode` (replay, record or auto; default
  replay). `strict` fails a replay that passed but left a recorded interaction unplayed.
- pytest-recording's `@pytest.mark.vcr` gets llmclient's settings: the `vcr_config` fixture
  returns `llmclient.cassettes.vcr_config(...)` for pytest-recording's record mode (without a
  `record_mode` key, so `--record-mode` and the marker's `record_mode` still decide), the custom
  matchers are registered through `pytest_recording_configure`, and a test replaying (record mode
  "none", pytest-recording's default) needs no API key.
- `llm_snapshot`: syrupy's `snapshot` with `llmclient.snapshot.ResponseSnapshotExtension`.

Nothing heavy is imported here: vcrpy and syrupy only when a test uses them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from llmclient import cassettes
from llmclient.cassettes import Match, Mode

if TYPE_CHECKING:
    from syrupy.assertion import SnapshotAssertion

_MODES = ("replay", "record", "auto")
# pytest-recording's record modes, as llmclient's cassette modes (for the scrubbing and matching settings).
_RECORDING_MODES: dict[str, Mode] = {"none": "replay", "all": "record", "new_episodes": "auto", "once": "auto",
                                     "rewrite": "auto"}
_CALL_PASSED = pytest.StashKey[bool]()
_MAX_NAME = 200


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("llmclient").addoption(
        "--llm-record-mode", choices=_MODES, default="replay",
        help="mode of an llm_cassette marker that sets none: replay (default), record or auto")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "llm_cassette(path=None, *, mode=None, strict=True, match='request'): replay or record the test's "
        "llmclient traffic through llmclient.use_cassette (path relative to the test's directory; default "
        "cassettes/<module>/<test>.yaml; mode default --llm-record-mode)")
    # Registered now, after every entry-point plugin, so that this `vcr_config` overrides
    # pytest-recording's (`{}`) whatever order the plugins loaded in; a conftest's still wins.
    config.pluginmanager.register(_RecordingFixtures(), "llmclient-vcr-config")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = bool(report.passed)
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """pytest-recording's hook, on each VCR it makes: llmclient's matchers, named in `vcr_config`."""
    cassettes.register_matchers(vcr)


def _cassette_options(path: str | Path | None = None, *, mode: Mode | None = None, strict: bool = True,
                      match: Match = "request") -> tuple[str | Path | None, Mode | None, bool, Match]:
    """The marker's signature: binding its arguments here rejects a misspelt one by name."""
    return path, mode, strict, match


def default_cassette_path(request: pytest.FixtureRequest) -> Path:
    """`<test dir>/cassettes/<test module>/<Class.>test_name[ids].yaml`, the ids made file-name safe."""
    test_file = Path(request.node.path)
    name = request.node.name
    if request.cls is not None:
        name = f"{request.cls.__name__}.{name}"
    name = re.sub(r"[^\w.\[\]-]", "-", name)
    if len(name) > _MAX_NAME:
        name = name[: _MAX_NAME - 17] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return test_file.parent / "cassettes" / test_file.stem / f"{name}.yaml"


@pytest.fixture
def llm_cassette(request: pytest.FixtureRequest) -> Iterator[cassettes.CassetteSession]:
    """The test's cassette, from its `llm_cassette` marker (or the defaults): the CassetteSession."""
    marker = request.node.get_closest_marker("llm_cassette")
    try:
        path, mode, strict, match = _cassette_options(*marker.args, **marker.kwargs) if marker else _cassette_options()
    except TypeError as exc:
        pytest.fail(f"bad @pytest.mark.llm_cassette arguments: {exc}", pytrace=False)
    if path is None:
        path = default_cassette_path(request)
    elif not Path(path).is_absolute():
        path = Path(request.node.path).parent / path
    if mode is None:
        mode = request.config.getoption("--llm-record-mode")
    with cassettes.use_cassette(path, mode, match=match) as session:
        yield session
        # Only a passed test is also failed for what it left unplayed (a failed one says why itself);
        # recording plays nothing back, so strictness means something in replay only.
        if strict and mode == "replay" and request.node.stash.get(_CALL_PASSED, False):
            session.assert_all_played()


@pytest.fixture(autouse=True)
def _llm_cassette_marker(request: pytest.FixtureRequest) -> None:
    """A test carrying the marker gets its cassette without asking for the fixture."""
    if request.node.get_closest_marker("llm_cassette") is not None:
        request.getfixturevalue("llm_cassette")


def _vcr_mode(request: pytest.FixtureRequest, config: dict[str, Any]) -> str:
    """The record mode pytest-recording gives this test's cassette: the `record_mode` of the
    `vcr` markers merged over `config` (the closest marker wins), else `--record-mode`, else none."""
    merged = dict(config)
    for marker in reversed(list(request.node.iter_markers("vcr"))):
        merged.update(marker.kwargs)
    mode = merged.get("record_mode") or request.config.getoption("--record-mode", None) or "none"
    return str(mode)


class _RecordingFixtures:
    """The fixtures for pytest-recording (a plugin object of its own: see `pytest_configure`)."""

    @pytest.fixture
    def vcr_config(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        """llmclient's scrubbing and matching for `@pytest.mark.vcr` (pytest-recording reads this)."""
        settings = cassettes.vcr_config(_RECORDING_MODES.get(_vcr_mode(request, {}), "auto"))
        del settings["record_mode"]  # pytest-recording's: --record-mode or the marker's
        return settings

    @pytest.fixture(autouse=True)
    def _llm_vcr_key_waiver(self, request: pytest.FixtureRequest) -> Iterator[None]:
        """A `@pytest.mark.vcr` test that replays (record mode "none") needs no API key, as in
        `use_cassette(mode="replay")`. Tests without the marker, or without pytest-recording, are
        left alone."""
        if request.node.get_closest_marker("vcr") is None or not _recording_active(request):
            yield
            return
        replay = _vcr_mode(request, request.getfixturevalue("vcr_config")) == "none"
        with cassettes._replay_scope(replay):
            yield


def _recording_active(request: pytest.FixtureRequest) -> bool:
    """pytest-recording is loaded and recording is not disabled (`--disable-recording`)."""
    try:
        return not request.getfixturevalue("disable_recording")
    except pytest.FixtureLookupError:
        return False


@pytest.fixture
def llm_snapshot(request: pytest.FixtureRequest) -> SnapshotAssertion:
    """syrupy's `snapshot` with llmclient's ResponseSnapshotExtension: `assert response == llm_snapshot`."""
    try:
        from llmclient.snapshot import ResponseSnapshotExtension
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "syrupy":
            raise
        pytest.fail("the llm_snapshot fixture needs syrupy: pip install syrupy", pytrace=False)
    try:
        snapshot: SnapshotAssertion = request.getfixturevalue("snapshot")
    except pytest.FixtureLookupError:
        pytest.fail("the llm_snapshot fixture needs syrupy's pytest plugin, which is disabled (-p no:syrupy?)",
                    pytrace=False)
    return snapshot.use_extension(ResponseSnapshotExtension)
