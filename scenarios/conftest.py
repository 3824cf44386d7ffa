"""Scenario set-up: scenarios drive the lab (processes on loopback) and read results."""
