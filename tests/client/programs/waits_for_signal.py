"""A training run that waits to be stopped from outside: says `ready`, then sleeps (default signal actions)."""

import time

print("ready", flush=True)
time.sleep(60)
print("finished without being stopped", flush=True)
