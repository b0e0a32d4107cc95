"""Delete expired TrainJobs with the official Kubernetes Python client.

This is the cleanup script a team writes with the `kubernetes` package from PyPI. It reads the
cluster from KUBECONFIG and lists every TrainJob page by page. It deletes each one whose
Complete or Failed condition has been True for longer than the TTL, one call after another. Each delete
sends the same options as trainjob-gc: propagationPolicy Background and preconditions on uid
and resourceVersion. It prints a JSON summary and exits non-zero when any call failed.
"""

import argparse
import datetime
import json
import sys
import time

from kubernetes import client, config
from kubernetes.client.rest import ApiException

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
PLURAL = "trainjobs"
TERMINAL_CONDITIONS = ("Complete", "Failed")


def finished_at(trainjob):
    """Return the lastTransitionTime of the True Complete or Failed condition, or None."""
    for condition in (trainjob.get("status") or {}).get("conditions") or []:
        if condition.get("type") in TERMINAL_CONDITIONS and condition.get("status") == "True":
            # Python 3.11 parses a trailing "Z", but earlier versions need the explicit offset.
            return datetime.datetime.fromisoformat(condition["lastTransitionTime"].replace("Z", "+00:00"))
    return None


def delete_options(metadata):
    return client.V1DeleteOptions(
        propagation_policy="Background",
        preconditions=client.V1Preconditions(uid=metadata["uid"], resource_version=metadata["resourceVersion"]),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ttl-seconds", type=float, default=3600, help="retention time after the finish, in seconds")
    parser.add_argument("--page-size", type=int, default=500, help="limit of each list request")
    args = parser.parse_args()

    started = time.monotonic()
    config.load_kube_config()
    api = client.CustomObjectsApi()
    cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=args.ttl_seconds)

    listed = deleted = failed = pages = 0
    continue_token = None
    while True:
        page = api.list_cluster_custom_object(
            GROUP, VERSION, PLURAL, limit=args.page_size, _continue=continue_token
        )
        pages += 1
        for trainjob in page["items"]:
            listed += 1
            metadata = trainjob["metadata"]
            if metadata.get("deletionTimestamp"):
                continue
            finished = finished_at(trainjob)
            if finished is None or finished > cutoff:
                continue
            try:
                api.delete_namespaced_custom_object(
                    GROUP, VERSION, metadata["namespace"], PLURAL, metadata["name"], body=delete_options(metadata)
                )
                deleted += 1
            except ApiException as error:
                failed += 1
                print(
                    f"failed to delete TrainJob {metadata['namespace']}/{metadata['name']}: {error.status} {error.reason}",
                    file=sys.stderr,
                )
        continue_token = page["metadata"].get("continue")
        if not continue_token:
            break

    summary = {
        "listed": listed,
        "pages": pages,
        "deleted": deleted,
        "failed": failed,
        "seconds": time.monotonic() - started,
    }
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
