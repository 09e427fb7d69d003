"""Promises about the project itself: the README's quick start is what CI runs, the code is
ruff clean, no module imports against the flow, and the README's Layout names every module."""

import re
import subprocess
import sys
from pathlib import Path

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


def test_no_module_imports_against_the_flow():
    """The import-linter contracts of pyproject.toml: harvest -> catalog -> metrics -> board ->
    report -> backup, and production never imports the demo."""
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert "0 broken" in completed.stdout


LAYOUT_NAME = re.compile(r"[\w.]+\.(?:py|yaml|md)\b|[\w]+/")


def layout_entries() -> dict[str, set[str]]:
    """The README's Layout tree: each top-level entry (a folder or a line of files) with every
    file and folder name its lines mention."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    tree = readme.split("## Layout", 1)[1].split("```\n", 2)[1]
    entries: dict[str, set[str]] = {}
    package = ""
    for line in tree.splitlines():
        if not line.startswith(" "):
            name, _, what = line.partition(" ")
            package = name.rstrip("/")
            current = entries[package] = set(LAYOUT_NAME.findall(what))
        elif line[2] != " ":  # an entry of the package: its name, then what it is
            top = line.split("  ")[1].strip()
            if top.endswith("/"):
                package_names = entries.setdefault(f"{package}/{top.rstrip('/')}", set())
                package_names.update(LAYOUT_NAME.findall(line.split(top, 1)[1]))
                current = package_names
            else:
                entries[package].update(LAYOUT_NAME.findall(line))
                current = entries[package]
        else:
            current.update(LAYOUT_NAME.findall(line))
    return entries


def tree_names(folder: Path, *, recursive: bool) -> set[str]:
    found = folder.rglob("*") if recursive else folder.iterdir()
    return {
        f"{path.name}/" if path.is_dir() else path.name
        for path in found
        if path.name not in {"__init__.py", "__pycache__"}
        and "__pycache__" not in path.parts
        and (path.is_dir() or path.suffix in {".py", ".yaml", ".md"})
    }


def test_the_readmes_layout_names_every_module_and_only_those():
    entries = layout_entries()
    package = REPO_ROOT / "ctdata_pipeline"
    top = {name for name in tree_names(package, recursive=False) if not name.endswith("/")}
    assert entries["ctdata_pipeline"] == top
    for folder in sorted(path for path in package.iterdir() if path.is_dir()):
        if folder.name == "__pycache__":
            continue
        assert entries[f"ctdata_pipeline/{folder.name}"] == tree_names(folder, recursive=True)
    assert entries["benchmarks"] == tree_names(REPO_ROOT / "benchmarks", recursive=True)


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
