"""Session-aware autoscaling: pure decisions from (pool spec, hosts, time)."""
