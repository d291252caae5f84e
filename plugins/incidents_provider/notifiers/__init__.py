"""Notifiers: case e-mails and task-failure alerts."""
