"""The protocol package loads its modules on first use (``richchat.core.protocol.__init__``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import richchat.core.protocol as protocol
from tests.client.servers import cli_env

PROBE = """\
import sys
import richchat.core.protocol.text, richchat.core.protocol.beacon
print(",".join(m for m in ("richchat.core.protocol.frames", "richchat.core.protocol.codec")
               if m in sys.modules) or "none")
"""


def test_text_and_beacon_do_not_build_the_frame_models() -> None:
    # discovery (beacons) and the name rules need neither the codec nor the ~35 frame models
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            env=cli_env(), timeout=60)
    assert result.stdout.strip() == "none", result.stdout + result.stderr


def test_every_public_name_resolves_to_its_module() -> None:
    from richchat.core.protocol import codec, frames, text

    assert set(protocol.__all__) <= set(dir(protocol))
    for name in protocol.__all__:
        value = getattr(protocol, name)
        assert any(getattr(m, name, None) is value for m in (codec, frames, text)), name
    assert frames.PROTOCOL_VERSION == protocol.PROTOCOL_VERSION == 1
    with pytest.raises(AttributeError):
        protocol.no_such_name  # noqa: B018
