"""Harvest: fetch each portal's whole catalog, as the portal publishes it, into a staged file."""
