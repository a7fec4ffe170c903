"""`trainwreck check`: a launch command read before the run, against rules kept as data (`rules/`)."""
