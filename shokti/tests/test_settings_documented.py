"""Every environment variable shokti/settings.py reads is documented (.env.example and docs/configuration.md),
and every setting it reads from the environment is used by the code (a documented knob that does nothing lies)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "shokti" / "settings.py"
ENV_READERS = {"str", "int", "float", "bool", "list", "json", "dict", "url", "db", "path", "cache", "email"}
# Where a setting may be used besides settings.py: the project's own code and templates.
CODE_GLOBS = ("**/*.py", "**/*.html", "**/*.txt")
SKIP_DIRS = {".venv", ".git", "node_modules", "var", "static"}
# Read by a library although not in django.conf.global_settings (the file email backend's folder).
FRAMEWORK_SETTINGS = {"EMAIL_FILE_PATH"}


def _env_name(call: ast.Call) -> str | None:
    """NAME of `env.str("NAME", ...)`, `env("NAME")`, `secret("NAME", ...)`; None for other calls."""
    func = call.func
    is_env = (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"
              and func.attr in ENV_READERS) or (isinstance(func, ast.Name) and func.id in {"env", "secret"})
    if not is_env or not call.args or not isinstance(call.args[0], ast.Constant):
        return None
    return call.args[0].value if isinstance(call.args[0].value, str) else None


def _settings_tree() -> ast.Module:
    return ast.parse(SETTINGS.read_text())


def env_names() -> set[str]:
    return {name for node in ast.walk(_settings_tree()) if isinstance(node, ast.Call) and (name := _env_name(node))}


def env_settings() -> dict[str, set[str]]:
    """Module-level settings assigned from the environment: setting name -> the variables it reads."""
    settings: dict[str, set[str]] = {}
    for node in ast.walk(_settings_tree()):
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = {name for call in ast.walk(node.value) if isinstance(call, ast.Call) and (name := _env_name(call))}
        for target in targets:
            if isinstance(target, ast.Name) and target.id.isupper() and names:
                settings.setdefault(target.id, set()).update(names)
    return settings


def _code_text() -> str:
    texts = []
    for pattern in CODE_GLOBS:
        for path in ROOT.glob(pattern):
            if SKIP_DIRS.intersection(path.relative_to(ROOT).parts) or path == SETTINGS or "tests" in path.parts:
                continue
            texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def test_the_reader_finds_the_settings_environment_variables():
    names = env_names()
    # a sample of each way settings.py reads the environment: env.<type>, secret(), a multi-line call
    assert {"DEBUG", "DATABASE_URL", "SECRET_KEY", "OPENAI_API_KEY", "SHORT_LINK_BASE_URL",
            "CHROMIUM_LAUNCH_ARGS", "JOBS_LEASE_SECONDS"} <= names
    assert len(names) > 100


def test_every_environment_variable_is_in_env_example():
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert sorted(env_names() - documented) == []


def test_every_environment_variable_is_in_the_configuration_reference():
    reference = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", reference))
    assert sorted(env_names() - documented) == []


def test_every_setting_read_from_the_environment_is_used():
    from django.conf import global_settings

    code = _code_text()
    # Read by settings.py itself (another setting computed from it).
    read_here = {node.id for node in ast.walk(_settings_tree()) if isinstance(node, ast.Name)
                 and isinstance(node.ctx, ast.Load)}
    unused = [
        name for name in env_settings()
        # Django's own settings and Celery's (CELERY_*, read by Celery) are used by the framework.
        if not hasattr(global_settings, name) and not name.startswith("CELERY_") and name not in FRAMEWORK_SETTINGS
        and name not in read_here and not re.search(rf"\b{name}\b", code)
    ]
    assert unused == []
