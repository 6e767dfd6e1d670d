"""The recommendation engine: plain numpy/scipy/LightFM, no Django, no Neo4j.

- ai.recommendation_engine: the recommenders (LightFM, popularity) behind one API, and their fallback chain.
- ai.evaluation: per-user train/test split and ranking metrics.
- ai.model_store: trained models on disk (atomic, versioned, HMAC-verified).
- ai.experiments: A/B testing statistics (stable assignment, intervals, an always-valid test under peeking).
"""
