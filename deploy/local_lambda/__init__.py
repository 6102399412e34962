"""local-lambda: AWS Lambda's Invoke API on 127.0.0.1, each execution environment a real Lambda
runtime (AWS's Runtime Interface Emulator running awslambdaric with `deploy.handler`).

`LocalLambda` is the gateway (a context manager); `serve_forever` runs it for the CLI.
`deploy.local_lambda.environments` documents what is measured and Lambda's semantics applied.
"""
from deploy.local_lambda.gateway import DEFAULT_HANDLER, LocalLambda, function_name_for, serve_forever

__all__ = ["DEFAULT_HANDLER", "LocalLambda", "function_name_for", "serve_forever"]
