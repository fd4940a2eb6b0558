"""Modal screens shared by the panes."""
