"""The user's feature repository as commands: ``featurestore init`` scaffolds one, ``featurestore
plan`` shows what a run would do with it (docs/feature-repository.md)."""
