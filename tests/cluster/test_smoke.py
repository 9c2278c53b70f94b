from __future__ import annotations

from tests.cluster.conftest import NodeFactory
from tests.linechat import LineClient


async def test_two_nodes_one_lobby(make_node: NodeFactory) -> None:
    a = await make_node()
    b = await make_node()
    alice = await LineClient.connect(a.port, hello="t", nick="alice")
    bob = await LineClient.connect(b.port, hello="t", nick="bob")
    await alice.expect(lambda l: l.startswith("JOIN|lobby|bob("))
    alice.send("MSG|hi bob")
    line = await bob.expect(lambda l: l.startswith("RMSG|lobby|"))
    assert line.endswith("|alice|hi bob")
    assert (await alice.expect(lambda l: l.startswith("RMSG|lobby|"))) == line
    await alice.close()
    await bob.close()
