"""Probes (metrics v2): requests beyond the catalog about one dataset or one URL each, spread
over nights and polite to every host. They read the night's snapshot and write only their own
results; the metrics that use them (FR-5, FR-8, AC-1) are computed after them."""
