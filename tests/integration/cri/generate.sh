#!/bin/sh
# Regenerate api_pb2.py and api_pb2_grpc.py (beside this script) from api.proto with
# grpcio-tools (`pip install '.[proto]'`; the generated code needs grpcio and protobuf).
# protoc writes `import api_pb2 as api__pb2` into the stub module, which works only with this
# directory itself on sys.path: it is rewritten to a package-relative import, so the package
# imports as `cri` (tests/integration on sys.path, as pytest puts it).
# The generated code checks its versions at import: api_pb2 needs protobuf >= 7.35.1 (the protoc
# inside grpcio-tools 1.85.1) and api_pb2_grpc needs grpcio >= 1.85.1.
# usage: tests/integration/cri/generate.sh [PYTHON]   (default: the repo's .venv)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
py=${1:-$root/.venv/bin/python}
cd "$here"
"$py" -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. api.proto
sed -i 's/^import api_pb2 as api__pb2$/from . import api_pb2 as api__pb2/' api_pb2_grpc.py
grep -q '^from \. import api_pb2 as api__pb2$' api_pb2_grpc.py
# pyproject's ruff exclude matches *_pb2.py only; the stub module (an unused `import warnings`,
# unsorted imports) is exempted here rather than linted
sed -i '1i # ruff: noqa' api_pb2_grpc.py
