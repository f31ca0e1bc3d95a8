"""What the benchmark scripts and the scale tests share: open-loop load on ``/verify``
(``paced_load``), a many-tenant configuration (``tenants``) and the measures of a serving
process (``scale_probe``). Not part of the package: the scripts import it as ``tools``
(their own folder is first on their path), the tests as ``bench.tools``."""
