"""Install on the bed the gateway CRDs hack/build-gateway.sh copied from Go modules,
beyond the standard Gateway API channel the bed always has:

- the Gateway API experimental channel (HTTPRoute's `ExternalAuth` filter). The
  standard channel comes with the `safe-upgrades.gateway.networking.k8s.io`
  ValidatingAdmissionPolicy, which refuses experimental CRDs over standard ones ("Uninstall
  ValidatingAdmissionPolicy safe-upgrades... to install experimental CRDs"), so it is
  taken away first, as Gateway API's docs say to;
- Envoy Gateway's CRDs (SecurityPolicy, ...), so that its objects can be created or
  dry-run, though no Envoy runs here.

Both are supersets of what the bed had: installing them changes nothing for other tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .process import wait_until

SAFE_UPGRADES = "safe-upgrades.gateway.networking.k8s.io"


def install_gateway_api_experimental(bed: Any, bin_dir: Path) -> None:
    bed.kubectl("delete", "validatingadmissionpolicybinding", SAFE_UPGRADES,
                "--ignore-not-found", "--wait=true")
    bed.kubectl("delete", "validatingadmissionpolicy", SAFE_UPGRADES,
                "--ignore-not-found", "--wait=true")
    # The API server's admission sees the policy gone a moment after the delete: retry.
    wait_until(lambda: bed.kubectl(
        "apply", "--server-side", "--force-conflicts",
        "-f", str(bin_dir / "gateway-api-experimental-crds.yaml"), check=False,
    ).returncode == 0, timeout=30, interval=1, what="experimental Gateway API CRDs applied")
    established(bed, "httproutes.gateway.networking.k8s.io",
                "tcproutes.gateway.networking.k8s.io")


def install_envoy_gateway_crds(bed: Any, bin_dir: Path) -> None:
    bed.kubectl("apply", "--server-side", "--force-conflicts",
                "-f", str(bin_dir / "envoy-gateway-crds.yaml"), timeout=120)
    established(bed, "securitypolicies.gateway.envoyproxy.io")


def established(bed: Any, *crds: str, timeout: float = 60) -> None:
    """Wait until each CRD is Established (`kubectl wait` fails outright on a CRD too
    new to have any status)."""
    path = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
    for crd in crds:
        def ready(crd: str = crd) -> bool:
            return bool(bed.kubectl("get", "crd", crd, "-o", path,
                                    check=False).stdout == "True")

        wait_until(ready, timeout=timeout, what=f"CRD {crd} Established")
