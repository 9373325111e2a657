"""Conformance suite: every Shared Folders function against VirtualBox 7.0.14's own code paths.

Conventions (docs/conformance.md is generated from them by ``python -m tests.conformance.report``):

- every test carries ``@pytest.mark.shfl("FUNCTION")`` (the SHFL_FN name without the prefix;
  several names when a test pins an interaction), and
- its docstring's first line names the branch of VirtualBox's code the test follows, and a line
  ``VBox: file:function[, file:function ...]`` names where that branch lives (paths relative to
  ``src/VBox/`` of VirtualBox 7.0.14, e.g. ``HostServices/SharedFolders/vbsf.cpp:vbsfCreate``).

The fixtures are the service-level ones (a real host tree, both resolvers: openat2 and the walk).
"""

from tests.service.conftest import Guest, guest, svc, tree  # noqa: F401  (fixtures re-exported)
