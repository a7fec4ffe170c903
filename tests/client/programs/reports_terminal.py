"""Reports whether its streams are terminals, echoes a line read from stdin, then exits 3."""

import sys

print(f"stdout tty: {sys.stdout.isatty()}, stderr tty: {sys.stderr.isatty()}", flush=True)
sys.stdout.write("progress\r50%\r100%\n")
sys.stdout.flush()
if len(sys.argv) > 1:
    print(f"read: {input()}", flush=True)
sys.exit(3)
