"""Layer 5 of the flow: record tokens, latency and cost for every request.

``records`` is the row; ``store`` writes rows to SQLite off the hot path and reads them back;
``rollups`` sums rows per group for reports; ``pricing`` turns usage into dollars; ``metrics``
mirrors each row into Prometheus series; ``usage`` renders rollups for the CLI. Nothing here
imports the pipeline, router or backends.
"""

from hybridgate.ledger.metrics import GatewayMetrics
from hybridgate.ledger.pricing import Pricer
from hybridgate.ledger.records import LedgerRecord, prompt_hmac
from hybridgate.ledger.store import USAGE_GROUPS, SqliteLedger
from hybridgate.ledger.usage import render_usage

__all__ = [
    "USAGE_GROUPS",
    "GatewayMetrics",
    "LedgerRecord",
    "Pricer",
    "SqliteLedger",
    "prompt_hmac",
    "render_usage",
]
