"""Reports on campaign records (diagnostics, comparisons, plots, HTML): see issue 3."""


class ReportError(Exception):
    """A folder that holds no campaign, or a comparison that cannot be made."""
