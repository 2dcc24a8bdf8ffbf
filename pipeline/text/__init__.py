"""Pure text functions used by the normalisation stage: cleaning, language identification, PII redaction.

No Beam here, so each is unit-tested directly and reused by batch and streaming alike.
"""
