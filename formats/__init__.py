"""The trace format: event declarations, the Arrow schema, trace files (no BCC here)."""
