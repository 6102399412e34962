"""The AWS half of deploy/: packaging, deploying, tearing down and pricing with boto3.

Every resource created is tagged ``servesim:run-id``; `deploy.aws.teardown` finds and deletes
them by that tag. boto3 is an optional dependency (the ``aws`` extra); nothing here is imported
by the simulator.
"""
