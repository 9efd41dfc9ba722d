"""Implementations of the `emodesk` subcommands, one module each."""
