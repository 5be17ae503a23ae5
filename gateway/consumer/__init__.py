"""Imaging Document Consumer: ITI-18, ITI-43 and RAD-69 clients and the study fetch."""
