"""Promises about the project itself: the README's quick start is what CI runs, and the code is
ruff clean."""

import re
import subprocess
import sys

from ctdata_pipeline_tests.support import REPO_ROOT


def quick_start_commands() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick_start)


def test_the_quick_start_is_two_commands_demo_then_tests():
    demo, tests = quick_start_commands()
    assert demo.endswith("ctdata demo") and "pip install" in demo
    assert tests == "bash scripts/test"
    script = (REPO_ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert 'pip install -q --disable-pip-version-check -e ".[test]"' in script
    assert script.rstrip().endswith('exec .venv/bin/python -m pytest "$@"')


def test_ci_runs_the_readmes_test_command():
    _, tests = quick_start_commands()
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines()


def test_the_code_is_ruff_clean():
    completed = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]


def test_the_production_dagster_yaml_in_the_readme_is_valid(tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Production.*?```yaml\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "dagster.yaml").write_text(block)
    for name in ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("DAGSTER_PG_PORT", "5432")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_db"]["db_name"] == "dagster"
    assert config["run_monitoring"]["enabled"] is True
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_the_readme_never_serves_the_writable_ui_on_a_public_address():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    production = readme.split("\n## Production\n", 1)[1].split("\n## ", 1)[0]
    webservers = re.findall(r"dagster-webserver [^\n`]*", readme)
    assert webservers
    assert all("-h 127.0.0.1" in command for command in webservers), webservers
    assert any("--read-only" in command for command in webservers)
    assert "basic_auth" in production and "reverse_proxy 127.0.0.1:3000" in production


def test_the_dagster_yaml_ctdata_writes_is_valid(tmp_path):
    from dagster._core.instance.config import dagster_instance_config

    from ctdata_pipeline.cli import DAGSTER_YAML

    (tmp_path / "dagster.yaml").write_text(DAGSTER_YAML)
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["telemetry"]["enabled"] is False
