"""The payment service: commands in, durable state changes and channel calls, responses out."""
