# Stage 0: the config, checked against the schema with one readable line per problem.
import os
import sys
from pathlib import Path

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError

_SCHEMA = yaml.safe_load(
    (Path(workflow.basedir) / "workflow/schemas/config.schema.yaml").read_text()
)
if not os.environ.get(
    "LINFLOW_FULL_SCHEMA_ERRORS"
) and not jsonschema.Draft202012Validator(_SCHEMA).is_valid(config):
    # only an invalid config pays for importing the explanation (linflow.schema loads xarray)
    sys.path.insert(0, str(Path(workflow.basedir) / "src"))
    from linflow import schema as config_schema  # noqa: E402

    raise WorkflowError(
        "Invalid config:\n  "
        + "\n  ".join(config_schema.problems(config))
        + "\n(set LINFLOW_FULL_SCHEMA_ERRORS=1 for the full schema error)"
    )
