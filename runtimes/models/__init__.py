"""Models as the platform knows them: the registry of versions with lineage and approval, where a base model
comes from, and what a deploy or an evaluation names. Used by training, serving and monitoring alike.
"""
