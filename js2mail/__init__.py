"""js2mail: a self-hosted transactional email API that sends through your own mailbox."""

__version__ = "0.1.0"
