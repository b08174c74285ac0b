"""Superset's side of UrbanFlow commands, through `infra/superset/supersetctl`.

Superset runs in its own venv (SQLAlchemy 1.4, `.venv-superset`), so `connectors` never imports it
nor anything under `infra/`: every Superset step is a supersetctl subcommand run as a process, the
way `urbanflow superset sync` runs `supersetctl sync`. What a partner's user, role and row-level
security filter are lives in one place, `infra/superset/assets.py`; this module only starts it and
turns its outcome into one line a user can act on.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from connectors.errors import ConfigError
from connectors.settings import Settings

#: Creating the app and writing the metadata takes ~10-30 s; a loaded machine may take longer.
STEP_TIMEOUT_S = 600
#: What a partner runs once Superset is set up, to make the users `partners add` could not.
LATER_COMMAND = "urbanflow partners superset-users"


@dataclass(frozen=True)
class SupersetStep:
    """The outcome of one supersetctl step: did it work, and its last line (what, or why not)."""

    ok: bool
    detail: str


def supersetctl(settings: Settings) -> Path:
    """The supersetctl script of the checkout (`UF_HOME`)."""
    script = settings.home / "infra" / "superset" / "supersetctl"
    if not script.is_file():
        raise ConfigError(f"{script} not found; set UF_HOME to the UrbanFlow checkout")
    return script


def environment(settings: Settings) -> dict[str, str]:
    """supersetctl keeps its state under the same var dir as every other UrbanFlow process."""
    return {**os.environ, "UF_VAR_DIR": str(settings.var_dir)}


def run(settings: Settings, *args: str) -> int:
    """Run a supersetctl command with its output on the terminal; its exit code."""
    command = [str(supersetctl(settings)), *args]
    return subprocess.run(command, env=environment(settings), check=False).returncode


def step(settings: Settings, *args: str) -> SupersetStep:
    """Run a supersetctl command quietly: never raises, whatever Superset's state."""
    try:
        script = supersetctl(settings)
        done = subprocess.run(
            [str(script), *args],
            env=environment(settings),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
        )
    except ConfigError as exc:
        return SupersetStep(False, str(exc))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SupersetStep(False, f"supersetctl {args[0]} did not finish: {exc}")
    stream = done.stdout if done.returncode == 0 else done.stderr or done.stdout
    lines = [line.strip() for line in stream.splitlines() if line.strip()]
    detail = lines[-1] if lines else f"supersetctl {args[0]} exited {done.returncode}"
    for prefix in ("supersetctl: ", "superset: "):
        detail = detail.removeprefix(prefix)
    return SupersetStep(done.returncode == 0, detail)


def add_partner_user(settings: Settings, slug: str) -> SupersetStep:
    """The partner's Superset user, role Partner and RLS filter (`supersetctl partner-user`)."""
    return step(settings, "partner-user", slug)


def disable_partner_user(settings: Settings, slug: str) -> SupersetStep:
    """The partner's Superset user deactivated, its RLS filter gone (`partner-disable`)."""
    return step(settings, "partner-disable", slug)
