"""Prometheus metrics of the pipeline: the services' own (writer, notifier, alerter, read client)
and the Flink job's, read from its REST API at scrape time. docs/operations.md "Observability" lists them;
docs/runbooks/ has what to do when one alerts."""
