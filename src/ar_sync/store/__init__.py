"""Stores: the embedded SQLite file and DynamoDB for the serverless deployment; tokens
encrypted at rest."""
