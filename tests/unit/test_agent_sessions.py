from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from deskfleet.agent.sessions import count_sessions, tcp_table

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid\n"


def line(local_port: int, remote: str, state: str) -> str:
    return f"   0: 0100007F:{local_port:04X} {remote} {state} 00000000:00000000 00:00000000 0\n"


def test_counts_established_connections_on_the_session_port_only() -> None:
    table = HEADER + "".join([
        line(3389, "0A000001:D431", "01"),   # established session
        line(3389, "0A000002:D432", "01"),   # another
        line(3389, "00000000:0000", "0A"),   # the listening socket
        line(3389, "0A000003:D433", "06"),   # TIME_WAIT: a session that ended
        line(15090, "0A000004:D434", "01"),  # a metrics scrape, not a session
    ])
    assert count_sessions([table], 3389) == 2


def test_ipv6_table_counts_too() -> None:
    v6 = HEADER + ("   0: 00000000000000000000000001000000:0D3D "
                   "0000000000000000FFFF00000A000001:C001 01 0 0 0\n")
    assert count_sessions([HEADER, v6], 3389) == 1


def test_empty_and_malformed_tables() -> None:
    assert count_sessions([], 3389) == 0
    assert count_sessions([HEADER + "garbage\n"], 3389) == 0


@given(st.integers(0, 500), st.integers(1, 65535))
def test_tcp_table_round_trips(sessions: int, port: int) -> None:
    assert count_sessions([tcp_table(sessions, port)], port) == sessions
    assert count_sessions([tcp_table(sessions, port)], port % 65535 + 1) == 0
