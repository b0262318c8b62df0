"""Prometheus metrics of the pipeline: the services' own (writer, notifier, alerter, read client)
and the Flink job's, read from its REST API at scrape time. README "Observability" lists them;
docs/runbooks/ has what to do when one alerts."""
