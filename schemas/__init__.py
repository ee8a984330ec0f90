"""Versioned product schemas (YAML), shipped as package data."""
