"""Jinja2 templates of the delivery README and HTML pages, shipped as package data."""
