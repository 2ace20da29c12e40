"""Model weights: the catalog of both stacks, fetching the lite stack from package registries,
importing full-stack files, verifying checksums, and resolving a model id to its file.

Other code asks for a model file with `tools.models.resolve.resolve(models_dir, model_id)`, which
raises `ModelMissing` with the exact file to put where and the command that fetches or imports it.
"""
