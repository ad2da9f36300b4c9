"""The digest the tools/hash_*.py scripts print: one place, so their lines compare.

Each script runs as ``python tools/hash_X.py``, which puts tools/ on sys.path.
"""
import hashlib

import numpy as np


def digest(arrays) -> str:
    """First 20 hex digits of the SHA-256 of the arrays' dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:20]


def net_digest(net) -> str:
    """Digest of a Network's weights, then its biases."""
    return digest(list(net.weights) + list(net.biases))
