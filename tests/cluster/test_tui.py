"""A netcat user on one node and a chat UI user (Textual Pilot) on another, in one chat; the
UI's node goes away and the UI carries on through the other node (its alternate)."""

from __future__ import annotations

from richchat.core.client import Address
from richchat.core.tui import ChatApp
from tests.cluster.conftest import NodeFactory
from tests.linechat import LineClient
from tests.tui.test_app import SIZE, plain, type_line, until


async def test_netcat_and_the_chat_ui_on_two_nodes_then_failover(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()
    ned = await LineClient.connect(a.port)  # netcat: no HELLO, a name prompt
    await ned.expect(lambda l: "Type a nickname" in l)
    ned.send("ned")
    await ned.expect(lambda l: l.startswith("*** You are ned"))
    app = ChatApp(Address("127.0.0.1", b.port), "alice", reconnect_base=0.1, reconnect_cap=0.5,
                  alternates=[Address("127.0.0.1", a.port)])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.chat.nick == "alice", "registration")
        await ned.expect("*** alice joined")
        ned.send("hello from netcat")
        await until(pilot, lambda: any("<ned> hello from netcat" in s for s in plain(app, "lobby")),
                    "ned's line in the UI")
        await type_line(pilot, "hi ned")
        await ned.expect("alice: hi ned")

        ned.send("/join dev")
        await ned.expect(lambda l: l.startswith("*** You are in #dev"))
        await type_line(pilot, "/join dev")
        await ned.expect("*** alice joined #dev")
        await until(pilot, lambda: "dev" in app.chat.conversations
                    and "ned" in app.chat.conversations["dev"].users, "ned in #dev's list")
        ned.send("/msg alice psst")
        await until(pilot, lambda: "@ned" in app.chat.conversations, "a private conversation")

        # the UI's node goes away: the chat reconnects to the other node of the same chat
        await b.stop()
        await ned.expect(lambda l: l.startswith("*** alice left"), timeout=15)
        await until(pilot, lambda: app.session.address == Address("127.0.0.1", a.port)
                    and app.session.registered, "registered again, on the other node", 30)
        await ned.expect("*** alice joined #dev", timeout=15)  # rooms rejoined
        await type_line(pilot, "/join dev")
        await type_line(pilot, "still here")
        await ned.expect("[dev] alice: still here", timeout=15)
    await ned.close()
