"""A pytest plugin that writes, as JSON lines, the IAM permissions of every AWS call the operator scripts make.

tests/integration/test_operator_policy.py runs the scripts' own tests with it
(`-p tests.operator_calls`, the output file in OPERATOR_CALLS_FILE): a call counts when code of
the `scripts` package made it, so the tests' own set-up and checks are left out.
"""

from __future__ import annotations

import json
import os
from typing import Any

from scripts.deploy.iam_permissions import required_permissions
from scripts.deploy.operation_recorder import OperationRecorder

# moto's account, which every recorded ARN names.
ACCOUNT = "123456789012"
_recorder = OperationRecorder()


def pytest_sessionstart(session: Any) -> None:
    """Record from the first test on."""
    _recorder.start()


def pytest_sessionfinish(session: Any) -> None:
    """Write one line per permission: the action, the resource, and the operation that needed it."""
    _recorder.stop()
    lines = set()
    for operation in _recorder.operations:
        if not operation.called_from("scripts"):
            continue
        for permission in required_permissions(operation, ACCOUNT):
            lines.add(
                json.dumps(
                    {
                        "operation": f"{operation.service}:{operation.name}",
                        "action": permission.action,
                        "resource": permission.resource,
                    },
                    sort_keys=True,
                )
            )
    with open(os.environ["OPERATOR_CALLS_FILE"], "w") as output:
        output.writelines(line + "\n" for line in sorted(lines))
