"""The shipped workflows, one spec module each: TITLE, STAGES (thumbnail boxes), NEEDS (node types that must
exist, else the workflow is skipped) and build(g), which adds the nodes top to bottom.

A module's name is the file stem it writes in example_workflows/ and api_workflows/.
"""

from . import (
    selma_evaluate,
    selma_flux_train_merge,
    selma_full_pipeline,
    selma_merge_compare,
    selma_styleinject_inspect,
    selma_train_expert,
)

SPECS = (
    selma_full_pipeline,
    selma_train_expert,
    selma_merge_compare,
    selma_styleinject_inspect,
    selma_evaluate,
    selma_flux_train_merge,
)
