"""PreRec: pre-trained, cross-domain, zero-shot recommendation with causal debiasing.

Implements Lin et al., "Pre-trained Recommender Systems: A Causal Debiasing Perspective"
(WSDM 2024, arXiv 2310.19251). See the README for the layout of the package.
"""

__version__ = "0.1.0"
