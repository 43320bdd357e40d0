"""Every command line loads diffusers and scipy.stats only when it builds a model or draws, so a bad option or a
missing file is reported without waiting for them (docs/architecture.md#imports)."""

import subprocess
import sys

from mar.cli.main import TOOLS

DEFERRED = ("diffusers", "scipy.stats")


def test_no_command_line_imports_diffusers_or_scipy_stats_at_start():
    modules = [module for module, _ in TOOLS.values() if module != "mar.demo.launch"] + ["train", "sample"]
    probe = (
        f"import sys; import {', '.join(modules)}; "
        f"print(' '.join(name for name in {DEFERRED!r} if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported at start: {result.stdout.strip()}"
