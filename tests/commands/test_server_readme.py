"""The README's ``richchat server`` synopsis and its list of environment variables name every
option ``richchat server --help`` has (``--redis`` and ``--cluster`` were missing from both)."""

from __future__ import annotations

import re

from tests.client.servers import REPO_ROOT
from tests.commands.test_help_exit_codes import help_text


def _server_section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    return text.split("\n## richchat server\n", 1)[1].split("\n## ", 1)[0]


def test_the_synopsis_names_every_option() -> None:
    synopsis = _server_section().split("```bash\n", 1)[1].split("```", 1)[0]
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", help_text(("server",)))) - {"--help"}
    assert "--redis" in options and "--cluster" in options
    missing = {o for o in options if o not in synopsis and f"--no-{o[2:]}" not in synopsis
               and not (o.startswith("--no-") and f"--{o[5:]}" in synopsis)}
    assert not missing, f"the README's synopsis lacks {sorted(missing)}"


def test_the_environment_variables_are_all_listed() -> None:
    section = _server_section()
    listed = section.split("* Every option also comes from an environment variable", 1)[1]
    listed = listed.split("\n* ", 1)[0]
    wanted = set(re.findall(r"env var: (RICHCHAT_[A-Z_]+)", help_text(("server",))))
    assert {"RICHCHAT_REDIS", "RICHCHAT_CLUSTER"} <= wanted
    wanted.add("RICHCHAT_REDIS_PASSWORD")  # read by the command, not an option's
    missing = {name for name in wanted if f"`{name}`" not in listed}
    assert not missing, f"the README's list lacks {sorted(missing)}"
