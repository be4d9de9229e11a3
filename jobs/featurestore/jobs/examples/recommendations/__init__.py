"""The recommendations example repository: item popularity, user recency, user-item affinity (README.md)."""
