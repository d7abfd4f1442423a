"""Simulators that generate ground-truth data for genxr models."""
