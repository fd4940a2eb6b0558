"""Textual UI: the app, its panes, screens and widgets. Owns no I/O: it calls services in workers."""
