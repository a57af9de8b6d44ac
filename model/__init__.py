"""Recognition engine: image intake, localisation, descriptors, indexes and verification.

This package imports nothing from the rest of PAIN, so it can be used and tested on its own.
"""
