"""The embedded local stack: clay-relay's real handlers behind a local API gateway, with DynamoDB,
SQS and Secrets Manager from moto's server and sandbox stand-ins for Clay and the other services.
No Docker, no AWS account. Start it with `make run`."""
