"""A training run that finishes: prints to both streams and exits 0."""

import sys

print("step 1/2 loss 1.0")
print("warning: nothing to worry about", file=sys.stderr)
print("step 2/2 loss 0.5")
print("saved model to output/")
