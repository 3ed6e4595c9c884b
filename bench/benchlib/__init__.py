"""The benchmark's pieces (bench/bench.py is the entry point).

httpd is started through the integration tests' launcher
(tests/integration/harness.py), so the benchmark and the tests run the same
server the same way; this package adds only what measuring needs.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
