"""The scheduled sweeper flow (deployment `sweeper` in prefect.yaml)."""

from prefect import flow, get_run_logger

from serviceplus.models.services.sweeper import sweep


@flow(name="sweeper")
def sweeper() -> dict:
    report = sweep()
    get_run_logger().info("sweep: %s", report)
    return report.__dict__
