"""Step 2 of the flow: decide where a request goes. Pure decisions, no I/O."""

from hybridgate.router.rules import RuleRouter

__all__ = ["RuleRouter"]
