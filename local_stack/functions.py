"""Lambda functions of template.yaml, loaded from their code folders and invoked in-process,
one invocation at a time per instance, as a Lambda execution environment does."""

from __future__ import annotations

import importlib.util
import itertools
import threading
import time
import uuid
from types import ModuleType

from local_stack.template import ACCOUNT_ID, REGION, FunctionSpec

_instances = itertools.count(1)


class LambdaContext:
    def __init__(self, spec: FunctionSpec):
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + spec.timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One execution environment of a function: its own copy of the handler module."""

    def __init__(self, spec: FunctionSpec):
        self.spec = spec
        self._lock = threading.Lock()
        self._handler = None

    def _load(self) -> None:
        module_file, _, function = self.spec.handler.rpartition(".")
        path = self.spec.code_dir / f"{module_file.replace('.', '/')}.py"
        name = f"_local_{self.spec.name}_{next(_instances)}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module: ModuleType = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        self._handler = getattr(module, function)

    def invoke(self, event: dict) -> object:
        with self._lock:
            if self._handler is None:
                self._load()
            return self._handler(event, LambdaContext(self.spec))
