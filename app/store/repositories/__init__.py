"""Every query of the store, one module per table or concern; repositories flush, callers commit."""
