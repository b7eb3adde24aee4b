"""Planning: which days to compute, in which chunks. Pure: plain dates, no engine."""
