"""The layers hold: chain < platform < notary < identity < payments < node (issue 11)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import zhijin
from zhijin.payments.cli import pay_app

ROOT = Path(zhijin.__file__).parent
PYPROJECT = ROOT.parent / "pyproject.toml"


def test_every_import_contract_is_kept() -> None:
    # In a process of its own: import-linter reconfigures logging, which would silence the
    # warnings later tests in this process read.
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), str(PYPROJECT), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_domain_names_the_root_host() -> None:
    pattern = re.compile(r"platform\.runtime|\bPlatform\b|zhijin\.node")
    hits = [
        f"{path.relative_to(ROOT)}:{number}"
        for domain in ("identity", "payments", "notary", "credit", "aml", "risk", "lending")
        for path in sorted((ROOT / domain).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


def test_a_domain_command_outside_the_root_cli_is_refused(tmp_path: Path) -> None:
    # Only the root's CLI knows how to open a host; a domain's group alone cannot.
    result = CliRunner().invoke(pay_app, ["accounts", "show", "a1", "--data", str(tmp_path)])
    assert isinstance(result.exception, RuntimeError)
    assert "root CLI" in str(result.exception)
