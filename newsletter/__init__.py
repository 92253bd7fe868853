"""newsletter: trending research papers, picked per subscriber, in their inbox once a day."""

__version__ = "0.1.0"
