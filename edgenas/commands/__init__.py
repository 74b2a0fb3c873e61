"""Command-line handlers grouped by topic; each module exposes ``register(subparsers)``."""
