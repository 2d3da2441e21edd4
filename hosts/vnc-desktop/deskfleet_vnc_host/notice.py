"""The drain notice inside the desktop: a window on the session's display with the
operator's message and, when a logoff will be forced, the deadline and a countdown.
Needs Tk (Debian: python3-tk). The supervisor starts it with DISPLAY set to the session
and stops it when the notice changes or is withdrawn.

    python3 -m deskfleet_vnc_host.notice --message "..." [--deadline 2026-11-24T20:00:00Z]
"""

from __future__ import annotations

import argparse
import tkinter as tk
from datetime import UTC, datetime

TITLE = "deskfleet notice"
BACKGROUND, FOREGROUND = "#FFB81C", "#231F20"  # amber: the test recognises it on screen
WIDTH = 640


def countdown(deadline: datetime, now: datetime) -> str:
    left = max(0, int((deadline - now).total_seconds()))
    minutes, seconds = divmod(left, 60)
    when = deadline.astimezone().strftime("%H:%M:%S %Z")
    return (f"You will be logged off at {when} "
            f"(in {minutes} min {seconds:02d} s)." if left else
            "You are being logged off now.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--message", required=True)
    parser.add_argument("--deadline", default="")
    args = parser.parse_args(argv)
    deadline = (datetime.fromisoformat(args.deadline.replace("Z", "+00:00"))
                if args.deadline else None)
    if deadline is not None and deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)

    root = tk.Tk(className="deskfleet-notice")
    root.title(TITLE)
    root.configure(background=BACKGROUND, padx=24, pady=18)
    root.overrideredirect(True)  # no window manager needed, nothing to close it with
    root.attributes("-topmost", True)
    tk.Label(root, text="Notice", font=("DejaVu Sans", 20, "bold"), bg=BACKGROUND,
             fg=FOREGROUND, anchor="w").pack(fill="x")
    tk.Label(root, text=args.message, font=("DejaVu Sans", 13), bg=BACKGROUND,
             fg=FOREGROUND, wraplength=WIDTH - 48, justify="left", anchor="w"
             ).pack(fill="x", pady=(8, 8))
    when = tk.Label(root, font=("DejaVu Sans", 13, "bold"), bg=BACKGROUND, fg=FOREGROUND,
                    wraplength=WIDTH - 48, justify="left", anchor="w")
    when.pack(fill="x")

    def tick() -> None:
        when.configure(text=countdown(deadline, datetime.now(UTC)) if deadline else
                       "You may finish your work at your own pace.")
        root.lift()
        root.after(1000, tick)

    tick()
    root.update_idletasks()
    x = max(0, (root.winfo_screenwidth() - WIDTH) // 2)
    root.geometry(f"{WIDTH}x{root.winfo_reqheight()}+{x}+40")
    root.mainloop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
