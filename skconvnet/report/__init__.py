"""Reporting on fitted models: layer scores of a search, diagnostics (training curves,
confident errors) and the HTML page of the evaluate command."""
