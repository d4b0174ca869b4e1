"""Reports on campaign records (diagnostics, comparisons, plots, HTML): see issue 3."""
