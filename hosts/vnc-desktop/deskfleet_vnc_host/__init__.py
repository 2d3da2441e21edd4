"""deskfleet's reference VNC session host: Xvnc, websockify and noVNC from Debian's
packages, and this glue, which speaks deskfleet's session contract and enforces the
session controls the portal sends. See ../README.md."""
