"""The development harness of the incident pipeline: never shipped in the production image.

Local sandbox APIs of the five networks and the stream generator behind them, the local
services (SMTP sink), the local Airflow stack, the demo and the benchmarks. It imports the
product (:mod:`incidents`); the product never imports it.
"""
