"""Attacks on the trust promises (issue #20): each test is an attack and the defence that holds."""
