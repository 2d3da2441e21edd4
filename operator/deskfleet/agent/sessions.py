"""Count live sessions from the kernel's TCP table. Pure, and protocol-agnostic.

A session host serves each remote session over one established TCP connection to its
session port (RDP, VNC, SSH, or a WebSocket for HTML5 hosts). The sidecar shares the
pod's network namespace, so /proc/net/tcp and /proc/net/tcp6 list exactly the host's
connections; no capability and no API call is needed to read them.
"""

from __future__ import annotations

ESTABLISHED = "01"


def count_sessions(tcp_tables: list[str], port: int) -> int:
    """Established connections whose local port is `port`, counted once per peer socket.

    Each table line: `sl local_address rem_address st ...`, addresses as HEXIP:HEXPORT.
    """
    peers = set()
    for table in tcp_tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != ESTABLISHED:
                continue
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == port:
                peers.add((local, remote))
    return len(peers)


TCP_TABLE_HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
                    "retrnsmt   uid\n")


def tcp_table(sessions: int, port: int) -> str:
    """A /proc/net/tcp with `sessions` established connections to `port`: the inverse of
    count_sessions, for driving real agents in tests and in hack/observed_day.py."""
    lines = "".join(f"   {i}: 0100007F:{port:04X} 0A{i:06X}:C000 {ESTABLISHED} 0 0 0\n"
                    for i in range(sessions))
    return TCP_TABLE_HEADER + lines
