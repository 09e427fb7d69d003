"""Delivery: the night's figures sent to the people who act on them (the Board's and agencies'
e-mailed digests) and published as open data (the metrics upserted into Socrata datasets)."""
