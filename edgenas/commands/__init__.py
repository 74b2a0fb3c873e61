"""Command-line handlers, one module per journey; `edgenas.cli` wires them together."""
