"""The soak tests run on the integration tests' harness and fixtures, not copies of them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parent.parent / "integration"
sys.path.insert(0, str(INTEGRATION))

# Loaded under its own name, since this file is "conftest" too; its fixtures
# are made visible here by name.
_spec = importlib.util.spec_from_file_location("integration_conftest", INTEGRATION / "conftest.py")
integration_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(integration_conftest)
backend = integration_conftest.backend
server_root = integration_conftest.server_root
make_httpd = integration_conftest.make_httpd
make_users = integration_conftest.make_users
