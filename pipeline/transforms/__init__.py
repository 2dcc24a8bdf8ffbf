"""One composite PTransform per stage; each can be applied to ``beam.Create(...)`` in a test."""
