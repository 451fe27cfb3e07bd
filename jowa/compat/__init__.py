"""Compatibility with the official JOWA code: checkpoint import and the fixture parity check."""
