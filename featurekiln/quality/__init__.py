"""Data quality: Great Expectations suites, the gate that runs them, and run reports."""
