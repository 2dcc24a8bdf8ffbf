"""Near-duplicate detection with MinHash: shingling, signatures, LSH banding, clusters.

The Beam transforms that use these pieces are in pipeline/transforms/dedup.py; the signature
store that lets scheduled runs see each other is pipeline/dedup/store.py.
"""
