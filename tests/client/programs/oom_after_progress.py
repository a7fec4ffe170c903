"""A training run that shows a progress bar, then dies of CUDA out of memory (exit 1)."""

import sys
import time

print("[INFO:swift] args: per_device_train_batch_size=4, gradient_accumulation_steps=2", flush=True)
for step in range(1, 4):
    sys.stderr.write(f"\rTrain:  {step * 10}%|{'#' * step}{' ' * (10 - step)}| {step}/10 [00:0{step}<00:09]")
    sys.stderr.flush()
    time.sleep(0.02)
sys.stderr.write("\n")
sys.stderr.write(
    "Traceback (most recent call last):\n"
    '  File "train.py", line 42, in <module>\n'
    "    loss.backward()\n"
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of"
    " 79.15 GiB of which 1.02 GiB is free.\n"
)
sys.exit(1)
