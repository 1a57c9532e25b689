"""The unixctl client's output format against recorded OVS 3.5 answers, under both ``ovs`` libraries.

The peer replays, in the order the client sends them on a new connection, what OVS 3.5's ovs-vswitchd
answered in the Debian 13 guest (tests/data/unixctl/ovs-3.5, recorded by tests/guest/record_unixctl.py):
``list-commands`` as text (a new connection starts in text), ``set-options --format json`` (an empty plain
reply), ``version`` (plain) and ``dpif/show`` (a JSON document). The live path on a real 3.5 switch runs in
the Debian 13 guest (tests/test_collectors_unixctl.py through tests/test_guest.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import ovs.version
import pytest
from scripted_peer import peer

from ovstop.errors import SourceError
from ovstop.parsers import dpif_show
from ovstop.parsers.reply import JsonReply
from ovstop.sources.unixctl import UnixctlClient

REPO = Path(__file__).resolve().parents[1]
V35 = REPO / "tests" / "data" / "unixctl" / "ovs-3.5"
PLAIN_EMPTY = {"reply-format": "plain", "reply": ""}  # unixctl_command_reply(conn, NULL) on a JSON connection


def ovs35_script() -> list[Any]:
    return [
        ("result", (V35 / "list-commands.txt").read_text()),
        ("result", PLAIN_EMPTY),
        ("result", json.loads((V35 / "version.json").read_text())),
        ("result", json.loads((V35 / "dpif-show.json").read_text())),
    ]


def test_ovs35_connection_asks_for_json_and_parses_the_document(tmp_path_factory: pytest.TempPathFactory) -> None:
    with peer(tmp_path_factory.getbasetemp(), ovs35_script()) as path:
        client = UnixctlClient(path)
        try:
            reply = client.request("dpif/show")
        finally:
            client.close()
    assert isinstance(reply, JsonReply)
    assert (client.output_format, client.format_reason, client.version) == (
        "json",
        "set-options --format json",
        "3.5.0",
    )
    assert dpif_show.parse(reply) == dpif_show.parse((V35 / "dpif-show.txt").read_text())


def test_a_refused_set_options_keeps_text(tmp_path_factory: pytest.TempPathFactory) -> None:
    script = ovs35_script()
    script[1] = ("error", "option format has invalid value json")
    script[3] = ("result", (V35 / "dpif-show.txt").read_text())
    with peer(tmp_path_factory.getbasetemp(), script) as path:
        client = UnixctlClient(path)
        try:
            reply = client.request("dpif/show")
        finally:
            client.close()
    assert isinstance(reply, str) and client.output_format == "text"
    assert client.format_reason.startswith("set-options refused JSON: ")
    assert "invalid value json" in client.format_reason


def test_a_list_commands_answer_that_is_not_one_is_a_source_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    with peer(tmp_path_factory.getbasetemp(), [("result", "no header here\n")]) as path:
        client = UnixctlClient(path)
        with pytest.raises(SourceError, match="list-commands: unexpected first line"):
            client.request("dpif/show")
        assert not client.is_connected


CLIENT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import ovs.version
from ovstop.parsers import dpif_show
from ovstop.sources.unixctl import UnixctlClient
client = UnixctlClient(sys.argv[2])
reply = client.request("dpif/show")
print(json.dumps([ovs.version.VERSION, client.output_format, repr(dpif_show.parse(reply))]))
client.close()
"""


def test_same_answers_with_debian_12s_ovs_library(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ovstop reads the JSON-RPC result itself (not through ``ovs.unixctl.client``, whose ``transact`` gives
    ``str(result)`` before OVS 3.4 and the parsed result after), so Debian 12's python3-openvswitch 3.1 and
    the ovs wheel in .venv hand the same document to the same parser."""
    with peer(tmp_path_factory.getbasetemp(), ovs35_script()) as path:
        client = UnixctlClient(path)
        try:
            datapaths = dpif_show.parse(client.request("dpif/show"))
            ours = [ovs.version.VERSION, client.output_format, repr(datapaths)]
        finally:
            client.close()
        done = subprocess.run(["/usr/bin/python3", "-c", CLIENT, str(REPO), str(path)], capture_output=True, text=True)
    if "No module named 'ovs'" in done.stderr:
        pytest.skip("python3-openvswitch not installed")
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)
    assert theirs[1:] == ours[1:] and ours[1] == "json"
    assert theirs[0] != ours[0]  # two different libraries really were compared (not so in a guest)
