"""What people and Prometheus look at: the plugin page's data and HTML (``overview``,
``overview_page``) and the loop's gauges for ``/metrics`` (``gauges``). Reads only."""
