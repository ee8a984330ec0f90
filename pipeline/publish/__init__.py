"""Publish, validate and document: the last stages of a galaxy's run.

``publish`` moves the finished, validated products into the delivery folder (``<output>/<field>``)
one file at a time with atomic renames, then renders the README, writes the delivery manifest
and the checksum file.  ``validate`` runs the validator on the delivery and keeps its reports.
``document`` writes the HTML site.
"""
