"""devorch-tui: reproducible developer VMs on Canonical Multipass, from the keyboard."""

__version__ = "0.1.0"
