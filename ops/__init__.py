"""The operations console (web) for operators."""
