"""Moved to :mod:`xaikit.attributors.guided` (guided backprop is an attribution rule; training uses it
as the interpretable-gradient teacher).  This alias keeps old imports working."""
from ..attributors.guided import *  # noqa: F401,F403
from ..attributors.guided import GuidedReport, GuidedWarning, guided, guided_gradient  # noqa: F401
