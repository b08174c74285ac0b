"""`urbanflow-dbt`: the dbt executable the transform DAG gives Cosmos (DESIGN.md §5).

`connectors.transform.dbt_main` builds under the warehouse lock; here, still holding it, a build
made for an Airflow run hands its candidate to that run's gate (`connectors.quality.
write_handover`). Without it, the gate copied the marts only once it got the lock, which by then
the next run's build usually held: every publish waited for the next build.
"""

from __future__ import annotations

import os
import sys

import duckdb

from connectors.errors import UrbanFlowError
from connectors.quality import handover_path, write_handover
from connectors.settings import Settings
from connectors.transform import dbt_main

#: Set by Airflow's task runner in the producer task's environment (and so in ours).
RUN_ID_VARIABLE = "AIRFLOW_CTX_DAG_RUN_ID"


def hand_over(settings: Settings) -> None:
    """Leave this run's candidate for its gate. A failure here costs the gate a lock wait, never
    the build: the gate copies the marts itself when no handover is there."""
    run_id = os.environ.get(RUN_ID_VARIABLE)
    if not run_id:
        return
    try:
        copied = write_handover(settings, handover_path(settings, run_id))
    except (UrbanFlowError, duckdb.Error, OSError) as exc:
        print(f"urbanflow-dbt: no candidate handed over to the gate ({exc})", file=sys.stderr)
        return
    print(f"urbanflow-dbt: {len(copied)} tables handed over to this run's gate", flush=True)


def main() -> None:
    dbt_main(after_build=hand_over)
