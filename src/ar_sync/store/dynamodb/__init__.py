"""The Store on DynamoDB, for the serverless deployment."""
