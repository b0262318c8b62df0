"""Settings: the typed configuration (config.py), the connections it describes (connections.py) and
every Kafka client's connection settings (kafka_clients.py)."""
