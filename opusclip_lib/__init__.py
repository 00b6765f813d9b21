"""Video-OpusClip: async helpers for databases, HTTP APIs and media pipelines.

The notebooks in ``notebooks/`` teach the ideas; this package holds the code they reuse.
"""

__version__ = "0.1.0"
