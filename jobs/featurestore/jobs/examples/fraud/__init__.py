"""The fraud example repository: features of a card-fraud scoring model (README.md)."""
