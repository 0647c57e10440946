"""The top-level namespace: `__all__` is exactly what `llmclient/__init__.py` defines, and importing
llmclient stays light (no litellm, httpx, openai or vcr until a call is made)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

import llmclient

INIT = Path(llmclient.__file__)
REPO = INIT.parent.parent

# Names the contract (DESIGN §2) relies on at top level.
CONTRACT = [
    "APIConnectionError",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConfigurationError",
    "ContentFilterError",
    "ContextWindowExceededError",
    "Cost",
    "FinishReason",
    "LLMError",
    "MalformedResponseError",
    "Message",
    "NotFoundError",
    "OverloadedError",
    "ProviderSpec",
    "RateLimitError",
    "RequestTimeoutError",
    "Response",
    "SchemaValidationError",
    "ServerError",
    "StreamEvent",
    "ToolCall",
    "UnsupportedCapabilityError",
    "Usage",
    "register_provider",
]


def names_defined_in_init() -> set[str]:
    """Public names bound at module level in __init__.py (imports, assignments, defs), read from source."""
    names: set[str] = set()
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_all_is_sorted_and_unique() -> None:
    assert llmclient.__all__ == sorted(set(llmclient.__all__))


def test_all_is_every_public_name_defined_in_init() -> None:
    assert set(llmclient.__all__) == names_defined_in_init()


def test_every_name_in_all_is_importable_and_not_a_module() -> None:
    namespace: dict[str, object] = {}
    exec("from llmclient import *", namespace)  # noqa: S102
    assert set(namespace) - {"__builtins__"} == set(llmclient.__all__)
    assert [name for name in llmclient.__all__ if isinstance(getattr(llmclient, name), types.ModuleType)] == []


def test_no_public_non_module_attribute_is_left_out_of_all() -> None:
    public = {
        name
        for name, value in vars(llmclient).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(llmclient.__all__)


@pytest.mark.parametrize("name", CONTRACT)
def test_contract_names_are_exported(name: str) -> None:
    assert name in llmclient.__all__


def test_use_cassette_is_also_reachable_from_its_module() -> None:
    from llmclient.cassettes import use_cassette

    assert llmclient.use_cassette is use_cassette


HEAVY = ("litellm", "httpx", "openai", "vcr")


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import json, sys\n"
        "import llmclient\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_subprocess_check_would_see_a_heavy_import() -> None:
    """Guards the check above against passing vacuously (e.g. a wrong module name)."""
    result = run_python("import json, sys, httpx\nprint(json.dumps('httpx' in sys.modules))\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) is True


def test_missing_key_fails_before_litellm_is_imported_or_a_socket_is_opened() -> None:
    code = (
        "import json, os, socket, sys\n"
        "attempts = []\n"
        "def refuse(self, address):\n"
        "    attempts.append(repr(address))\n"
        "    raise OSError('blocked')\n"
        "socket.socket.connect = refuse\n"
        "socket.socket.connect_ex = refuse\n"
        "os.environ.pop('OPENAI_API_KEY', None)\n"
        "import llmclient\n"
        "try:\n"
        "    llmclient.Client('openai/gpt-4o-mini').complete('hi')\n"
        "    outcome = 'no error'\n"
        "except llmclient.ConfigurationError as exc:\n"
        "    outcome = str(exc)\n"
        "print(json.dumps([outcome, 'litellm' in sys.modules, attempts]))\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    outcome, litellm_loaded, attempts = json.loads(result.stdout)
    assert "set the OPENAI_API_KEY environment variable" in outcome
    assert (litellm_loaded, attempts) == (False, [])
