"""The CLI suite runs on both engines: tests/engines.py."""

from tests.engines import parametrize_engine as pytest_generate_tests

__all__ = ["pytest_generate_tests"]
