# Metrics: the trained generator evaluated downstream of train (FID, KID, the paper's
# figures), each a job that asks for GPUs through metrics.resources and runs on the
# CPU when there are none.


def metric_result_files():
    """Every metric's final result JSON (the metrics table's rows); none until a metric rule exists."""
    return []
