"""Framework adapters. The torch adapter (``paretomtl.adapters.torch``) is the only
place in paretomtl that imports a deep-learning framework; it is not built yet."""
