"""A program for the reference VNC host's desktops in tests: what a clinician's app is to
a real session. Run by the host (Debian's python3 with Tk) as its session command.

It fills the screen, with a panel at the top left in a colour that depends on its
process id — so a test that finds the same colour after a reconnect knows the same
program is still running, and a restarted one would show another — and writes what it
drew to `--state` (pid, colour, where). Two buttons, both at known places: "Copy patient
ID" puts `--secret` on the desktop's clipboard (a user copying text inside the session),
"Log off" ends the program, and with it the session. Nothing on it moves: with no input,
the desktop sends no updates.
"""

from __future__ import annotations

import argparse
import colorsys
import json
import os
import tkinter as tk
from pathlib import Path

TITLE = "Northgate EPR (test)"
WIDTH, HEIGHT = 900, 560
PANEL = (40, 120, 860, 520)  # the coloured panel: left, top, right, bottom
COPY_BUTTON = (40, 40, 300, 90)
LOGOFF_BUTTON = (600, 40, 860, 90)


def colour_of(pid: int) -> str:
    r, g, b = colorsys.hsv_to_rgb((pid * 47 % 360) / 360, 0.65, 0.85)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    pid = os.getpid()
    colour = colour_of(pid)
    root = tk.Tk(className="northgate-epr")
    root.title(TITLE)
    root.overrideredirect(True)
    # The whole screen: a desktop's program, not a window on a black X root.
    width, height = max(WIDTH, root.winfo_screenwidth()), max(HEIGHT, root.winfo_screenheight())
    root.geometry(f"{width}x{height}+0+0")
    canvas = tk.Canvas(root, width=width, height=height, background="#f0f4f5",
                       highlightthickness=0)
    canvas.place(x=0, y=0)
    canvas.create_rectangle(*PANEL, fill=colour, outline="")
    canvas.create_text(60, 150, anchor="nw", text=f"{TITLE}\nuser "
                       f"{os.environ.get('DESKFLEET_SESSION_USER', '?')}\npid {pid}",
                       font=("DejaVu Sans", 18), fill="#ffffff")

    def copy() -> None:
        root.clipboard_clear()
        root.clipboard_append(args.secret)

    def place(button: tk.Button, box: tuple[int, int, int, int]) -> None:
        button.place(x=box[0], y=box[1], width=box[2] - box[0], height=box[3] - box[1])

    place(tk.Button(root, text="Copy patient ID", command=copy), COPY_BUTTON)
    place(tk.Button(root, text="Log off", command=root.destroy), LOGOFF_BUTTON)
    state = {"pid": pid, "colour": colour, "panel": PANEL, "copyButton": COPY_BUTTON,
             "logoffButton": LOGOFF_BUTTON}
    Path(args.state).write_text(json.dumps(state))
    root.mainloop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
