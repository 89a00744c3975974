"""What a run shows and writes: tables, graphs, JSON report, JUnit, Markdown, live progress."""
