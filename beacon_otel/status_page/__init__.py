"""``beacon-otel status-page``: a static status page built from Prometheus's history.

The page is one HTML file with its styles inline (no script, no font, no image fetched), so it
renders offline and can be published as it is (GitHub Pages, any static host); ``status.json``
beside it carries the same facts for machines. ``prometheus`` reads, ``history`` turns samples
into uptime, incidents and deployments, ``render`` writes HTML.
"""
