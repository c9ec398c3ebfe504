"""Adapters in the frameworks' own terms (docs/integrations.md): the Hugging Face Trainer,
Lightning and Keras callbacks. Each module imports its framework, so it is imported only when
used: ``import footprint`` never loads any of them."""
