"""The serving layer: real-time tables folded from the clean events, and the API over them.

`fold.refresh_serving` folds new quality batches into `serving.*`; `queries` reads them (search,
recommendations, live metrics); `api.create_app` serves them over HTTP. No Dagster here.
"""
