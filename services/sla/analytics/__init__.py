"""Analytics: scorecards (三率), the seeds' loop, hotspots, exports — built from the topics by sla's
second consumer (its own group and its own schema, so every figure can be rebuilt from the start)."""
