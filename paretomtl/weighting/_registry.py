"""The registry of loss weightings (kinds: ``"loss"``, ``"gradient-norm"``)."""

from __future__ import annotations

from paretomtl._registry import Registry

REGISTRY = Registry("paretomtl.weighting", kinds=("loss", "gradient-norm"), what="loss weighting")
register = REGISTRY.register
