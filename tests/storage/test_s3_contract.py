"""The registry contract suite (tests/registry) run again with every artifact under an s3:// root.

The `registry` fixture of tests/storage/conftest.py puts the artifacts on a moto_server process over
HTTP. Tests that open files under `registry_dir` by path, start their own local registries (the
concurrency suites) or read settings only are left out; LOCAL_ONLY names the ones that look at files by
local path, whose object-storage counterparts live in test_object_storage.py.
"""

from __future__ import annotations

import pytest

from tests.registry import (
    test_bad_input,
    test_cleanup,
    test_history,
    test_production,
    test_registration,
    test_schema,
    test_status_rules,
    test_status_transitions,
    test_version_rules,
    test_versions,
)
from tests.registry.conftest import model  # noqa: F401  (the contract tests' fixture)

CONTRACT_MODULES = [
    test_bad_input, test_cleanup, test_history, test_production, test_registration, test_schema,
    test_status_rules, test_status_transitions, test_version_rules, test_versions,
]
# These read files through os.path or under registry_dir; test_object_storage.py checks the same on S3.
LOCAL_ONLY = {
    "test_dry_run_reports_the_same_changes_without_making_them",
    "test_purge_deletes_model_files_but_keeps_rows_history_and_metadata",
    "test_orphan_directories_are_removed_only_after_the_grace_period",
    "test_orphan_sweep_dry_run_removes_nothing",
    "test_a_purged_model_and_foreign_directories_are_not_orphans",
    "test_deleting_a_model_removes_its_row_and_files_but_keeps_history",
    "test_registered_model_info_carries_every_field",
    "test_same_flow_run_registering_twice_returns_the_first_model",
    "test_opening_a_second_registry_on_the_same_database_works",
    "test_duplicate_version_is_refused_and_writes_nothing",
}

pytestmark = pytest.mark.slow

for _module in CONTRACT_MODULES:
    for _name, _test in vars(_module).items():
        if _name.startswith("test_") and callable(_test) and _name not in LOCAL_ONLY:
            globals()[f"{_name}__s3"] = _test
