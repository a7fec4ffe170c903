"""The job side: `trainwreck run` and `trainwreck submit`, which send logs to a trainwreck server."""
