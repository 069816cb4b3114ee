"""Project-level checks: the code is ruff-clean and CI runs exactly the README's test command."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from conftest import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip().startswith("python3 -m venv")]


def test_ci_runs_the_readme_test_command():
    ci_lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln.strip()]
    test_commands = [c for c in _readme_commands() if "pytest" in c]
    assert len(test_commands) == 1, "README must show exactly one test command"
    assert test_commands[0] in ci_lines


def test_readme_main_job_scores_the_shipped_clip_offline():
    from rqvqa.registry import REGISTRY

    main_jobs = [c for c in _readme_commands() if "pytest" not in c]
    assert len(main_jobs) == 1
    scored = re.search(r"rqvqa predict (\S+)", main_jobs[0])
    assert scored is not None and (REPO / scored.group(1)).is_file()  # a clip that ships with the project
    # the default model, nothing to download
    assert "--model" not in main_jobs[0] and REGISTRY.model("lite").weights == ()


def test_ruff_clean():
    if (
        shutil.which("ruff") is None
        and subprocess.run([sys.executable, "-m", "ruff", "--version"], capture_output=True).returncode != 0
    ):
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "src", "tests", "bench", "scripts"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_command_registers_and_only_the_one_run_is_imported():
    from rqvqa.cli import COMMANDS, build_parser

    full = build_parser()  # imports every command module: each must register its own parser
    names = set(full._subparsers._group_actions[0].choices)
    assert names == set(COMMANDS)
    code = (
        "import sys; from rqvqa.cli import main\n"
        "try:\n    main(['synth', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")  # `rqvqa synth` (and --help) start without importing torch
