"""devorch-tui: reproducible developer VMs on Canonical Multipass, from the keyboard."""

import warnings

__version__ = "0.1.0"

# asyncssh (2.24) still names cryptography's DSA types, and cryptography >= 48 warns about each on
# import: five lines of noise on stderr in every `devorch-tui run` that a user can do nothing about
# (devorch-tui never offers or accepts DSA keys). Only those warnings, only from asyncssh.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)")
