"""The stream layer: producing to and reading from the shop's Kafka topics."""
