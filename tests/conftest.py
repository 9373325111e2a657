"""Suite-wide settings: every tracer the tests create checks its events against the catalog.

Strict mode (``hgcmlab.machine.tracing.Tracer.strict_default``) makes an undeclared kind, an
undeclared or missing field, or a value of the wrong type raise at emit time, so an emitter
that drifts from ``runtime/trace_catalog.py`` fails the test that exercises it.
"""

from hgcmlab.machine.tracing import Tracer

Tracer.strict_default = True
