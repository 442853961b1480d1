"""Electricity Maps: hourly carbon intensity and power breakdown per zone (UTC day x zone partitions)."""
