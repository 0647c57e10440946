"""The conformance suite runs with the same guard as the unit tests: sockets blocked except loopback."""

from tests.conftest import _no_network  # noqa: F401  (an autouse fixture: importing it applies it here)
