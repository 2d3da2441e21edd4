"""`python3 -m deskfleet_vnc_host`: the supervisor (see supervisor.py)."""

from .supervisor import main

raise SystemExit(main())
