"""Board: the tables the DATA Board and agency data officers read."""
